"""The one Transformer encoder block that `transformer` and `bert` both stack."""

import keras

from zoo.errors import ConfigError
from zoo.layers.dropout import Dropout


def check_divisible(hidden_dim, num_heads):
    """Attention splits `hidden_dim` evenly over `num_heads`; anything else is a config error."""
    if hidden_dim % num_heads:
        raise ConfigError(
            f"hidden_dim={hidden_dim} must be divisible by num_heads={num_heads} "
            f"(each head gets hidden_dim / num_heads dimensions)"
        )


class _MultiHeadAttention(keras.layers.MultiHeadAttention):
    """Keras' multi-head attention with the zoo's `Dropout` on the attention probabilities.

    That dropout draws the largest mask of a BERT step ([batch, heads, sequence, sequence]).
    `_build_attention` is the hook Keras documents for customising the attention; it is entered
    with the rate set to 0, so that Keras' own dropout layer there holds no seed generator, and
    the zoo's layer then takes the place `_compute_attention` reads, creating its seed generator
    where Keras' would have been: the model's variables keep their count and order.
    """

    def _build_attention(self, rank):
        rate, self._dropout = self._dropout, 0.0
        super()._build_attention(rank)
        self._dropout = rate
        self._dropout_layer = Dropout(rate, dtype=self.dtype_policy, seed=self.seed)


@keras.saving.register_keras_serializable(package="zoo")
class TransformerEncoderBlock(keras.layers.Layer):
    """Post-layer-norm Transformer encoder block ("Attention Is All You Need", section 3.1).

    Vaswani et al. 2017, https://arxiv.org/abs/1706.03762; BERT (Devlin et al. 2018) uses the
    same block with GELU. The sublayers are named and shaped like keras-hub's
    `TransformerEncoder`, so that keras-hub BERT weights load into it one to one:

        x = LayerNorm(x + Dropout(MultiHeadSelfAttention(x, mask=padding_mask)))
        x = LayerNorm(x + Dropout(W2 activation(W1 x + b1) + b2))

    Args:
        num_heads: int. Attention heads; the hidden size must be divisible by it.
        intermediate_dim: int. Width of the feed-forward layer.
        dropout: float. Dropout on attention probabilities and on both sublayer outputs.
        activation: str or callable. Feed-forward activation ("relu" in the paper, "gelu" in BERT).
        layer_norm_epsilon: float. Epsilon of both layer norms (BERT uses 1e-12).
        kernel_initializer: str or initializer for every projection.

    Call arguments:
        inputs: float [batch, sequence, hidden].
        padding_mask: int or bool [batch, sequence]; 1 for real tokens, 0 for padding. Padded
            keys receive no attention, so real positions' outputs do not depend on padding.

    Example:
    >>> block = TransformerEncoderBlock(num_heads=2, intermediate_dim=32)
    >>> block(keras.ops.ones([4, 10, 16]), padding_mask=keras.ops.ones([4, 10])).shape
    (4, 10, 16)
    """

    def __init__(
        self,
        num_heads,
        intermediate_dim,
        dropout=0.0,
        activation="relu",
        layer_norm_epsilon=1e-5,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        # === Config ===
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.activation = keras.activations.get(activation)
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, inputs_shape):
        hidden_dim = inputs_shape[-1]
        check_divisible(hidden_dim, self.num_heads)
        intermediate_shape = (*inputs_shape[:-1], self.intermediate_dim)

        def initializer():  # A fresh instance per layer, so no two kernels share a seed.
            return keras.initializers.get(keras.initializers.serialize(self.kernel_initializer))

        # === Layers === (created in keras-hub's order, so `get_weights()` lists line up)
        self._self_attention_layer = _MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=hidden_dim // self.num_heads,
            dropout=self.dropout,
            kernel_initializer=initializer(),
            dtype=self.dtype_policy,
            name="self_attention_layer",
        )
        self._self_attention_layer.build(query_shape=inputs_shape, value_shape=inputs_shape)
        self._self_attention_dropout = Dropout(self.dropout, dtype=self.dtype_policy)
        self._self_attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="self_attention_layer_norm"
        )
        self._self_attention_layer_norm.build(inputs_shape)
        self._feedforward_layer_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="feedforward_layer_norm"
        )
        self._feedforward_layer_norm.build(inputs_shape)
        self._feedforward_intermediate_dense = keras.layers.Dense(
            self.intermediate_dim,
            activation=self.activation,
            kernel_initializer=initializer(),
            dtype=self.dtype_policy,
            name="feedforward_intermediate_dense",
        )
        self._feedforward_intermediate_dense.build(inputs_shape)
        self._feedforward_output_dense = keras.layers.Dense(
            hidden_dim, kernel_initializer=initializer(), dtype=self.dtype_policy, name="feedforward_output_dense"
        )
        self._feedforward_output_dense.build(intermediate_shape)
        self._feedforward_dropout = Dropout(self.dropout, dtype=self.dtype_policy)
        self.built = True

    def call(self, inputs, padding_mask=None, training=None):
        # [batch, 1, sequence]: every query position may attend to every real (unpadded) key.
        attention_mask = None if padding_mask is None else keras.ops.expand_dims(padding_mask, axis=1)

        # Sublayer 1: multi-head self-attention, softmax(Q K^T / sqrt(d_k)) V, per head.
        attended = self._self_attention_layer(
            query=inputs, value=inputs, attention_mask=attention_mask, training=training
        )
        x = self._self_attention_layer_norm(inputs + self._self_attention_dropout(attended, training=training))

        # Sublayer 2: position-wise feed-forward, W2 activation(W1 x + b1) + b2.
        feedforward = self._feedforward_output_dense(self._feedforward_intermediate_dense(x))
        return self._feedforward_layer_norm(x + self._feedforward_dropout(feedforward, training=training))

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "activation": keras.activations.serialize(self.activation),
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
