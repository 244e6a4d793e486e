"""What a run derives from its config: the task's data and preprocessor, the model, the optimizer.

Kept apart from the loop so that training, evaluation and export of an existing `model_dir` build
exactly the same preprocessor (same saved vocabulary) and the same model.
"""

import dataclasses
import os
import pathlib
import tempfile
from typing import Callable

import keras
import tensorflow as tf
import yaml

import zoo
from zoo import data
from trainers import distillation
from trainers.phases import Phases
from trainers.trainer import checkpointable_weights
from zoo.data import buckets, files, pretraining
from zoo.data.images import ImagePreprocessor
from zoo.data.pipeline import make_input_fn
from zoo.data.text import TextPreprocessor, compute_vocabulary, load_vocabulary, save_vocabulary
from zoo.errors import ConfigError
from zoo.export import serving_input_spec
from zoo.models.bert import ENCODER_SIZE_FIELDS, BertPretrainer

# Which dataset modality each model input kind consumes.
_MODALITY = {"image": "image", "token_ids": "text", "bert": "text"}
# Train fields that must match to resume a model_dir (their defaults, for configs saved before them).
_SAME_RUN_TRAIN_FIELDS = ("task", "preset", "lora_rank", "teacher")
_TRAIN_DEFAULTS = {"task": "classify", "preset": None, "lora_rank": None, "teacher": None}
# Parameters that AdamW leaves out of weight decay (BERT's recipe): biases and normalisation.
_NO_WEIGHT_DECAY = ["bias", "gamma", "beta"]
# Eval inputs kept for the export's warm-up records (zoo.serving.warmup picks a few of them).
WARMUP_EXAMPLES = 256


@dataclasses.dataclass
class Task:
    """A task's data (classification, or BERT pretraining), ready for the trainer and the exporter."""

    modality: str  # "image" or "text"
    num_classes: int
    class_names: list  # Label names from the dataset (may be empty).
    num_train_examples: int
    preprocessor: keras.layers.Layer  # Raw input (pixels or strings) -> model inputs; what serving runs.
    serving_input_spec: tf.TensorSpec
    train_input_fn: Callable  # InputContext -> repeated, shuffled, batched tf.data.Dataset.
    eval_input_fn: Callable  # InputContext -> one pass over the eval split.
    sample_input: tf.Tensor  # One eval example, batched, as a client would send it.
    sample_label: int
    sample_model_input: object  # One batch of model inputs (builds the model's weights).
    # Up to WARMUP_EXAMPLES eval inputs as a client sends them: {input name: numpy [n, ...]}; the
    # export's TF Serving warm-up records are drawn from them.
    eval_inputs: dict | None = None
    steps_per_epoch: int | None = None  # One pass over the train split (None: examples // batch size).
    bucket_description: str | None = None  # Text: its length buckets, e.g. "16 (p62), 32 (p95), 64 (p100)".


def check_same_experiment(config, model_dir: pathlib.Path):
    """Refuses to resume a `model_dir` that holds a run of another model or data config."""
    saved_path = model_dir / "config.yaml"
    if not saved_path.is_file():
        return
    saved = yaml.safe_load(saved_path.read_text())
    current = config.to_dict()
    for section in ("model", "data"):
        if saved.get(section) != current[section]:
            raise ConfigError(
                f"--model_dir={model_dir} holds a run with another {section} config "
                f"({saved_path}); use a new --model_dir or the same config to resume"
            )
    for field in _SAME_RUN_TRAIN_FIELDS:
        if saved["train"].get(field, _TRAIN_DEFAULTS[field]) != current["train"][field]:
            raise ConfigError(
                f"--model_dir={model_dir} holds a run with train.{field}={saved['train'].get(field)!r}, "
                f"not {current['train'][field]!r}; use a new --model_dir or the same flags to resume"
            )


