"""BERT: a bidirectional Transformer encoder with a sentence classification head.

Devlin et al. 2018, "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding", https://arxiv.org/abs/1810.04805.

As in keras-hub, the encoder is the family's backbone and the task models are heads on it:
`BertClassifier` (fine-tuning, section 4.1) and `BertPretrainer` (section 3.1). The encoder's
fields are written once, in `BertEncoder`'s signature; the task models take them as keyword
arguments (`ENCODER_FIELDS`) and keep them in their configs.
"""

import keras
import keras_hub

from zoo.layers import ClassifierHead, Dropout, TransformerEncoderBlock, check_divisible
from zoo.registry import config_fields, register


# Sizes of Turc et al. 2019, "Well-Read Students Learn Better" (the google-research/bert
# README's table): heads = hidden / 64, feed-forward = 4 x hidden.
BERT_SIZES = {
    "bert_tiny": dict(num_layers=2, hidden_dim=128),
    "bert_mini": dict(num_layers=4, hidden_dim=256),
    "bert_small": dict(num_layers=4, hidden_dim=512),
    "bert_medium": dict(num_layers=8, hidden_dim=512),
    "bert_base": dict(num_layers=12, hidden_dim=768),
}
# The attention projections LoRA adapts: Keras MultiHeadAttention's query and value EinsumDense layers.
_LORA_TARGETS = ("query", "value")
# BERT's initializer, a normal of standard deviation 0.02 truncated at two deviations. A config,
# not an instance: each layer makes its own from it, so no two kernels share a seed.
_BERT_INITIALIZER = {"class_name": "TruncatedNormal", "config": {"stddev": 0.02}}


def bert_blocks(num_layers, num_heads, intermediate_dim, dropout, name="transformer_layer"):
    """BERT's stack of `num_layers` Transformer encoder blocks (GELU, layer norm epsilon 1e-12),
    named `{name}_{index}` as keras-hub's; its width is its input's."""
    return [
        TransformerEncoderBlock(
            num_heads,
            intermediate_dim,
            dropout=dropout,
            # Exact GELU (erf). Google's BERT code and keras-hub compute its tanh approximation, which
            # differs by under 1e-3 (Hendrycks & Gimpel 2016): pretrained weights carry over.
            activation=keras.activations.gelu,
            layer_norm_epsilon=1e-12,
            kernel_initializer=_BERT_INITIALIZER,
            name=f"{name}_{index}",
        )
        for index in range(num_layers)
    ]


