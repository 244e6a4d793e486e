"""The shared encoder block: shapes, masking, and the same weights layout as keras-hub's block."""

import keras
import keras_hub
import numpy as np

from zoo.layers import TransformerEncoderBlock


def test_output_keeps_the_input_shape():
    block = TransformerEncoderBlock(num_heads=2, intermediate_dim=16)
    assert tuple(block(np.ones([3, 5, 8], np.float32)).shape) == (3, 5, 8)


def test_padded_keys_do_not_change_real_positions():
    block = TransformerEncoderBlock(num_heads=2, intermediate_dim=16)
    rng = np.random.default_rng(0)
    x = rng.normal(size=[2, 6, 8]).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0]])
    noisy = x + (1 - mask)[..., None] * rng.normal(size=x.shape).astype(np.float32) * 10
    np.testing.assert_allclose(
        block(x, padding_mask=mask) * mask[..., None], block(noisy, padding_mask=mask) * mask[..., None], atol=1e-5
    )


def test_matches_keras_hub_transformer_encoder_given_the_same_weights():
    """Same equations as keras-hub's post-LN block: identical outputs once weights are copied."""
    options = dict(num_heads=4, intermediate_dim=32, activation="gelu", layer_norm_epsilon=1e-12)
    ours = TransformerEncoderBlock(**options)
    theirs = keras_hub.layers.TransformerEncoder(**options)
    x = np.random.default_rng(0).normal(size=[2, 7, 16]).astype(np.float32)
    mask = np.array([[1] * 7, [1] * 4 + [0] * 3])
    ours(x, padding_mask=mask)
    theirs(x, padding_mask=mask)
    assert [w.shape for w in ours.weights] == [w.shape for w in theirs.weights]
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(ours(x, padding_mask=mask), theirs(x, padding_mask=mask), atol=1e-5)


def test_config_round_trip():
    block = TransformerEncoderBlock(num_heads=2, intermediate_dim=16, dropout=0.2, activation="gelu")
    clone = TransformerEncoderBlock.from_config(block.get_config())
    assert clone.get_config() == block.get_config()
    assert keras.activations.serialize(clone.activation) == keras.activations.serialize(block.activation)
