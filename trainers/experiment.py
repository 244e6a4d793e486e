"""What a run derives from its config: the task's data and preprocessor, the model, the optimizer.

Kept apart from the loop so that training, evaluation and export of an existing `model_dir` build
exactly the same preprocessor (same saved vocabulary) and the same model.
"""

import dataclasses
import pathlib
from typing import Callable

import keras
import tensorflow as tf
import yaml

import zoo
from zoo import data
from zoo.data import buckets, files
from zoo.data.images import ImagePreprocessor
from zoo.data.pipeline import make_input_fn
from zoo.data.text import TextPreprocessor, compute_vocabulary, load_vocabulary, save_vocabulary
from zoo.export import serving_input_spec
from zoo.registry import ConfigError

# Which dataset modality each model input kind consumes.
_MODALITY = {"image": "image", "token_ids": "text", "bert": "text"}
# Parameters that AdamW leaves out of weight decay (BERT's recipe): biases and normalisation.
_NO_WEIGHT_DECAY = ["bias", "gamma", "beta"]


@dataclasses.dataclass
class Task:
    """A classification task's data, ready for the trainer and the exporter."""

    modality: str  # "image" or "text"
    num_classes: int
    class_names: list  # Label names from the dataset (may be empty).
    num_train_examples: int
    preprocessor: keras.layers.Layer  # Raw input (pixels or strings) -> model inputs.
    serving_input_spec: tf.TensorSpec
    train_input_fn: Callable  # InputContext -> repeated, shuffled, batched tf.data.Dataset.
    eval_input_fn: Callable  # InputContext -> one pass over the eval split.
    sample_input: tf.Tensor  # One eval example, batched, as a client would send it.
    sample_label: int
    steps_per_epoch: int | None = None  # One pass over the train split (None: examples // batch size).


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


def _text_preprocessor(config, model_dir, train_data, output_format):
    """WordPiece over the vocabulary saved in `model_dir`, learned from `train_data` on first use."""
    vocabulary_path = model_dir / "vocabulary.txt"
    if not vocabulary_path.is_file():
        texts = train_data.flat_map(  # Both texts of a pair.
            lambda raw_input, label: tf.data.Dataset.from_tensor_slices(tf.stack(tf.nest.flatten(raw_input)))
        )
        vocabulary = compute_vocabulary(texts, config.data.vocabulary_size)
        save_vocabulary(vocabulary, vocabulary_path)
    return TextPreprocessor(
        load_vocabulary(vocabulary_path),
        sequence_length=config.data.sequence_length,
        output_format=output_format,
    )


def prepare_task(config, model_dir: pathlib.Path) -> Task:
    """Reads the dataset's metadata and builds the preprocessor and the input functions."""
    model_spec = zoo.get_spec(config.model_name)
    modality = _MODALITY[model_spec.input_kind]
    if config.data.train_files:  # The user's own labeled text (zoo.data.files).
        source = _labeled_files(config, model_dir, model_spec, modality)
        info, train_split, eval_split = source.info, "train", "eval"
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

    common = dict(global_batch_size=config.train.batch_size, seed=config.train.seed)
    if modality == "image":
        preprocessor = ImagePreprocessor()
        train_input_fn = make_input_fn(load_split(train_split), preprocessor, training=True, **common)
        eval_input_fn = make_input_fn(load_split(eval_split), preprocessor, training=False, **common)
        steps_per_epoch = info.num_examples[train_split] // config.train.batch_size
    else:
        output_format = "bert" if model_spec.input_kind == "bert" else "token_ids"
        text_preprocessor = _text_preprocessor(config, model_dir, load_split(train_split)(), output_format)
        # Tokenized once into model_dir, batched by length buckets (zoo.data.buckets).
        preprocessor = buckets.PadToLongest(text_preprocessor)
        splits = buckets.bucketed_input_fns(
            load_split(train_split), load_split(eval_split), preprocessor,
            cache_dir=model_dir / "tokens", cache_key=f"{source_key}/{text_preprocessor.get_config()}",
            bucket_boundaries=config.data.bucket_boundaries, **common,
        )
        train_input_fn, eval_input_fn = splits.train_input_fn, splits.eval_input_fn
        steps_per_epoch = splits.steps_per_epoch
        print(f"Length buckets (tokens, share of train examples up to each): {splits.description}")
    sample_input, sample_label = next(iter(load_split(eval_split)().take(1)))
    if isinstance(sample_input, tuple):
        sample_input = sample_input[0]  # Served one text at a time.
    return Task(
        modality=modality,
        num_classes=info.num_classes,
        class_names=list(info.class_names),
        num_train_examples=info.num_examples[train_split],
        preprocessor=preprocessor,
        serving_input_spec=serving_input_spec(model_spec.input_kind, info.image_shape),
        train_input_fn=train_input_fn,
        eval_input_fn=eval_input_fn,
        sample_input=tf.cast(sample_input, tf.float32)[None] if modality == "image" else sample_input[None],
        sample_label=int(sample_label),
        steps_per_epoch=max(1, steps_per_epoch),
    )


def _labeled_files(config, model_dir, model_spec, modality) -> files.LabeledFiles:
    """The checked `--train_files` and `--eval_files`, with the label list kept in `model_dir`."""
    if modality != "text":
        raise ConfigError(f"--train_files holds text but model {model_spec.name} reads {modality}")
    source = files.open_labeled_files(config.data.train_files, config.data.eval_files, model_dir / "labels.txt")
    if source.is_pair and model_spec.input_kind != "bert":
        raise ConfigError(f"{config.data.train_files} holds text pairs; only --model=bert reads pairs")
    return source


def build_model(config, task: Task) -> keras.Model:
    """`zoo.build` with the config's overrides, sized to the task's classes and vocabulary.

    The model is built (called once on the sample input) so that every variable exists before a
    checkpoint is restored into it.
    """
    overrides = dict(config.model_overrides, num_classes=task.num_classes)
    defaults = zoo.default_config(config.model_name)
    if task.modality == "text":
        overrides["vocabulary_size"] = task.preprocessor.vocabulary_size
        max_length = overrides.get("max_sequence_length", defaults.get("max_sequence_length"))
        if max_length is not None and max_length < config.data.sequence_length:
            raise ConfigError(
                f"data.sequence_length={config.data.sequence_length} exceeds "
                f"model.max_sequence_length={max_length}; raise the latter or shorten the former"
            )
    model = zoo.build(config.model_name, **overrides)
    model(task.preprocessor(task.sample_input), training=False)
    return model


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
