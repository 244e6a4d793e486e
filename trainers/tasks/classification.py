"""`--task=classify`: one label per example (a sentence, a sentence pair or an image), softmax cross-entropy.

The default task of every model. Its inputs come from a tfds dataset (`data.dataset`) or the
user's labeled files (`data.train_files`); a BERT may start from a keras-hub preset
(`task.preset`), from a `--task=pretrain` run (`task.init_checkpoint`), and train LoRA adapters
only (`task.lora_rank`). The export is a SavedModel that answers raw text or pixels.
"""

import dataclasses
import os
import pathlib
import tempfile
from functools import cached_property

import keras
import numpy as np
import tensorflow as tf

import zoo
from trainers.tasks.base import WARMUP_EXAMPLES, Task, TaskConfig, TaskInputs, cross_entropy, model_overrides, register_task
from trainers.tasks.pretraining import load_pretrained_encoder
from trainers.vocabulary import text_preprocessor
from zoo import data
from zoo.data import buckets, files
from zoo.data.images import ImagePreprocessor
from zoo.data.pipeline import PADDING_LABEL, make_input_fn, map_in_batches
from zoo.errors import ConfigError
from zoo.export import export_saved_model, serving_input_spec
from zoo.serving import model_card

# Which dataset modality each model input kind consumes.
MODALITY = {"image": "image", "token_ids": "text", "bert": "text"}
SAMPLE_TEXT = "I love this movie!"  # What a text export is asked right after it is written.


@dataclasses.dataclass
class ClassificationConfig(TaskConfig):
    """classify's fields: where a BERT's weights start, and which of them train."""

    name: str = "classify"
    preset: str | None = None  # BERT: a keras-hub preset directory or handle (sizes, weights, vocabulary).
    init_checkpoint: str | None = None  # BERT: a pretraining run's model_dir; its encoder starts the model.
    lora_rank: int | None = None  # BERT: freeze the encoder, train rank-R LoRA adapters and the head.
    # Train against (1 - e) * one-hot + e / classes rather than the one-hot label (Szegedy et al. 2016,
    # section 7): the logits stop growing once a short training phrase is fitted.
    label_smoothing: float = 0.0
    RESUME_FIELDS = ("preset", "lora_rank")

    def validate(self, model_spec):
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"task.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.lora_rank is not None and self.lora_rank <= 0:
            raise ConfigError(f"task.lora_rank must be a positive integer, got {self.lora_rank}")
        if (self.preset or self.lora_rank or self.init_checkpoint) and model_spec.input_kind != "bert":
            raise ConfigError(f"--preset, --init_checkpoint and --lora_rank are for BERT models; "
                              f"--model={model_spec.name} is not one")