@keras.saving.register_keras_serializable(package="zoo")
class BertEncoder(keras.Model):
    """BERT's encoder ("backbone"): embeddings -> N Transformer encoder blocks -> pooler.

    Section 3 of the paper: the input representation is the sum of token, segment and
    learned position embeddings, layer-normalized; the encoder is the Transformer's
    (GELU activation); the pooled output is tanh(W h_[CLS] + b), the [CLS] token's final state
    through a dense layer. Layers are named and shaped like keras-hub's `BertBackbone`, so
    its weights load into this encoder one to one.

    The defaults are BERT-Tiny's sizes and the vocabulary of Google's uncased English checkpoints.

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
        vocabulary_size=30522,
        num_layers=2,
        num_heads=2,
        hidden_dim=128,
        intermediate_dim=512,
        max_sequence_length=512,
        num_segments=2,
        dropout=0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_divisible(hidden_dim, num_heads)
        # === Layers ===
        # Reversible: the masked-LM head reuses it as its output projection (tied weights).
        self.token_embedding = keras_hub.layers.ReversibleEmbedding(
            vocabulary_size, hidden_dim, embeddings_initializer=_BERT_INITIALIZER, name="token_embedding"
        )
        self.position_embedding = keras_hub.layers.PositionEmbedding(
            sequence_length=max_sequence_length, initializer=_BERT_INITIALIZER, name="position_embedding"
        )
        self.segment_embedding = keras.layers.Embedding(
            num_segments, hidden_dim, embeddings_initializer=_BERT_INITIALIZER, name="segment_embedding"
        )
        self.embeddings_layer_norm = keras.layers.LayerNormalization(epsilon=1e-12, name="embeddings_layer_norm")
        self.embeddings_dropout = Dropout(dropout, name="embeddings_dropout")
        self.encoder_blocks = bert_blocks(num_layers, num_heads, intermediate_dim, dropout)
        self.pooled_dense = keras.layers.Dense(
            hidden_dim, activation="tanh", kernel_initializer=_BERT_INITIALIZER, name="pooled_dense"
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

    def embed(self, inputs, training=False):
        """The input representation (section 3.2): token + position + segment embeddings, layer-
        normalized [batch, sequence, hidden]; ELECTRA's generator reads the same one."""
        tokens = self.token_embedding(inputs["token_ids"])  # [batch, sequence, hidden]
        x = tokens + self.position_embedding(tokens) + self.segment_embedding(inputs["segment_ids"])
        return self.embeddings_dropout(self.embeddings_layer_norm(x), training=training)

    def call(self, inputs, training=False):
        x = self.embed(inputs, training=training)
        for block in self.encoder_blocks:
            x = block(x, padding_mask=inputs["padding_mask"], training=training)
        return {
            "sequence_output": x,  # [batch, sequence, hidden]
            "pooled_output": self.pooled_dense(x[:, 0, :]),  # [batch, hidden], from [CLS]
        }

    def layers_by_depth(self):
        """The encoder's layers from the input up: the embedding layers, then each block alone.

        Layer-wise learning-rate decay (`train.layer_decay`, trainers/optimization.py) fine-tunes
        each group at a smaller rate the deeper it sits; the pooler, above the blocks, is not
        listed: it trains at the head's rate.
        """
        embeddings = [self.token_embedding, self.position_embedding, self.segment_embedding, self.embeddings_layer_norm]
        return [embeddings, *([block] for block in self.encoder_blocks)]

    def load_keras_hub_weights(self, backbone):
        """Copies the weights of a `keras_hub.models.BertBackbone` of the same sizes into this encoder.

        Layer by layer: both stack the same sublayers in the same order (see the class docstring),
        so e.g. `keras_hub.models.BertBackbone.from_preset(path)` weights serve in a zoo BERT.
        """
        if not self.built:  # Creates the weights: one call on a one-token batch.
            one_token = keras.ops.ones([1, 1], "int32")
            self({"token_ids": one_token, "segment_ids": 0 * one_token, "padding_mask": one_token})
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

    def enable_lora(self, rank):
        """Freezes the encoder and adds trainable rank-`rank` adapters to every attention block.

        LoRA (Hu et al. 2021, https://arxiv.org/abs/2106.09685): each query and value projection
        W [hidden, heads, head_dim] becomes W + A B, with only A [hidden, rank] and B trained (B
        starts at zero, so the outputs are unchanged at first). Keras' `enable_lora` does the
        arithmetic; `kernel` then reads the merged W + A B, which is what a saved model keeps.
        """
        for layer in self._flatten_layers(include_self=False):
            layer.trainable = False
        for layer in self._flatten_layers(include_self=False):
            if layer.name in _LORA_TARGETS and hasattr(layer, "enable_lora"):
                layer.trainable = True  # The adapters and the projection's bias train.
                layer.enable_lora(rank)

    def get_config(self):
        return {**super().get_config(), **{field: getattr(self, field) for field in ENCODER_FIELDS}}


# The encoder's config fields, in its signature's order: every BERT task model takes them too.
ENCODER_FIELDS = tuple(config_fields(BertEncoder))
# An encoder's sizes: what its weights' shapes depend on (a preset or checkpoint must match them).
ENCODER_SIZE_FIELDS = tuple(field for field in ENCODER_FIELDS if field != "dropout")


class BertTask(keras.Model):
    """A `BertEncoder` (`self.encoder`) under task heads; takes and keeps the encoder's fields.

    `backbone_cls` tells the registry that the `**kwargs` of a task model's constructor include
    the encoder's fields (`zoo.registry.config_fields`).
    """

    backbone_cls = BertEncoder

    def __init__(self, **kwargs):
        encoder_config = {field: kwargs.pop(field) for field in ENCODER_FIELDS if field in kwargs}
        super().__init__(**kwargs)  # What is left: Keras' own (name, dtype, trainable).
        self.encoder = BertEncoder(**encoder_config, name="encoder")

    def layers_by_depth(self):
        """The encoder's layer groups from the input up (`BertEncoder.layers_by_depth`); the heads sit above them."""
        return self.encoder.layers_by_depth()

    def enable_lora(self, rank):
        """LoRA on the encoder (see `BertEncoder.enable_lora`); the heads stay fully trainable."""
        self.encoder.enable_lora(rank)

    def get_config(self):
        return {**super().get_config(), **{field: getattr(self.encoder, field) for field in ENCODER_FIELDS}}


