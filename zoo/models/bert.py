"""BERT: a bidirectional Transformer encoder with a sentence classification head.

Devlin et al. 2018, "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding", https://arxiv.org/abs/1810.04805.
"""

import keras
import keras_hub

from zoo.layers import TransformerEncoderBlock, check_divisible
from zoo.registry import register


def _bert_initializer():
    return keras.initializers.TruncatedNormal(stddev=0.02)


@keras.saving.register_keras_serializable(package="zoo")
class BertEncoder(keras.Model):
    """BERT's encoder ("backbone"): embeddings -> N Transformer encoder blocks -> pooler.

    Section 3 of the paper: the input representation is the sum of token, segment and
    learned position embeddings, layer-normalized; the encoder is the Transformer's
    (GELU activation); the pooled output is tanh(W h_[CLS] + b), the [CLS] token's final state
    through a dense layer. Layers are named and shaped like keras-hub's `BertBackbone`, so
    its weights load into this encoder one to one.

    Args:
        vocabulary_size: int. Size of the WordPiece vocabulary.
        num_layers: int. Encoder blocks.
        num_heads: int. Attention heads per block; must divide `hidden_dim`.
        hidden_dim: int. Width of embeddings and of every block's output.
        intermediate_dim: int. Width of each block's feed-forward layer.
        max_sequence_length: int. Longest input the position table covers.
        num_segments: int. Segment (sentence A / B) types.
        dropout: float. Dropout after the embeddings and inside the blocks.

    Call arguments:
        inputs: dict of int32 [batch, sequence] tensors: "token_ids", "segment_ids" and
            "padding_mask" (1 for real tokens, 0 for padding).

    Returns:
        {"sequence_output": float [batch, sequence, hidden_dim],
         "pooled_output": float [batch, hidden_dim]}.

    Example:
    >>> encoder = BertEncoder(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=32,
    ...                       intermediate_dim=64, max_sequence_length=16)
    >>> ones = keras.ops.ones([2, 16], "int32")
    >>> outputs = encoder({"token_ids": ones, "segment_ids": 0 * ones, "padding_mask": ones})
    >>> outputs["sequence_output"].shape, outputs["pooled_output"].shape
    ((2, 16, 32), (2, 32))
    """

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        max_sequence_length=512,
        num_segments=2,
        dropout=0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_divisible(hidden_dim, num_heads)
        # === Layers ===
        self.token_embedding = keras.layers.Embedding(
            vocabulary_size, hidden_dim, embeddings_initializer=_bert_initializer(), name="token_embedding"
        )
        self.position_embedding = keras_hub.layers.PositionEmbedding(
            sequence_length=max_sequence_length, initializer=_bert_initializer(), name="position_embedding"
        )
        self.segment_embedding = keras.layers.Embedding(
            num_segments, hidden_dim, embeddings_initializer=_bert_initializer(), name="segment_embedding"
        )
        self.embeddings_layer_norm = keras.layers.LayerNormalization(epsilon=1e-12, name="embeddings_layer_norm")
        self.embeddings_dropout = keras.layers.Dropout(dropout, name="embeddings_dropout")
        self.encoder_blocks = [
            TransformerEncoderBlock(
                num_heads,
                intermediate_dim,
                dropout=dropout,
                activation=keras.activations.gelu,  # exact GELU (approximate=False), as BERT
                layer_norm_epsilon=1e-12,
                kernel_initializer=_bert_initializer(),
                name=f"transformer_layer_{index}",
            )
            for index in range(num_layers)
        ]
        self.pooled_dense = keras.layers.Dense(
            hidden_dim, activation="tanh", kernel_initializer=_bert_initializer(), name="pooled_dense"
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.max_sequence_length = max_sequence_length
        self.num_segments = num_segments
        self.dropout = dropout

    def call(self, inputs, training=False):
        token_ids, segment_ids, padding_mask = inputs["token_ids"], inputs["segment_ids"], inputs["padding_mask"]
        tokens = self.token_embedding(token_ids)  # [batch, sequence, hidden]
        x = tokens + self.position_embedding(tokens) + self.segment_embedding(segment_ids)
        x = self.embeddings_dropout(self.embeddings_layer_norm(x), training=training)
        for block in self.encoder_blocks:
            x = block(x, padding_mask=padding_mask, training=training)
        return {
            "sequence_output": x,  # [batch, sequence, hidden]
            "pooled_output": self.pooled_dense(x[:, 0, :]),  # [batch, hidden], from [CLS]
        }

    def load_keras_hub_weights(self, backbone):
        """Copies the weights of a `keras_hub.models.BertBackbone` of the same sizes into this encoder.

        Layer by layer: both stack the same sublayers in the same order (see the class docstring),
        so e.g. `keras_hub.models.BertBackbone.from_preset(path)` weights serve in a zoo BERT.
        """
        pairs = [
            (self.token_embedding, backbone.token_embedding),
            (self.position_embedding, backbone.position_embedding),
            (self.segment_embedding, backbone.segment_embedding),
            (self.embeddings_layer_norm, backbone.embeddings_layer_norm),
            *zip(self.encoder_blocks, backbone.transformer_layers, strict=True),
            (self.pooled_dense, backbone.pooled_dense),
        ]
        for ours, theirs in pairs:
            ours.set_weights(theirs.get_weights())

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "max_sequence_length": self.max_sequence_length,
            "num_segments": self.num_segments,
            "dropout": self.dropout,
        }