def _vocabulary(config, model_dir, texts_fn, num_texts, preset, phases):
    """The run's WordPiece vocabulary, saved as `model_dir/vocabulary.txt` on first use.

    From, in order: the file already there (a resumed run); the preset's tokenizer; the
    `--init_checkpoint` run's (its encoder's embeddings are indexed by it); else learned from
    `texts_fn()` (a dataset of `num_texts` tf.string scalars), timed as the phase "vocabulary" of
    `phases`: on SST-2 it takes longer than TensorFlow's startup, so a user is told what it does.
    """
    path = model_dir / "vocabulary.txt"
    init_checkpoint = config.train.init_checkpoint
    if not path.is_file():
        if preset is not None:
            vocabulary = preset.vocabulary
        elif init_checkpoint:
            init_path = pathlib.Path(init_checkpoint) / "vocabulary.txt"
            if not init_path.is_file():
                raise ConfigError(f"--init_checkpoint={init_checkpoint} holds no vocabulary.txt; pass the "
                                  "--model_dir of a --task=pretrain run")
            vocabulary = load_vocabulary(init_path)
        else:
            learning = f"learning {config.data.vocabulary_size} WordPiece tokens from {num_texts:,} texts"
            with phases.phase("vocabulary", learning):
                vocabulary = compute_vocabulary(texts_fn(), config.data.vocabulary_size)
        save_vocabulary(vocabulary, path)
    vocabulary = load_vocabulary(path)
    if init_checkpoint and (pathlib.Path(init_checkpoint) / "vocabulary.txt").is_file():
        if load_vocabulary(pathlib.Path(init_checkpoint) / "vocabulary.txt") != vocabulary:
            raise ConfigError(f"--model_dir={model_dir} has another vocabulary than --init_checkpoint={init_checkpoint}; "
                              "use a new --model_dir")
    return vocabulary


def _text_preprocessor(config, model_dir, texts_fn, num_texts, output_format, preset, phases):
    return TextPreprocessor(
        _vocabulary(config, model_dir, texts_fn, num_texts, preset, phases),
        sequence_length=config.data.sequence_length,
        output_format=output_format,
        lowercase=preset.lowercase if preset is not None else config.data.lowercase,
    )


def prepare_task(config, model_dir: pathlib.Path, preset=None, teacher=None, phases=None) -> Task:
    """Reads the dataset's metadata and builds the preprocessor and the input functions.

    Args:
        preset: a `zoo.presets.BertPreset` whose vocabulary the run uses, or None.
        teacher: --task=distill: the teacher's SavedModel directory; its probabilities join the
            labels (`trainers.distillation`). None otherwise.
        phases: the run's `trainers.phases.Phases`, where learning the vocabulary is timed
            (default: a new one; the vocabulary's lines are printed all the same).
    """
    phases = phases or Phases()
    model_spec = zoo.get_spec(config.model_name)
    if config.train.task == "pretrain":
        return _prepare_pretraining(config, model_dir, model_spec, preset, phases)
    modality = _MODALITY[model_spec.input_kind]
    text_pair = False
    if config.data.train_files:  # The user's own labeled text (zoo.data.files).
        source = _labeled_files(config, model_dir, model_spec, modality)
        info, train_split, eval_split, text_pair = source.info, "train", "eval", source.is_pair
        source_key = repr([source.train.fingerprint(), source.eval.fingerprint()])

        def load_split(split):
            return lambda: source.load(split)
    else:
        dataset_spec = data.get_dataset_spec(config.data.dataset)
        if dataset_spec.modality != modality:
            raise ConfigError(
                f"--dataset={dataset_spec.name} holds {dataset_spec.modality} but model "
                f"{model_spec.name} reads {modality}; try --dataset={data.OFFLINE_DEFAULTS[modality]}"
            )
        info = data.dataset_info(dataset_spec.name, config.data.data_dir)
        train_split, eval_split = dataset_spec.train_split, dataset_spec.eval_split
        source_key = repr([dataset_spec.name, config.data.data_dir, info.num_examples])

        def load_split(split):
            return lambda: data.load(dataset_spec.name, split, config.data.data_dir)

    load_raw_split = load_split
    if teacher is not None:
        load_split = distillation.distillation_splits(
            load_raw_split, [train_split, eval_split], teacher, info.num_classes, model_dir / "teacher_targets"
        )
        source_key += f"/teacher={teacher}"
    common = dict(global_batch_size=config.train.batch_size, seed=config.train.seed)
    if modality == "image":
        preprocessor = ImagePreprocessor()
        train_input_fn = make_input_fn(load_split(train_split), preprocessor, training=True, **common)
        eval_input_fn = make_input_fn(load_split(eval_split), preprocessor, training=False, **common)
        steps_per_epoch = info.num_examples[train_split] // config.train.batch_size
        bucket_description = None
    else:
        output_format = "bert" if model_spec.input_kind == "bert" else "token_ids"

        def texts():  # Both texts of a pair.
            return load_raw_split(train_split)().flat_map(
                lambda raw_input, label: tf.data.Dataset.from_tensor_slices(tf.stack(tf.nest.flatten(raw_input)))
            )

        text_preprocessor = _text_preprocessor(
            config, model_dir, texts, info.num_examples[train_split] * (2 if text_pair else 1), output_format, preset,
            phases,
        )
        # Tokenized once into model_dir, batched by length buckets (zoo.data.buckets).
        preprocessor = buckets.PadToLongest(text_preprocessor)
        splits = buckets.bucketed_input_fns(
            load_split(train_split), load_split(eval_split), preprocessor,
            cache_dir=model_dir / "tokens", cache_key=f"{source_key}/{text_preprocessor.get_config()}",
            bucket_boundaries=config.data.bucket_boundaries, **common,
        )
        train_input_fn, eval_input_fn = splits.train_input_fn, splits.eval_input_fn
        steps_per_epoch, bucket_description = splits.steps_per_epoch, splits.description
        print(f"Length buckets (tokens, share of train examples up to each): {bucket_description}")
    sample_input, sample_label = next(iter(load_raw_split(eval_split)().take(1)))
    if modality == "image":
        sample_input = tf.cast(sample_input, tf.float32)[None]
    else:  # A batch of one text, or of one pair: (text [1], text_pair [1]).
        sample_input = tf.nest.map_structure(lambda text: text[None], sample_input)
    model_input = preprocessor(*sample_input) if text_pair else preprocessor(sample_input)
    input_spec = serving_input_spec(model_spec.input_kind, info.image_shape, text_pair=text_pair)
    eval_batch = next(iter(load_raw_split(eval_split)().batch(WARMUP_EXAMPLES).take(1)))[0]
    eval_inputs = {spec.name: tf.cast(tensor, spec.dtype).numpy()
                   for spec, tensor in zip(tf.nest.flatten(input_spec), tf.nest.flatten(eval_batch))}
    return Task(
        modality=modality,
        num_classes=info.num_classes,
        class_names=list(info.class_names),
        num_train_examples=info.num_examples[train_split],
        preprocessor=preprocessor,
        serving_input_spec=input_spec,
        train_input_fn=train_input_fn,
        eval_input_fn=eval_input_fn,
        sample_input=sample_input,
        sample_label=int(sample_label),
        sample_model_input=model_input,
        steps_per_epoch=max(1, steps_per_epoch),
        bucket_description=bucket_description,
        eval_inputs=eval_inputs,
    )