def classification_metrics(labels, probabilities):
    """Loss, accuracy, macro precision / recall / F1, and ROC-AUC for two classes.

    Args:
        labels: int array [num_examples].
        probabilities: float array [num_examples, num_classes] (softmax of the logits).
    """
    labels = np.asarray(labels, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    num_classes = probabilities.shape[-1]
    predictions = probabilities.argmax(axis=-1)
    # confusion[true, predicted]
    confusion = np.zeros([num_classes, num_classes], np.float64)
    np.add.at(confusion, (labels, predictions), 1.0)
    true_positives = np.diag(confusion)
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    precision = np.divide(true_positives, predicted, out=np.zeros(num_classes), where=predicted > 0)
    recall = np.divide(true_positives, actual, out=np.zeros(num_classes), where=actual > 0)
    f1_denominator = precision + recall
    f1 = np.divide(2 * precision * recall, f1_denominator, out=np.zeros(num_classes), where=f1_denominator > 0)
    present = actual > 0  # Macro averages over the classes that occur in the labels.
    label_probabilities = probabilities[np.arange(len(labels)), labels]
    metrics = {
        "loss": float(-np.log(np.maximum(label_probabilities, 1e-12)).mean()),
        "accuracy": float(true_positives.sum() / len(labels)),
        "precision": float(precision[present].mean()),
        "recall": float(recall[present].mean()),
        "f1": float(f1[present].mean()),
        "num_examples": int(len(labels)),
    }
    if num_classes == 2:
        auc = keras.metrics.AUC(num_thresholds=1000)
        auc.update_state(labels, probabilities[:, 1])
        metrics["auc"] = float(auc.result())
    return metrics


class Classification:
    """Softmax cross-entropy of logits float [batch, classes] against labels int32 [batch], each label
    smoothed towards the uniform distribution by `label_smoothing` (0: the one-hot label itself).

    The objective protocol `trainers.trainer.Trainer` reads: `per_example_loss`; `step_sums`
    (the SUMS a train step adds up) and RATIOS (the train metrics made of them); `eval_values`
    (per-example values gathered over the eval split) and `eval_metrics` (made of them);
    `best_metric` (what `model_dir/best` keeps the highest of).
    """

    EVAL_METRICS = ("accuracy", "loss", "precision", "recall", "f1", "auc")  # auc: two classes only.
    SUMS = ("loss_sum", "correct", "count")
    RATIOS = {"loss": ("loss_sum", "count"), "accuracy": ("correct", "count")}
    best_metric = "accuracy"

    def __init__(self, label_smoothing=0.0):
        self.label_smoothing = label_smoothing

    def per_example_loss(self, labels, logits):
        real = tf.cast(labels != PADDING_LABEL, tf.float32)
        return cross_entropy(tf.maximum(labels, 0), logits, self.label_smoothing) * real

    def step_sums(self, labels, logits, per_example_loss):
        real = labels != PADDING_LABEL
        predictions = tf.argmax(logits, axis=-1, output_type=labels.dtype)
        return {
            "loss_sum": tf.reduce_sum(per_example_loss),
            "correct": tf.reduce_sum(tf.cast(real & (predictions == labels), tf.float32)),
            "count": tf.reduce_sum(tf.cast(real, tf.float32)),
        }

    def eval_values(self, labels, logits):
        real = labels != PADDING_LABEL
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
        return {"labels": labels[real], "probabilities": probabilities[real]}

    def eval_metrics(self, values):
        return classification_metrics(values["labels"], values["probabilities"])


@dataclasses.dataclass
class LabeledSplits:
    """Where a classification run's labeled examples come from.

    `load(split)` returns a `load_fn`: callable -> unbatched `(raw_input, label)` dataset, where
    raw_input is a tf.string scalar, a `(text, text_pair)` tuple, or uint8 pixels.
    """

    info: object  # zoo.data DatasetInfo: num_classes, class_names, num_examples, image_shape.
    train_split: str
    eval_split: str
    load: object
    cache_key: str  # Names the source in the token cache: another source re-tokenizes.
    text_pair: bool = False


@register_task
class ClassificationTask(Task):
    """Classify each example (sentence, sentence pair or image) into one of the dataset's classes."""

    name = "classify"
    Config = ClassificationConfig
    EVAL_METRICS = Classification.EVAL_METRICS

    def create_objective(self):
        return Classification(self.config.task.label_smoothing)

    @cached_property
    def model_spec(self):
        return zoo.get_spec(self.config.model_name)

    def labeled_splits(self) -> LabeledSplits:
        """The train and eval examples: the user's files (`data.train_files`), else the tfds dataset."""
        config, modality = self.config, MODALITY[self.model_spec.input_kind]
        if config.data.train_files:  # The user's own labeled text (zoo.data.files).
            if modality != "text":
                raise ConfigError(f"--train_files holds text but model {self.model_spec.name} reads {modality}")
            source = files.open_labeled_files(config.data.train_files, config.data.eval_files,
                                              self.model_dir / "labels.txt")
            if source.is_pair and self.model_spec.input_kind != "bert":
                raise ConfigError(f"{config.data.train_files} holds text pairs; only --model=bert reads pairs")
            return LabeledSplits(source.info, "train", "eval", lambda split: lambda: source.load(split),
                                 repr([source.train.fingerprint(), source.eval.fingerprint()]), source.is_pair)
        dataset_spec = data.get_dataset_spec(config.data.dataset)
        if dataset_spec.modality != modality:
            raise ConfigError(
                f"--dataset={dataset_spec.name} holds {dataset_spec.modality} but model "
                f"{self.model_spec.name} reads {modality}; try --dataset={data.OFFLINE_DEFAULTS[modality]}"
            )
        info = data.dataset_info(dataset_spec.name, config.data.data_dir)
        return LabeledSplits(
            info, dataset_spec.train_split, dataset_spec.eval_split,
            lambda split: lambda: data.load(dataset_spec.name, split, config.data.data_dir),
            repr([dataset_spec.name, config.data.data_dir, info.num_examples]),
        )

    def training_splits(self, splits: LabeledSplits) -> LabeledSplits:
        """The splits the trainer reads (the same as `splits` here; distillation adds the teacher's)."""
        return splits

    def prepare_inputs(self) -> TaskInputs:
        """Builds the preprocessor and the input functions; text is tokenized once into `model_dir/tokens`."""
        config = self.config
        raw = self.labeled_splits()
        splits = self.training_splits(raw)
        info, train_split, eval_split = raw.info, raw.train_split, raw.eval_split
        common = dict(global_batch_size=config.train.batch_size, seed=config.train.seed)
        modality = MODALITY[self.model_spec.input_kind]
        if modality == "image":
            preprocessor = ImagePreprocessor()
            train_input_fn = make_input_fn(splits.load(train_split), preprocessor, training=True, **common)
            eval_input_fn = make_input_fn(splits.load(eval_split), preprocessor, training=False, **common)
            steps_per_epoch = info.num_examples[train_split] // config.train.batch_size
            bucket_description = None
        else:
            def texts():  # Both texts of a pair, in turn: [texts] per example, then unbatched.
                return map_in_batches(raw.load(train_split)(),
                                      lambda raw_input, label: tf.stack(tf.nest.flatten(raw_input), axis=1)).unbatch()

            tokenizer = text_preprocessor(
                config, self.model_dir, texts_fn=texts,
                num_texts=info.num_examples[train_split] * (2 if raw.text_pair else 1),
                output_format="bert" if self.model_spec.input_kind == "bert" else "token_ids",
                phases=self.phases, preset=self.preset, init_checkpoint=config.task.init_checkpoint,
            )
            # Tokenized once into model_dir, batched by length buckets (zoo.data.buckets).
            preprocessor = buckets.PadToLongest(tokenizer)
            bucketed = buckets.bucketed_input_fns(
                splits.load(train_split), splits.load(eval_split), preprocessor,
                cache_dir=self.model_dir / "tokens", cache_key=f"{splits.cache_key}/{tokenizer.get_config()}",
                bucket_boundaries=config.data.bucket_boundaries, **common,
                # Each bucket's shape compiles once under XLA (TPUs compile every step).
                compiled=config.train.jit_compile or config.runtime.strategy == "tpu",
            )
            train_input_fn, eval_input_fn = bucketed.train_input_fn, bucketed.eval_input_fn
            steps_per_epoch, bucket_description = bucketed.steps_per_epoch, bucketed.description
            print(f"Length buckets (tokens, share of train examples up to each): {bucket_description}")
        sample_input, sample_label = next(iter(raw.load(eval_split)().take(1)))
        if modality == "image":
            sample_input = tf.cast(sample_input, tf.float32)[None]
        else:  # A batch of one text, or of one pair: (text [1], text_pair [1]).
            sample_input = tf.nest.map_structure(lambda text: text[None], sample_input)
        model_input = preprocessor(*sample_input) if raw.text_pair else preprocessor(sample_input)
        input_spec = serving_input_spec(self.model_spec.input_kind, info.image_shape, text_pair=raw.text_pair)
        eval_batch = next(iter(raw.load(eval_split)().batch(WARMUP_EXAMPLES).take(1)))[0]
        eval_inputs = {spec.name: tf.cast(tensor, spec.dtype).numpy()
                       for spec, tensor in zip(tf.nest.flatten(input_spec), tf.nest.flatten(eval_batch))}
        return TaskInputs(
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

    def build_model(self, inputs: TaskInputs) -> keras.Model:
        """`zoo.build` with the config's overrides, sized to the inputs' classes and vocabulary.

        Built on the sample input first, so every variable exists before a checkpoint is restored
        into it. Then, in order: a preset's weights (its sizes replace the config's), an
        `--init_checkpoint` run's encoder, LoRA (which freezes what came before).
        """
        task_config = self.config.task
        overrides = model_overrides(self.config, inputs, self.preset)
        model = zoo.build(self.config.model_name, **overrides, num_classes=inputs.num_classes)
        model(inputs.sample_model_input, training=False)
        if self.preset is not None:
            self.preset.load_weights_into(model.encoder)
        if task_config.init_checkpoint:
            load_pretrained_encoder(task_config.init_checkpoint, model.encoder)
        if task_config.lora_rank:
            model.enable_lora(task_config.lora_rank)
        return model

    def finish(self, model, inputs, *, export_dir):
        """Exports the model, LoRA adapters merged, under `export_dir/<model>/<version>`."""
        if export_dir is None:
            return None
        with self.phases.phase("export", f"writing a SavedModel under {export_dir / self.config.model_name} "
                                         "and loading it back"):
            return self.export(without_lora(model, inputs), inputs, self.config.model_name, export_dir)

    def export(self, model, inputs, model_name, export_dir, *, tflite=True, metrics=None) -> pathlib.Path:
        """Exports the SavedModel (with warm-up records from eval inputs and a model card from the
        run's config and metrics), prints the TF Serving releases that load it, loads it back and
        prints its answer for a sample input.

        Args:
            metrics: the eval metrics the model card states (default: `model_dir/metrics.json`'s).
            tflite: also a TFLite file, for an image model in float32 (its builtin kernels).
        """
        version_dir = export_saved_model(
            model,
            inputs.preprocessor,
            inputs.serving_input_spec,
            export_dir=export_dir,
            model_name=model_name,
            encoder=getattr(model, "encoder", None),  # BERT: also an `encode` signature (sentence embedding).
            # TFLite for the CNN (mobile, edge); its builtin kernels need a float32 model.
            tflite=tflite and inputs.modality == "image" and keras.mixed_precision.global_policy().name == "float32",
            warmup_inputs=inputs.eval_inputs,
            description=model_card.run_description(self.model_dir, modality=inputs.modality, labels=inputs.class_names,
                                                   num_train_examples=inputs.num_train_examples, metrics=metrics),
        )
        print(f"SavedModel: {version_dir}")
        print(f"TF Serving: {model_card.serving_summary(model_card.read_manifest(version_dir))}")
        serving = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
        if inputs.modality == "image":
            sample, description = inputs.sample_input, f"the first eval image (label {inputs.sample_label})"
        else:
            sample, description = tf.constant([SAMPLE_TEXT]), repr(SAMPLE_TEXT)
        if isinstance(inputs.serving_input_spec, tuple):  # A sentence-pair task: text and text_pair.
            sample, description = inputs.sample_input, "the first eval pair"
        names = [spec.name for spec in tf.nest.flatten(inputs.serving_input_spec)]
        probabilities = serving(**dict(zip(names, tf.nest.flatten(sample))))["probabilities"].numpy()[0]
        class_id = int(probabilities.argmax())
        name = inputs.class_names[class_id] if inputs.class_names else str(class_id)
        print(f"Exported model's answer for {description}: {name} (p={probabilities[class_id]:.3f})")
        return version_dir


def without_lora(model, inputs: TaskInputs) -> keras.Model:
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
        merged(inputs.sample_model_input, training=False)
        merged.load_weights(path)
    return merged
