"""Masked mean and max pooling over a sequence, finite on a text with no tokens."""

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


@keras.saving.register_keras_serializable(package="zoo")
class MaskedMaxPooling(keras.layers.Layer):
    """The element-wise maximum of a sequence's vectors over its real (unmasked) positions.

    Max pooling over a bidirectional recurrent layer's states ("BiLSTM-max", Conneau et al. 2017,
    https://arxiv.org/abs/1705.02364) lets each feature fire at the word that drives it, wherever
    in the sentence it stands, where the last state must carry everything to the sentence's end.
    Padded positions never win; a row with no real position (an empty text) pools to zeros, as
    `MaskedMeanPooling` does, so the classifier answers with its bias alone.

    Call arguments:
        inputs: float [batch, sequence, dim].
        mask: bool [batch, sequence]; True at real positions.

    Returns:
        float [batch, dim].

    Example:
    >>> values = keras.ops.convert_to_tensor([[[1.0], [5.0], [9.0]], [[2.0], [3.0], [4.0]]])
    >>> mask = keras.ops.convert_to_tensor([[1, 1, 0], [0, 0, 0]]) > 0
    >>> keras.ops.convert_to_numpy(MaskedMaxPooling()(values, mask=mask))[:, 0].tolist()
    [5.0, 0.0]
    """

    def call(self, inputs, mask):
        real = ops.expand_dims(mask, axis=-1)  # [batch, sequence, 1]
        lowest = ops.cast(-6.0e4 if inputs.dtype == "float16" else -3.0e38, inputs.dtype)  # Below any state.
        pooled = ops.max(ops.where(real, inputs, lowest), axis=1)  # [batch, dim]
        return ops.where(ops.any(real, axis=1), pooled, ops.zeros_like(pooled))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])
