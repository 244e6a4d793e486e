"""Exports land as the next integer version, atomically, never replacing an existing one."""

import keras
import numpy as np
import tensorflow as tf

from zoo.data.images import ImagePreprocessor
from zoo.export import export_saved_model, next_version, serving_input_spec


def _tiny_image_model():
    model = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(3)])
    model(np.zeros([1, 4, 4, 1], np.float32))
    return model


def test_next_version_ignores_non_numeric_entries(tmp_path):
    assert next_version(tmp_path / "absent") == 1
    for name in ("1", "7", ".tmp-123", "notes"):
        (tmp_path / name).mkdir()
    assert next_version(tmp_path) == 8


def test_each_export_adds_a_version_and_leaves_no_temporary(tmp_path):
    model, preprocessor = _tiny_image_model(), ImagePreprocessor()
    spec = serving_input_spec("image", [4, 4, 1])
    first = export_saved_model(model, preprocessor, spec, export_dir=tmp_path, model_name="tiny")
    first_mtime = (first / "saved_model.pb").stat().st_mtime_ns
    second = export_saved_model(model, preprocessor, spec, export_dir=tmp_path, model_name="tiny")
    assert [first.name, second.name] == ["1", "2"]
    assert (first / "saved_model.pb").stat().st_mtime_ns == first_mtime
    assert sorted(path.name for path in (tmp_path / "tiny").iterdir()) == ["1", "2"]


def test_serving_signature_returns_probabilities_and_class_id(tmp_path):
    model, preprocessor = _tiny_image_model(), ImagePreprocessor()
    version_dir = export_saved_model(
        model, preprocessor, serving_input_spec("image", [4, 4, 1]), export_dir=tmp_path, model_name="tiny"
    )
    serving = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    images = np.random.default_rng(0).uniform(0, 255, [5, 4, 4, 1]).astype(np.float32)
    outputs = serving(image=tf.constant(images))
    expected = tf.nn.softmax(model(images)).numpy()
    np.testing.assert_allclose(outputs["probabilities"].numpy(), expected, atol=1e-6)
    np.testing.assert_array_equal(outputs["class_id"].numpy(), expected.argmax(-1))