def _labeled_files(config, model_dir, model_spec, modality) -> files.LabeledFiles:
    """The checked `--train_files` and `--eval_files`, with the label list kept in `model_dir`."""
    if modality != "text":
        raise ConfigError(f"--train_files holds text but model {model_spec.name} reads {modality}")
    source = files.open_labeled_files(config.data.train_files, config.data.eval_files, model_dir / "labels.txt")
    if source.is_pair and model_spec.input_kind != "bert":
        raise ConfigError(f"{config.data.train_files} holds text pairs; only --model=bert reads pairs")
    return source


def _pretraining_documents(config):
    """(train, eval) documents: `data.train_files` (and `eval_files`), else the tfds dataset's splits."""
    if config.data.train_files:
        documents = pretraining.documents_from_files(config.data.train_files)
        if config.data.eval_files:
            return documents, pretraining.documents_from_files(config.data.eval_files)
        # Every 20th document is held out for evaluation.
        return [document for index, document in enumerate(documents) if index % 20], documents[::20]
    spec = data.get_dataset_spec(config.data.dataset)
    if spec.modality != "text":
        raise ConfigError(f"--task=pretrain needs text; --dataset={spec.name} holds {spec.modality}, "
                          "try --dataset=zoo_reviews or --train_files=GLOB")

    def documents(split):
        texts = data.load(spec.name, split, config.data.data_dir).map(lambda text, label: text)
        return pretraining.documents_from_texts(texts.as_numpy_iterator())

    return documents(spec.train_split), documents(spec.eval_split)


