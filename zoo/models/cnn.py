"""A small convolutional image classifier, in the style of Keras' MNIST convnet example."""

import keras

from zoo.layers import ClassifierHead
from zoo.registry import register


@register("cnn", input_kind="image")
@keras.saving.register_keras_serializable(package="zoo")
class ConvNet(keras.Model):
    """Random translation -> [convolution -> batch norm -> ReLU -> max-pool] blocks -> flatten -> dense head.

    Keras' MNIST convnet (two convolutions, max-pooling, a dense layer of 128 over the flattened
    feature map, dropout, softmax), made to train in fewer epochs:

    - Batch normalization (Ioffe & Szegedy 2015, https://arxiv.org/abs/1502.03167) after each
      convolution lets the stack train at a high learning rate.
    - The head reads the flattened feature map, not its global average: which stroke is where
      tells a 4 from a 9, and averaging over positions throws that away.
    - Random translation by up to `translation` of the height and width (training only; identity
      at evaluation and in the SavedModel) is the augmentation that suits digits: a shifted digit
      is the same digit, whereas a flipped or strongly rotated one may not be (6 and 9).

    "same" padding in both convolution and pooling keeps every spatial size >= 1, so any
    H x W x C input works (8x8x1 digits, 28x28x1 MNIST, 32x32x3 CIFAR alike); the head's input
    size follows from the input shape when the model is built.

    Args:
        num_classes: int. Number of output classes.
        filters: tuple of int. Output channels of each block; one block per entry.
        kernel_size: int. Height and width of every convolution window.
        head_units: int. Width of the hidden dense layer before the classifier head.
        dropout: float. Dropout rate of the classifier head.
        translation: float. Largest random shift during training, as a fraction of the image's
            height and width; 0 turns augmentation off.

    Call arguments:
        images: float32 [batch, height, width, channels], raw pixel values 0..255.

    Returns:
        Logits, float32 [batch, num_classes].

    Example:
    >>> model = ConvNet(num_classes=10)
    >>> model(keras.ops.zeros([2, 28, 28, 1])).shape
    (2, 10)
    """

    def __init__(
        self, num_classes=10, filters=(32, 64), kernel_size=3, head_units=128, dropout=0.25, translation=0.1, **kwargs
    ):
        super().__init__(**kwargs)
        # === Layers ===
        self.rescale = keras.layers.Rescaling(1.0 / 255)
        # Pixels shifted in from outside the image are background (0).
        self.augment = keras.layers.RandomTranslation(translation, translation, fill_mode="constant") if translation else None
        self.blocks = [
            [
                keras.layers.Conv2D(width, kernel_size, padding="same", use_bias=False),
                # Momentum 0.9 (Keras' default is 0.99): the moving statistics used at
                # evaluation catch up within one short epoch on small datasets. Synchronized:
                # statistics of the global batch, so N replicas train as one device does.
                keras.layers.BatchNormalization(momentum=0.9, synchronized=True),
                keras.layers.ReLU(),
                keras.layers.MaxPooling2D(2, padding="same"),
            ]
            for width in filters
        ]
        self.flatten = keras.layers.Flatten()
        self.hidden = keras.layers.Dense(head_units, activation="relu")
        self.head = ClassifierHead(num_classes, dropout=dropout)

        # === Config ===
        self.num_classes = num_classes
        self.filters = tuple(filters)
        self.kernel_size = kernel_size
        self.head_units = head_units
        self.dropout = dropout
        self.translation = translation

    def call(self, images, training=False):
        x = self.rescale(images)  # [batch, H, W, C] in 0..1
        if self.augment is not None:
            x = self.augment(x, training=training)  # Shifted during training only.
        for convolution, batch_norm, relu, pool in self.blocks:
            x = pool(relu(batch_norm(convolution(x), training=training)))  # [batch, ceil(H/2), ceil(W/2), width]
        x = self.flatten(x)  # [batch, H' * W' * filters[-1]]: where each feature fired is kept.
        x = self.hidden(x)  # [batch, head_units]
        return self.head(x, training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "filters": list(self.filters),
            "kernel_size": self.kernel_size,
            "head_units": self.head_units,
            "dropout": self.dropout,
            "translation": self.translation,
        }