@register("bert", input_kind="bert")  # The encoder's defaults: BERT-Tiny.
@keras.saving.register_keras_serializable(package="zoo")
class BertClassifier(BertTask):
    """BERT for sentence (pair) classification: `BertEncoder` -> pooled output -> `ClassifierHead`.

    Section 4.1 of the paper: the pooled [CLS] representation feeds one new dense layer.
    The encoder is reachable alone as `model.encoder`. Registered as `bert` (BERT-Tiny's size)
    and as `bert_tiny`, `bert_mini`, `bert_small`, `bert_medium`, `bert_base` (`BERT_SIZES`).

    Args:
        num_classes: int. Number of output classes.
        **encoder_config: the encoder's fields (`ENCODER_FIELDS`, see `BertEncoder`); its
            `dropout` also applies before the head.

    Call arguments:
        inputs: dict of int32 [batch, sequence]: "token_ids", "segment_ids", "padding_mask".

    Returns:
        Logits, float32 [batch, num_classes].

    Example:
    >>> import zoo
    >>> model = zoo.build("bert_mini", vocabulary_size=1000)
    >>> ones = keras.ops.ones([2, 16], "int32")
    >>> model({"token_ids": ones, "segment_ids": 0 * ones, "padding_mask": ones}).shape
    (2, 2)
    """

    def __init__(self, num_classes=2, **encoder_config):
        super().__init__(**encoder_config)
        # === Layers ===
        self.head = ClassifierHead(num_classes, dropout=self.encoder.dropout, kernel_initializer=_BERT_INITIALIZER)

        # === Config ===
        self.num_classes = num_classes

    def call(self, inputs, training=False):
        pooled = self.encoder(inputs, training=training)["pooled_output"]  # [batch, hidden]
        return self.head(pooled, training=training)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


for _name, _size in BERT_SIZES.items():
    register(
        _name, input_kind="bert", **_size, num_heads=_size["hidden_dim"] // 64, intermediate_dim=4 * _size["hidden_dim"]
    )(BertClassifier)


@keras.saving.register_keras_serializable(package="zoo")
class BertPretrainer(BertTask):
    """BERT's pretraining model (section 3.1): masked-LM and next-sentence heads on the encoder.

    Masked LM: the final hidden states at the masked positions go through a dense GELU layer
    and layer normalization, then onto the vocabulary through the TRANSPOSED token embedding
    (tied weights), plus a bias (`keras_hub.layers.MaskedLMHead`, as keras-hub's BertMaskedLM).
    Next sentence: a dense layer on the pooled [CLS] output, class 1 = "B follows A".

    Args:
        **encoder_config: the encoder's fields (`ENCODER_FIELDS`, see `BertEncoder`).

    Call arguments:
        inputs: dict of int32: "token_ids", "segment_ids", "padding_mask" [batch, sequence] and
            "mask_positions" [batch, predictions] (indices of the masked tokens).

    Returns:
        {"mlm_logits": float32 [batch, predictions, vocabulary_size], "nsp_logits": float32 [batch, 2]}.
    """

    def __init__(self, **encoder_config):
        super().__init__(**encoder_config)
        # === Layers ===
        self.masked_lm_head = keras_hub.layers.MaskedLMHead(
            vocabulary_size=self.encoder.vocabulary_size,
            token_embedding=self.encoder.token_embedding,
            intermediate_activation="gelu",
            layer_norm_epsilon=1e-12,
            kernel_initializer=_BERT_INITIALIZER,
            dtype="float32",
            name="masked_lm_head",
        )
        self.next_sentence_head = keras.layers.Dense(
            2, kernel_initializer=_BERT_INITIALIZER, dtype="float32", name="next_sentence_head"
        )

    def call(self, inputs, training=False):
        outputs = self.encoder(inputs, training=training)
        sequence = keras.ops.cast(outputs["sequence_output"], "float32")  # [batch, sequence, hidden]
        return {
            "mlm_logits": self.masked_lm_head(sequence, mask_positions=inputs["mask_positions"]),
            "nsp_logits": self.next_sentence_head(outputs["pooled_output"]),
        }
