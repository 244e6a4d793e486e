"""`--task=distill`: a student learns from a teacher's softened probabilities and the true labels.

Hinton et al. (2015) train a small student on a large teacher's softened outputs. Here the
teacher is a SavedModel, as TF Serving would load it: it takes the same raw input the student
reads (text or pixels), so any model can teach any other (a GRU from BERT, with another
vocabulary). Its probabilities for every train and eval example are computed once, before
training, and saved in the student's `model_dir`; the input pipeline carries them as labels
beside the true class. No teacher runs inside the student's gradient tape, and a resumed run
reads them back. Everything else (inputs, model, export) is classification's.
"""

import dataclasses
import hashlib
import pathlib

import numpy as np
import tensorflow as tf

from trainers.tasks.base import register_task
from trainers.tasks.classification import Classification, ClassificationConfig, ClassificationTask, classification_metrics
from zoo.atomic import write_atomically
from zoo.data.pipeline import PADDING_LABEL
from zoo.errors import ConfigError
from zoo.serving import ServingError, latest_version_dir

TEACHER_BATCH_SIZE = 256


def find_teacher_saved_model(path) -> pathlib.Path | None:
    """The SavedModel at `path`: itself, or the highest version of an export base (`exports/bert`).

    Returns None where `path` holds neither (it may be a run's `model_dir`, exported by the caller).
    """
    try:
        version_dir = latest_version_dir(pathlib.Path(path))
    except ServingError:
        return None
    return version_dir if (version_dir / "saved_model.pb").is_file() else None


def teacher_targets(saved_model_dir, load_fn, num_classes, cache_path) -> np.ndarray:
    """The teacher's probabilities for each example of `load_fn()`, in order; cached in `cache_path`.

    Args:
        saved_model_dir: path of a zoo SavedModel (its `serving_default` returns `probabilities`).
        load_fn: callable -> unbatched `(raw_input, label)` dataset, as the student reads it
            (raw_input a tf.string scalar, a `(text, text_pair)` tuple, or uint8 pixels).
        num_classes: int. The student's; the teacher must have as many.
        cache_path: pathlib.Path of the `.npy` file. Written atomically.

    Returns:
        float32 [num_examples, num_classes].

    Raises:
        ConfigError: the teacher's inputs or classes do not fit the student's data.
    """
    if cache_path.is_file():
        return np.load(cache_path)
    serving = tf.saved_model.load(str(saved_model_dir)).signatures["serving_default"]
    input_specs = serving.structured_input_signature[1]
    # A pair task's teacher takes text and text_pair: the order of the student's raw input tuple.
    names = [name for name in ("text", "text_pair", "image") if name in input_specs]
    batches = []
    for raw_inputs, _ in load_fn().batch(TEACHER_BATCH_SIZE):
        raw_inputs = tf.nest.flatten(raw_inputs)
        if len(raw_inputs) != len(names):
            raise ConfigError(f"--teacher={saved_model_dir} takes {', '.join(names)}, but the data gives "
                              f"{len(raw_inputs)} input(s) an example")
        inputs = {name: tf.cast(raw, input_specs[name].dtype) for name, raw in zip(names, raw_inputs)}
        batches.append(serving(**inputs)["probabilities"].numpy().astype(np.float32))
    probabilities = np.concatenate(batches)
    if probabilities.shape[-1] != num_classes:
        raise ConfigError(f"--teacher={saved_model_dir} predicts {probabilities.shape[-1]} classes; "
                          f"the student's data has {num_classes}")
    cache_path.parent.mkdir(parents=True, exist_ok=True)

    def write(temporary):
        with temporary.open("wb") as file:  # A file object: np.save would add ".npy" to a name.
            np.save(file, probabilities)

    write_atomically(cache_path, write)
    return probabilities


def with_teacher_targets(load_fn, probabilities):
    """`load_fn` whose labels become `{"label": label, "teacher_probabilities": float32 [num_classes]}`."""
    def load():
        joined = tf.data.Dataset.zip(load_fn(), tf.data.Dataset.from_tensor_slices(probabilities))
        return joined.map(lambda example, teacher: (example[0], {"label": example[1], "teacher_probabilities": teacher}))

    return load


def distillation_splits(load_split, splits, saved_model_dir, num_classes, cache_dir):
    """`load_split` whose given splits carry the teacher's probabilities (see `with_teacher_targets`).

    Args:
        load_split: `fn(split) -> load_fn`. splits: the split names (train, eval).
        saved_model_dir: the teacher's SavedModel. cache_dir: pathlib.Path for the targets.

    Returns:
        `fn(split) -> load_fn` over the same splits.
    """
    # The cache names the teacher: a student's model_dir taught by another SavedModel recomputes.
    teacher_key = hashlib.sha256(str(pathlib.Path(saved_model_dir).resolve()).encode()).hexdigest()[:12]
    targets = {
        split: teacher_targets(saved_model_dir, load_split(split), num_classes, cache_dir / f"{teacher_key}-{split.replace('/', '_')}.npy")
        for split in splits
    }
    return lambda split: with_teacher_targets(load_split(split), targets[split])


