"""Knowledge distillation's data side: the teacher's probabilities, computed once, joined to the labels.

Hinton et al. (2015) train a small student on a large teacher's softened outputs. Here the
teacher is a SavedModel, as TF Serving would load it: it takes the same raw input the student
reads (text or pixels), so any model can teach any other (a GRU from BERT, with another
vocabulary). Its probabilities for every train and eval example are computed once, before
training, and saved in the student's `model_dir`; the input pipeline carries them as labels
beside the true class. No teacher runs inside the student's gradient tape, and a resumed run
reads them back.
"""

import hashlib
import pathlib

import numpy as np
import tensorflow as tf

from zoo.atomic import write_atomically
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
