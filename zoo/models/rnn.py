"""Recurrent text classifiers: GRU (Cho et al. 2014) and LSTM (Hochreiter & Schmidhuber 1997)."""

import keras

from zoo.errors import ConfigError
from zoo.layers import ClassifierHead, MaskedMaxPooling
from zoo.registry import register

_CELLS = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}
_POOLINGS = ("last", "max")


@register("gru", input_kind="token_ids")
@register("lstm", input_kind="token_ids", cell_type="lstm")
@keras.saving.register_keras_serializable(package="zoo")
class RecurrentClassifier(keras.Model):
    """Masked embedding -> embedding dropout -> (bidirectional) recurrent stack -> pooling -> `ClassifierHead`.

    The GRU's gates (https://arxiv.org/abs/1406.1078) and the LSTM's
    (https://www.bioinf.jku.at/publications/older/2604.pdf) are Keras' reference layers. The
    padding mask from the embedding (token id 0) reaches every recurrent layer, so a padded
    step neither updates the state nor changes the output: a sentence gets the same logits
    whatever it is padded to.

    Embedding dropout zeroes whole embedding channels for a whole sentence (`SpatialDropout1D`,
    the feature-wise form of Gal & Ghahramani's 2016 variational dropout on the inputs,
    https://arxiv.org/abs/1512.05287): on a corpus of short phrases such as SST-2 the embedding
    table holds most of the parameters and is where a recurrent classifier overfits first.

    Args:
        vocabulary_size: int. Size of the token embedding table.
        num_classes: int. Number of output classes.
        cell_type: str. "gru" or "lstm".
        embedding_dim: int. Width of the token embeddings.
        hidden_dim: int. Units of each recurrent layer (per direction).
        num_layers: int. Stacked recurrent layers; all but the last return full sequences.
        bidirectional: bool. Read each sentence both ways and concatenate the states.
        embedding_dropout: float. Rate at which embedding channels are dropped, per sentence.
        dropout: float. Dropout rate of the classifier head.
        pooling: str. How the last recurrent layer's states become one vector per sentence:
            "last", its final state (each direction's, after its last real token); or "max", the
            element-wise maximum of its states over the real tokens (`MaskedMaxPooling`,
            "BiLSTM-max", https://arxiv.org/abs/1705.02364).

    Call arguments:
        token_ids: int32 [batch, sequence]; 0 is padding.

    Returns:
        Logits, float32 [batch, num_classes].

    Example:
    >>> model = RecurrentClassifier(vocabulary_size=100, num_classes=2, cell_type="gru")
    >>> model(keras.ops.ones([2, 16], "int32")).shape
    (2, 2)
    """

    def __init__(
        self,
        vocabulary_size=2000,
        num_classes=2,
        cell_type="gru",
        embedding_dim=64,
        hidden_dim=64,
        num_layers=1,
        bidirectional=True,
        embedding_dropout=0.0,
        dropout=0.1,
        pooling="last",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if cell_type not in _CELLS:
            raise ValueError(f"cell_type must be one of {sorted(_CELLS)}, got {cell_type!r}")
        if pooling not in _POOLINGS:
            raise ConfigError(f"model.pooling must be one of {', '.join(_POOLINGS)}, got {pooling!r}")
        # === Layers ===
        self.token_embedding = keras.layers.Embedding(vocabulary_size, embedding_dim, mask_zero=True)
        self.embedding_dropout_layer = keras.layers.SpatialDropout1D(embedding_dropout)
        self.recurrent_layers = []
        for index in range(num_layers):
            layer = _CELLS[cell_type](hidden_dim, return_sequences=index < num_layers - 1 or pooling == "max")
            self.recurrent_layers.append(keras.layers.Bidirectional(layer) if bidirectional else layer)
        self.pooling_layer = MaskedMaxPooling() if pooling == "max" else None
        self.head = ClassifierHead(num_classes, dropout=dropout)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_classes = num_classes
        self.cell_type = cell_type
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.embedding_dropout = embedding_dropout
        self.dropout = dropout
        self.pooling = pooling

    def call(self, token_ids, training=False):
        x = self.token_embedding(token_ids)  # [batch, sequence, embedding_dim]
        padding_mask = self.token_embedding.compute_mask(token_ids)  # [batch, sequence], False at padding
        x = self.embedding_dropout_layer(x, training=training)  # Same shape; some channels zeroed per sentence.
        for layer in self.recurrent_layers:
            # [batch, sequence, hidden * directions]; with "last" pooling the last layer [batch, hidden * directions]
            x = layer(x, mask=padding_mask, training=training)
        if self.pooling_layer is not None:
            x = self.pooling_layer(x, mask=padding_mask)  # [batch, hidden * directions]
        return self.head(x, training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "num_classes": self.num_classes,
            "cell_type": self.cell_type,
            "embedding_dim": self.embedding_dim,
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "embedding_dropout": self.embedding_dropout,
            "dropout": self.dropout,
            "pooling": self.pooling,
        }