@dataclasses.dataclass
class DistillationConfig(ClassificationConfig):
    """distill's fields: the teacher, and how its softened outputs weigh against the labels."""

    name: str = "distill"
    teacher: str | None = None  # A SavedModel, an export base (exports/bert) or a trained run's model_dir.
    temperature: float = 2.0  # T, softening both the teacher's and the student's outputs.
    alpha: float = 0.5  # Weight of the soft (teacher) loss; 1 - alpha weighs the true labels.
    RESUME_FIELDS = (*ClassificationConfig.RESUME_FIELDS, "teacher")

    def validate(self, model_spec):
        super().validate(model_spec)
        if self.teacher is None:
            raise ConfigError("task.teacher is required by --task=distill: --task=distill --teacher=PATH")
        if self.temperature <= 0:
            raise ConfigError(f"task.temperature must be > 0, got {self.temperature}")
        if not 0 <= self.alpha <= 1:
            raise ConfigError(f"task.alpha must be in [0, 1], got {self.alpha}")


class Distillation(Classification):
    """Knowledge distillation (Hinton et al. 2015, section 2): match the teacher's softened outputs.

        loss = alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(label, student)

    where x_T = softmax(logits / T). The teacher's logits are log(probabilities) up to a constant,
    which softmax ignores. T^2 keeps the soft term's gradients on the hard term's scale as T grows.

    Labels: {"label": int32 [batch], "teacher_probabilities": float [batch, classes]}
    (`with_teacher_targets`). Outputs: the student's logits float [batch, classes]. Reports the
    classification metrics, plus `teacher_agreement`: the share of examples where the student's
    class is the teacher's.
    """

    EVAL_METRICS = (*Classification.EVAL_METRICS, "teacher_agreement")
    SUMS = (*Classification.SUMS, "agreed")
    RATIOS = {**Classification.RATIOS, "teacher_agreement": ("agreed", "count")}

    def __init__(self, temperature, alpha, label_smoothing=0.0):
        super().__init__(label_smoothing)
        self.temperature = temperature
        self.alpha = alpha

    def per_example_loss(self, labels, logits):
        real = labels["label"] != PADDING_LABEL
        # Filler rows carry -1 for every label: any valid distribution keeps their (zero-weighted) loss finite.
        teacher = tf.where(real[:, tf.newaxis], labels["teacher_probabilities"], 1.0)
        teacher_log_t = tf.nn.log_softmax(tf.math.log(tf.maximum(teacher, 1e-12)) / self.temperature)
        student_log_t = tf.nn.log_softmax(tf.cast(logits, tf.float32) / self.temperature)
        kl = tf.reduce_sum(tf.exp(teacher_log_t) * (teacher_log_t - student_log_t), axis=-1)
        soft = self.alpha * self.temperature**2 * kl * tf.cast(real, tf.float32)
        return soft + (1 - self.alpha) * super().per_example_loss(labels["label"], logits)

    def step_sums(self, labels, logits, per_example_loss):
        sums = super().step_sums(labels["label"], logits, per_example_loss)
        real = labels["label"] != PADDING_LABEL
        agreed = tf.argmax(logits, axis=-1) == tf.argmax(labels["teacher_probabilities"], axis=-1)
        return dict(sums, agreed=tf.reduce_sum(tf.cast(real & agreed, tf.float32)))

    def eval_values(self, labels, logits):
        values = super().eval_values(labels["label"], logits)
        real = labels["label"] != PADDING_LABEL
        return dict(values, teacher_classes=tf.argmax(labels["teacher_probabilities"], axis=-1)[real])

    def eval_metrics(self, values):
        metrics = classification_metrics(values["labels"], values["probabilities"])
        agreement = np.mean(values["probabilities"].argmax(axis=-1) == values["teacher_classes"])
        return dict(metrics, teacher_agreement=float(agreement))


@register_task
class DistillationTask(ClassificationTask):
    """Train a student on --teacher's softened probabilities and the true labels (Hinton et al. 2015)."""

    name = "distill"
    Config = DistillationConfig
    EVAL_METRICS = Distillation.EVAL_METRICS

    def create_objective(self):
        return Distillation(self.config.task.temperature, self.config.task.alpha, self.config.task.label_smoothing)

    def teacher_saved_model(self) -> pathlib.Path:
        """`task.teacher` as a SavedModel directory: as given, or a trained run's model_dir, exported once.

        A run's model_dir is exported (best checkpoint, float32) by `export_run` into
        `model_dir/teacher/<teacher model>/<version>`, as `--mode=export` would export it.
        """
        teacher = self.config.task.teacher
        saved_model = find_teacher_saved_model(teacher)
        if saved_model is not None:
            return saved_model
        run_dir = pathlib.Path(teacher)
        if not (run_dir / "config.yaml").is_file():
            raise ConfigError(f"--teacher={teacher} is neither a SavedModel, an export base (<export_dir>/<model>) "
                              "nor a trained run's --model_dir")
        exports = self.model_dir / "teacher"
        exported = [find_teacher_saved_model(base) for base in exports.glob("*") if base.is_dir()]
        if any(exported):  # Exported by an earlier run of this model_dir (task.teacher cannot change).
            return next(saved_model for saved_model in exported if saved_model)
        print(f"Exporting the teacher {run_dir} to {exports}")
        return self.export_run(run_dir, exports)

    def training_splits(self, splits):
        """The splits with the teacher's probabilities beside each label (computed once, cached)."""
        saved_model = self.teacher_saved_model()
        load = distillation_splits(splits.load, [splits.train_split, splits.eval_split], saved_model,
                                   splits.info.num_classes, self.model_dir / "teacher_targets")
        return dataclasses.replace(splits, load=load, cache_key=f"{splits.cache_key}/teacher={saved_model}")
