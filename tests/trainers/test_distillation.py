"""The teacher's side of distillation: finding its SavedModel, and joining its outputs to the labels."""

import numpy as np
import tensorflow as tf

from trainers.tasks import distillation


def test_teacher_is_a_saved_model_or_the_latest_version_of_an_export_base(tmp_path):
    for version in ("1", "2", "10"):
        (tmp_path / "exports" / "bert" / version).mkdir(parents=True)
        (tmp_path / "exports" / "bert" / version / "saved_model.pb").write_bytes(b"")
    assert distillation.find_teacher_saved_model(tmp_path / "exports" / "bert") == tmp_path / "exports" / "bert" / "10"
    assert distillation.find_teacher_saved_model(tmp_path / "exports" / "bert" / "2") == tmp_path / "exports" / "bert" / "2"
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("model: {name: bert}\n")
    assert distillation.find_teacher_saved_model(tmp_path / "run") is None  # A run's model_dir: exported first.
    assert distillation.find_teacher_saved_model(tmp_path / "missing") is None


def test_teacher_probabilities_join_the_labels_in_example_order():
    texts = [f"text {i}" for i in range(5)]

    def load():
        return tf.data.Dataset.from_tensor_slices((texts, np.arange(5, dtype=np.int64)))

    probabilities = np.stack([np.arange(5) / 10, 1 - np.arange(5) / 10], axis=1).astype(np.float32)
    examples = list(distillation.with_teacher_targets(load, probabilities)().as_numpy_iterator())
    assert [text.decode() for text, _ in examples] == texts
    for index, (_, labels) in enumerate(examples):
        assert labels["label"] == index
        np.testing.assert_array_equal(labels["teacher_probabilities"], probabilities[index])
