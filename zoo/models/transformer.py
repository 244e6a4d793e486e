"""The Transformer encoder as a text classifier ("Attention Is All You Need", encoder side)."""

import keras
import keras_hub

from zoo.errors import ConfigError
from zoo.layers import (
    ClassifierHead,
    Dropout,
    MaskedMaxPooling,
    MaskedMeanPooling,
    TransformerEncoderBlock,
    check_divisible,
)
from zoo.registry import register

POSITION_EMBEDDINGS = ("sinusoidal", "learned")
POOLINGS = {"mean": MaskedMeanPooling, "max": MaskedMaxPooling}


@register("transformer", input_kind="token_ids")
@keras.saving.register_keras_serializable(package="zoo")
class TransformerClassifier(keras.Model):
    """Token + position embedding -> N encoder blocks -> masked mean (or max) pool -> `ClassifierHead`.

    Vaswani et al. 2017, https://arxiv.org/abs/1706.03762, section 3: token embeddings are
    scaled by sqrt(hidden_dim) and summed with sinusoidal position encodings
    (PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(...)), or with learned position
    embeddings as an option. The sentence representation is the mean of the encoder outputs
    over real (unpadded) tokens, or their element-wise maximum.

    Args:
        vocabulary_size: int. Size of the token embedding table.
        num_classes: int. Number of output classes.
        num_layers: int. Encoder blocks.
        num_heads: int. Attention heads per block; must divide `hidden_dim`.
        hidden_dim: int. Width of embeddings and of every block's output.
        intermediate_dim: int. Width of each block's feed-forward layer.
        max_sequence_length: int. Longest input the learned position table can take.
        dropout: float. Dropout after the embeddings, inside the blocks and before the head.
        position_embedding: str. "sinusoidal" (the paper's) or "learned".
        pooling: str. "mean" (`MaskedMeanPooling`) or "max" (`MaskedMaxPooling`): each feature's
            largest value over the real tokens, so it fires at the word that drives it.

    Call arguments:
        token_ids: int32 [batch, sequence]; 0 is padding.

    Returns:
        Logits, float32 [batch, num_classes].

    Example:
    >>> model = TransformerClassifier(vocabulary_size=100, num_classes=2, hidden_dim=32, num_heads=4)
    >>> model(keras.ops.ones([2, 16], "int32")).shape
    (2, 2)
    """

    def __init__(
        self,
        vocabulary_size=2000,
        num_classes=2,
        num_layers=2,
        num_heads=4,
        hidden_dim=64,
        intermediate_dim=128,
        max_sequence_length=128,
        dropout=0.1,
        position_embedding="sinusoidal",
        pooling="mean",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_divisible(hidden_dim, num_heads)
        if position_embedding not in POSITION_EMBEDDINGS:
            raise ValueError(f"position_embedding must be one of {POSITION_EMBEDDINGS}, got {position_embedding!r}")
        if pooling not in POOLINGS:
            raise ConfigError(f"model.pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        # === Layers ===
        self.token_embedding = keras.layers.Embedding(vocabulary_size, hidden_dim)
        if position_embedding == "sinusoidal":
            self.position_embedding = keras_hub.layers.SinePositionEncoding(max_wavelength=10000)
        else:
            self.position_embedding = keras_hub.layers.PositionEmbedding(sequence_length=max_sequence_length)
        self.embedding_dropout = Dropout(dropout)
        self.encoder_blocks = [
            TransformerEncoderBlock(num_heads, intermediate_dim, dropout=dropout, name=f"encoder_block_{index}")
            for index in range(num_layers)
        ]
        self.pool = POOLINGS[pooling]()
        self.head = ClassifierHead(num_classes, dropout=dropout)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_classes = num_classes
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.max_sequence_length = max_sequence_length
        self.dropout = dropout
        self.position_embedding_type = position_embedding
        self.pooling = pooling

    def call(self, token_ids, training=False):
        padding_mask = keras.ops.not_equal(token_ids, 0)  # [batch, sequence]
        tokens = self.token_embedding(token_ids) * self.hidden_dim**0.5
        x = tokens + self.position_embedding(tokens)  # [batch, sequence, hidden]
        x = self.embedding_dropout(x, training=training)
        for block in self.encoder_blocks:
            x = block(x, padding_mask=padding_mask, training=training)
        x = self.pool(x, mask=padding_mask)  # [batch, hidden], over real tokens only (zeros for none)
        return self.head(x, training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "num_classes": self.num_classes,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "max_sequence_length": self.max_sequence_length,
            "dropout": self.dropout,
            "position_embedding": self.position_embedding_type,
            "pooling": self.pooling,
        }