def _prepare_pretraining(config, model_dir, model_spec, preset, phases) -> Task:
    """BERT's masked-LM + next-sentence task over a corpus of documents (zoo.data.pretraining)."""
    if model_spec.input_kind != "bert":
        raise ConfigError(f"--task=pretrain trains BERT's masked LM and next sentence prediction; "
                          f"--model={model_spec.name} is not a BERT (try --model=bert)")
    train_documents, eval_documents = _pretraining_documents(config)

    def sentences():
        return tf.data.Dataset.from_tensor_slices([sentence for document in train_documents for sentence in document])

    num_sentences = sum(len(document) for document in train_documents)
    preprocessor = _text_preprocessor(config, model_dir, sentences, num_sentences, "bert", preset, phases)
    example_preprocessor = pretraining.PretrainingPreprocessor(
        preprocessor, mask_rate=config.data.mask_rate, max_predictions=config.data.max_predictions
    )
    train_pairs = pretraining.pairs_dataset(train_documents, seed=config.train.seed)
    eval_pairs = pretraining.pairs_dataset(eval_documents, seed=config.train.seed + 1)
    # Masked once: every evaluation scores the same masked tokens. (Training re-masks each run.)
    eval_examples = eval_pairs.map(example_preprocessor).batch(int(eval_pairs.cardinality()))
    eval_examples = tf.data.Dataset.from_tensor_slices(next(iter(eval_examples)))
    common = dict(global_batch_size=config.train.batch_size, seed=config.train.seed, preprocesses_labels=True)
    (first, _), is_next = next(iter(eval_pairs.take(1)))
    sample_model_input, _ = next(iter(eval_examples.take(1).batch(1)))
    return Task(
        modality="text",
        num_classes=2,
        class_names=["not_next", "is_next"],
        num_train_examples=int(train_pairs.cardinality()),
        preprocessor=preprocessor,
        serving_input_spec=serving_input_spec("bert"),
        train_input_fn=make_input_fn(lambda: train_pairs, example_preprocessor, training=True, **common),
        eval_input_fn=make_input_fn(lambda: eval_examples, lambda inputs, labels: (inputs, labels), training=False, **common),
        sample_input=first[None],
        sample_label=int(is_next),
        sample_model_input=sample_model_input,
    )


def build_model(config, task: Task, preset=None) -> keras.Model:
    """`zoo.build` with the config's overrides, sized to the task's classes and vocabulary.

    The model is built (called once on the sample input) so that every variable exists before a
    checkpoint is restored into it. Then, in order: a preset's weights (its sizes replace the
    config's), an `--init_checkpoint` run's encoder, LoRA (which freezes what came before).
    """
    overrides = dict(config.model_overrides)
    defaults = zoo.default_config(config.model_name)
    is_bert = zoo.get_spec(config.model_name).input_kind == "bert"
    if (preset or config.train.lora_rank or config.train.init_checkpoint) and not is_bert:
        raise ConfigError(f"--preset, --init_checkpoint and --lora_rank are for BERT models; "
                          f"--model={config.model_name} is not one")
    if preset is not None:
        overrides.update(preset.encoder_config)
    if task.modality == "text":
        overrides["vocabulary_size"] = task.preprocessor.vocabulary_size
        max_length = overrides.get("max_sequence_length", defaults.get("max_sequence_length"))
        if max_length is not None and max_length < config.data.sequence_length:
            raise ConfigError(
                f"data.sequence_length={config.data.sequence_length} exceeds "
                f"model.max_sequence_length={max_length}; raise the latter or shorten the former"
            )
    if config.train.task == "pretrain":
        if config.train.lora_rank or config.train.init_checkpoint:
            raise ConfigError("--lora_rank and --init_checkpoint are for fine-tuning (--task=classify)")
        encoder_config = {key: value for key, value in {**defaults, **overrides}.items() if key != "num_classes"}
        model = BertPretrainer(**encoder_config)
    else:
        model = zoo.build(config.model_name, **dict(overrides, num_classes=task.num_classes))
    model(task.sample_model_input, training=False)
    if preset is not None:
        preset.load_weights_into(model.encoder)
    if config.train.init_checkpoint:
        load_pretrained_encoder(config.train.init_checkpoint, model.encoder)
    if config.train.lora_rank:
        model.enable_lora(config.train.lora_rank)
    return model


