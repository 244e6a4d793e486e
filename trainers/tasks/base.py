"""What every task is: its typed config section, its inputs, its model, its objective, its outputs.

A task answers the questions a run asks, in the order `trainers.run.run` asks them:

    task = create_task(config, model_dir=..., phases=..., export_run=...)
    inputs = task.prepare_inputs()            # TaskInputs: preprocessor, input functions, samples
    model = task.build_model(inputs)          # built, initialised (preset, init checkpoint, LoRA)
    Trainer(objective=task.objective, ...)    # loss, train sums, eval metrics, best-checkpoint metric
    task.finish(model, inputs, export_dir=...)  # a SavedModel for TF Serving, or what to do next

Each task lives in one module of `trainers/tasks/` and registers itself with `@register_task`;
`trainers.tasks` imports every module there, so adding a task is one file plus its test.
"""

import dataclasses
import pathlib
from functools import cached_property
from typing import Callable, ClassVar

import keras
import tensorflow as tf

import zoo

from trainers.phases import Phases
from zoo.errors import ConfigError
from zoo.presets import load_bert_preset

# Eval inputs kept for the export's warm-up records (zoo.serving.warmup picks a few of them).
WARMUP_EXAMPLES = 256


@dataclasses.dataclass
class TaskConfig:
    """The `task:` section of a config: the task's name and the fields only it reads.

    A subclass adds its fields (typed; `trainers.config` checks every value's type) and checks
    their values in `validate`. RESUME_FIELDS name the fields that must match to resume a
    `model_dir` (they change what the weights are); the others may change between resumes.
    """

    name: str
    RESUME_FIELDS: ClassVar[tuple] = ()

    def validate(self, model_spec):
        """Raises a one-line ConfigError for a value no run of `model_spec` (a zoo ModelSpec) can use."""


@dataclasses.dataclass
class TaskInputs:
    """A task's data, ready for the trainer and the exporter."""

    modality: str  # "image" or "text"
    num_classes: int
    class_names: list  # Label names from the dataset (may be empty).
    num_train_examples: int
    preprocessor: keras.layers.Layer  # Raw input (pixels or strings) -> model inputs; what serving runs.
    serving_input_spec: object  # tf.TensorSpec, or a (text, text_pair) tuple of them.
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


class Task:
    """One kind of training run. Subclasses set `name` and `Config`, and implement the methods below.

    Args:
        config: the run's `trainers.config.ExperimentConfig`; `config.task` is a `Config`.
        model_dir: pathlib.Path of the run (vocabulary, token cache, checkpoints).
        phases: the run's `trainers.phases.Phases`, where long steps are timed and announced
            (default: a new one).
        export_run: `fn(model_dir, export_dir) -> SavedModel directory`: exports a trained run's
            best checkpoint as `--mode=export` would (a distillation's teacher given as a run).
    """

    name: ClassVar[str]
    Config: ClassVar[type] = TaskConfig
    # The eval metrics `trainers.run.run` reports for this task, in print order (tune's objectives).
    EVAL_METRICS: ClassVar[tuple] = ()

    def __init__(self, config, *, model_dir: pathlib.Path, phases=None, export_run: Callable | None = None):
        self.config = config
        self.model_dir = model_dir
        self.phases = phases or Phases()
        self.export_run = export_run
        self.objective = self.create_objective()

    @classmethod
    def summary(cls) -> str:
        """The first line of the task's docstring: what `--task=<name>` trains (for --help)."""
        return cls.__doc__.strip().splitlines()[0]

    @cached_property
    def preset(self):
        """The loaded `task.preset` (a `zoo.presets.BertPreset`) of a task that has one, or None."""
        name = getattr(self.config.task, "preset", None)
        return load_bert_preset(name) if name else None

    def create_objective(self):
        """The loss and metrics the trainer uses (see `trainers.tasks.classification.Classification`)."""
        raise NotImplementedError

    def prepare_inputs(self) -> TaskInputs:
        raise NotImplementedError

    def build_model(self, inputs: TaskInputs) -> keras.Model:
        """The model, built on `inputs.sample_model_input` (every weight exists before a restore)."""
        raise NotImplementedError

    def finish(self, model, inputs: TaskInputs, *, export_dir: pathlib.Path | None):
        """After training: exports to `export_dir` (None: no export) and returns the version
        directory, or prints what to do with the run and returns None."""
        raise NotImplementedError


# name -> Task class, filled by `register_task` as `trainers.tasks` imports each task's module.
TASKS: dict[str, type] = {}


def register_task(task_class):
    """Class decorator: makes `task_class` available as `--task=<task_class.name>`."""
    if task_class.name in TASKS:
        raise ValueError(f"task {task_class.name!r} is already registered")
    TASKS[task_class.name] = task_class
    return task_class


def cross_entropy(labels, logits, label_smoothing=0.0):
    """Softmax cross-entropy in float32 (logits may be float16 / bfloat16) of int labels [...] against
    logits [..., classes]; with `label_smoothing` e, against (1 - e) * one-hot + e / classes."""
    logits = tf.cast(logits, tf.float32)
    if not label_smoothing:
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    num_classes = logits.shape[-1]
    targets = tf.one_hot(labels, num_classes) * (1 - label_smoothing) + label_smoothing / num_classes
    return tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits)


def model_overrides(config, inputs: TaskInputs, preset=None) -> dict:
    """The model's constructor overrides: the config's, a preset's sizes, the vocabulary's size.

    Raises:
        ConfigError: data.sequence_length is longer than the model's position table.
    """
    overrides = dict(config.model_overrides)
    if preset is not None:
        overrides.update(preset.encoder_config)
    if inputs.modality == "text":
        overrides["vocabulary_size"] = inputs.preprocessor.vocabulary_size
        max_length = overrides.get("max_sequence_length", zoo.default_config(config.model_name).get("max_sequence_length"))
        if max_length is not None and max_length < config.data.sequence_length:
            raise ConfigError(
                f"data.sequence_length={config.data.sequence_length} exceeds "
                f"model.max_sequence_length={max_length}; raise the latter or shorten the former"
            )
    return overrides
