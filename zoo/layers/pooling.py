"""Masked mean pooling that stays finite on a text with no tokens."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class MaskedMeanPooling(keras.layers.Layer):
    """The mean of a sequence's vectors over its real (unmasked) positions.

    `keras.layers.GlobalAveragePooling1D(mask=...)` divides by the number of real positions, so a
    row with none (an empty or whitespace-only text tokenizes to padding only) comes out 0 / 0 =
    NaN, and the served probabilities with it. Here such a row pools to zeros: the classifier then
    answers with its bias alone, a finite prior, and its gradient is zero.

    Call arguments:
        inputs: float [batch, sequence, dim].
        mask: bool [batch, sequence]; True at real positions.

    Returns:
        float [batch, dim].

    Example:
    >>> pooled = MaskedMeanPooling()(keras.ops.ones([2, 3, 4]), mask=keras.ops.convert_to_tensor([[1, 1, 0], [0, 0, 0]]) > 0)
    >>> keras.ops.convert_to_numpy(pooled)[:, 0].tolist()
    [1.0, 0.0]
    """

    def call(self, inputs, mask):
        weights = ops.expand_dims(ops.cast(mask, inputs.dtype), axis=-1)  # [batch, sequence, 1]
        count = ops.maximum(ops.sum(weights, axis=1), ops.cast(1, inputs.dtype))  # [batch, 1]
        return ops.sum(inputs * weights, axis=1) / count

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])