def load_pretrained_encoder(model_dir, encoder):
    """Copies the encoder of a `--task=pretrain` run's latest checkpoint into `encoder` (not its heads).

    Raises:
        ConfigError: `model_dir` holds no pretraining checkpoint, or one of other sizes.
    """
    checkpoint = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    if checkpoint is None:
        raise ConfigError(f"--init_checkpoint={model_dir} holds no checkpoints/; pass the --model_dir of a "
                          "--task=pretrain run")
    encoder_config = encoder.get_config()
    pretrainer = BertPretrainer(**{field: encoder_config[field] for field in ENCODER_SIZE_FIELDS})
    one_token = tf.ones([1, 1], tf.int32)
    pretrainer({"token_ids": one_token, "segment_ids": 0 * one_token, "padding_mask": one_token,
                "mask_positions": 0 * one_token})
    try:
        status = tf.train.Checkpoint(model=checkpointable_weights(pretrainer)).restore(checkpoint)
        status.assert_existing_objects_matched()
    except (ValueError, AssertionError, tf.errors.InvalidArgumentError) as error:
        raise ConfigError(f"--init_checkpoint={model_dir}: {checkpoint} is not a pretraining run of this "
                          f"model's sizes ({str(error).splitlines()[0][:200]})") from None
    encoder.set_weights(pretrainer.encoder.get_weights())
    print(f"Encoder initialised from {checkpoint}")


def without_lora(model, task: Task) -> keras.Model:
    """A copy of a LoRA-tuned model with each adapter merged into its kernel (W + A B); else `model`.

    What gets exported: serving needs no LoRA weights or extra matmuls. Keras saves a LoRA layer's
    kernel merged, so the weights file of the tuned model loads into a plain model of its config.
    """
    if not any(getattr(layer, "lora_enabled", False) for layer in model._flatten_layers()):
        return model
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "merged.weights.h5")
        model.save_weights(path)
        merged = model.__class__.from_config(model.get_config())
        merged(task.sample_model_input, training=False)
        merged.load_weights(path)
    return merged


def parameter_counts(model) -> str:
    """"4,490 of 9,602 parameters trainable (46.8%)": what LoRA (or a frozen encoder) leaves to train."""
    trainable = sum(int(tf.size(weight)) for weight in model.trainable_weights)
    total = sum(int(tf.size(weight)) for weight in model.weights)
    return f"{trainable:,} of {total:,} parameters trainable ({100 * trainable / max(total, 1):.2f}%)"


@keras.saving.register_keras_serializable(package="zoo")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Rises linearly from 0 to `decay(0)` over `warmup_steps`, then follows `decay(step - warmup_steps)`.

    The warmup of BERT's recipe in front of any Keras decay schedule (Model Garden's pattern).
    """

    def __init__(self, decay, warmup_steps):
        self.decay = decay
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup_steps = keras.ops.cast(self.warmup_steps, "float32")
        warming = self.decay(0) * step / keras.ops.maximum(warmup_steps, 1.0)
        return keras.ops.where(step < warmup_steps, warming, self.decay(keras.ops.maximum(step - warmup_steps, 0.0)))

    def get_config(self):
        return {"decay": keras.optimizers.schedules.serialize(self.decay), "warmup_steps": self.warmup_steps}

    @classmethod
    def from_config(cls, config):
        return cls(keras.optimizers.schedules.deserialize(config["decay"]), config["warmup_steps"])


def create_optimizer(config, model, total_steps) -> keras.optimizers.Optimizer:
    """AdamW with BERT's schedule: linear warmup to the peak rate, then cosine or linear decay to 0.

    Biases and normalization scales are exempt from weight decay. Under mixed_float16 it is wrapped
    in a LossScaleOptimizer, so small float16 gradients do not underflow; bfloat16 has float32's
    range and needs no loss scaling.
    """
    train_config = config.train
    warmup_steps = int(train_config.warmup_fraction * total_steps)
    decay_steps = max(1, total_steps - warmup_steps)
    if train_config.decay == "cosine":
        decay = keras.optimizers.schedules.CosineDecay(train_config.learning_rate, decay_steps)
    else:
        decay = keras.optimizers.schedules.PolynomialDecay(train_config.learning_rate, decay_steps, 0.0, power=1.0)
    schedule = LinearWarmup(decay, warmup_steps)
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule, weight_decay=train_config.weight_decay, global_clipnorm=train_config.clipnorm
    )
    optimizer.exclude_from_weight_decay(var_names=_NO_WEIGHT_DECAY)
    if config.runtime.mixed_precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(model.trainable_variables)  # Slot variables exist before a checkpoint restores them.
    return optimizer