@register(
    "bert",
    input_kind="bert",
    vocabulary_size=2000,
    num_classes=2,
    num_layers=2,
    num_heads=2,
    hidden_dim=128,
    intermediate_dim=512,
    max_sequence_length=128,
    num_segments=2,
    dropout=0.1,
)
@keras.saving.register_keras_serializable(package="zoo")
class BertClassifier(keras.Model):
    """BERT for sentence (pair) classification: `BertEncoder` -> pooled output -> dense logits.

    Section 4.1 of the paper: the pooled [CLS] representation feeds one new dense layer.
    The encoder is reachable alone as `model.encoder`.

    Args:
        num_classes: int. Number of output classes.
        vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim,
        max_sequence_length, num_segments, dropout: the encoder's (see `BertEncoder`);
            `dropout` also applies before the head.

    Call arguments:
        inputs: dict of int32 [batch, sequence]: "token_ids", "segment_ids", "padding_mask".

    Returns:
        Logits, float32 [batch, num_classes].

    Example:
    >>> import zoo
    >>> model = zoo.build("bert", num_layers=4, hidden_dim=256, num_heads=4, intermediate_dim=1024)
    >>> ones = keras.ops.ones([2, 16], "int32")
    >>> model({"token_ids": ones, "segment_ids": 0 * ones, "padding_mask": ones}).shape
    (2, 2)
    """

    def __init__(
        self,
        vocabulary_size,
        num_classes,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        max_sequence_length=512,
        num_segments=2,
        dropout=0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # === Layers ===
        self.encoder = BertEncoder(
            vocabulary_size=vocabulary_size,
            num_layers=num_layers,
            num_heads=num_heads,
            hidden_dim=hidden_dim,
            intermediate_dim=intermediate_dim,
            max_sequence_length=max_sequence_length,
            num_segments=num_segments,
            dropout=dropout,
            name="encoder",
        )
        self.head_dropout = keras.layers.Dropout(dropout)
        self.classifier = keras.layers.Dense(
            num_classes, kernel_initializer=_bert_initializer(), dtype="float32", name="classifier"
        )

        # === Config ===
        self.num_classes = num_classes

    def call(self, inputs, training=False):
        pooled = self.encoder(inputs, training=training)["pooled_output"]  # [batch, hidden]
        return self.classifier(self.head_dropout(pooled, training=training))

    def get_config(self):
        encoder_config = self.encoder.get_config()
        fields = ["vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim",
                  "max_sequence_length", "num_segments", "dropout"]
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            **{field: encoder_config[field] for field in fields},
        }
