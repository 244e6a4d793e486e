"""The one classification head every zoo classifier ends with: dropout -> dense logits in float32.

keras-hub splits a task model into a backbone and a head (`BertTextClassifier(backbone=...)`).
Here each family's model keeps its feature extractor inline and ends with this layer, rather
than being wrapped as a generic `Classifier(backbone, head)`:
- a family's flat config (`model.dropout`, `model.hidden_dim`) is what run configs set, and its
  `dropout` means different things: the head's alone (CNN, GRU/LSTM), the whole model's
  (Transformer, BERT), none (bag of n-grams);
- a family is its class: the registry's `model_class` is how the trainers group `bert_mini` with
  `bert`, so one shared class would merge every family;
- each model's weights keep their order and initial values, so every checkpoint restores as before.
BERT, whose encoder serves two task models, is split as keras-hub splits it (`zoo.models.bert`).
"""

import keras

from zoo.layers.dropout import Dropout


@keras.saving.register_keras_serializable(package="zoo")
class ClassifierHead(keras.layers.Layer):
    """Dropout (Srivastava et al. 2014) -> dense layer: one logit per class, from a feature vector.

    The dense layer computes in float32 whatever the dtype policy: under mixed precision the
    logits, and the softmax and loss taken from them, keep float32's range and precision.

    Args:
        num_classes: int. Number of output classes.
        dropout: float. Rate at which features are dropped in training; 0 for none.
        kernel_initializer: str or initializer of the dense kernel.

    Call arguments:
        features: float [batch, features], the sentence or image representation.

    Returns:
        Logits, float32 [batch, num_classes].

    Example:
    >>> head = ClassifierHead(num_classes=3, dropout=0.1)
    >>> head(keras.ops.ones([2, 16])).shape
    (2, 3)
    """

    def __init__(self, num_classes, dropout=0.0, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        # === Layers ===
        self.output_dropout = Dropout(dropout, dtype=self.dtype_policy, name="output_dropout")
        self.output_dense = keras.layers.Dense(
            num_classes, kernel_initializer=kernel_initializer, dtype="float32", name="output_dense"
        )

        # === Config ===
        self.num_classes = num_classes
        self.dropout = dropout

    def call(self, features, training=False):
        return self.output_dense(self.output_dropout(features, training=training))

    def compute_output_shape(self, features_shape):
        return (*features_shape[:-1], self.num_classes)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "dropout": self.dropout,
            "kernel_initializer": keras.initializers.serialize(self.output_dense.kernel_initializer),
        }
