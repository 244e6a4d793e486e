"""Recurrent text classifiers: GRU (Cho et al. 2014) and LSTM (Hochreiter & Schmidhuber 1997)."""

import keras

from zoo.registry import register

_CELLS = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}
_DEFAULTS = dict(
    vocabulary_size=2000, num_classes=2, embedding_dim=64, hidden_dim=64, num_layers=1, bidirectional=True, dropout=0.1
)


@register("gru", input_kind="token_ids", cell_type="gru", **_DEFAULTS)
@register("lstm", input_kind="token_ids", cell_type="lstm", **_DEFAULTS)
@keras.saving.register_keras_serializable(package="zoo")
class RecurrentClassifier(keras.Model):
    """Masked embedding -> (bidirectional) recurrent stack -> dense head.

    The GRU's gates (https://arxiv.org/abs/1406.1078) and the LSTM's
    (https://www.bioinf.jku.at/publications/older/2604.pdf) are Keras' reference layers. The
    padding mask from the embedding (token id 0) reaches every recurrent layer, so a padded
    step neither updates the state nor changes the output: a sentence gets the same logits
    whatever it is padded to.

    Args:
        vocabulary_size: int. Size of the token embedding table.
        num_classes: int. Number of output classes.
        cell_type: str. "gru" or "lstm".
        embedding_dim: int. Width of the token embeddings.
        hidden_dim: int. Units of each recurrent layer (per direction).
        num_layers: int. Stacked recurrent layers; all but the last return full sequences.
        bidirectional: bool. Read each sentence both ways and concatenate the states.
        dropout: float. Dropout before the classification head.

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
        vocabulary_size,
        num_classes,
        cell_type="gru",
        embedding_dim=64,
        hidden_dim=64,
        num_layers=1,
        bidirectional=True,
        dropout=0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if cell_type not in _CELLS:
            raise ValueError(f"cell_type must be one of {sorted(_CELLS)}, got {cell_type!r}")
        # === Layers ===
        self.token_embedding = keras.layers.Embedding(vocabulary_size, embedding_dim, mask_zero=True)
        self.recurrent_layers = []
        for index in range(num_layers):
            layer = _CELLS[cell_type](hidden_dim, return_sequences=index < num_layers - 1)
            self.recurrent_layers.append(keras.layers.Bidirectional(layer) if bidirectional else layer)
        self.head_dropout = keras.layers.Dropout(dropout)
        self.classifier = keras.layers.Dense(num_classes, dtype="float32")

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_classes = num_classes
        self.cell_type = cell_type
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout

    def call(self, token_ids, training=False):
        x = self.token_embedding(token_ids)  # [batch, sequence, embedding_dim]
        padding_mask = self.token_embedding.compute_mask(token_ids)  # [batch, sequence], False at padding
        for layer in self.recurrent_layers:
            # [batch, sequence, hidden * directions], the last layer [batch, hidden * directions]
            x = layer(x, mask=padding_mask, training=training)
        return self.classifier(self.head_dropout(x, training=training))

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
            "dropout": self.dropout,
        }
