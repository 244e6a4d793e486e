"""The shared classifier head: float32 logits, dropout in training only, a config that rebuilds it."""

import keras
import numpy as np

from zoo.layers import ClassifierHead


def test_logits_are_float32_under_a_mixed_precision_policy():
    head = ClassifierHead(num_classes=3, dropout=0.1, dtype="mixed_bfloat16")
    logits = head(np.ones([2, 8], np.float32))
    assert tuple(logits.shape) == (2, 3) and logits.dtype == "float32"
    assert head.output_dropout.dtype_policy.name == "mixed_bfloat16"  # The features' dtype until the dense layer.


def test_dropout_acts_only_in_training():
    head = ClassifierHead(num_classes=2, dropout=0.5)
    features = np.ones([4, 64], np.float32)
    np.testing.assert_array_equal(head(features), head(features, training=False))
    keras.utils.set_random_seed(0)
    assert not np.allclose(head(features, training=True), head(features))


def test_no_dropout_holds_no_random_state():
    """At rate 0 only the dense layer's kernel and bias are weights (the bag of n-grams' head)."""
    head = ClassifierHead(num_classes=2)
    head(np.ones([1, 4], np.float32))
    assert [tuple(weight.shape) for weight in head.weights] == [(4, 2), (2,)]


def test_config_round_trip():
    head = ClassifierHead(num_classes=4, dropout=0.2, kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02))
    clone = ClassifierHead.from_config(head.get_config())
    assert clone.get_config() == head.get_config()
    assert clone.get_config()["kernel_initializer"]["config"]["stddev"] == 0.02
