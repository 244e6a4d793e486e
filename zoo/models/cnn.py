"""A small convolutional image classifier, in the style of Keras' MNIST convnet example."""

import keras

from zoo.registry import register


@register("cnn", input_kind="image", num_classes=10, filters=(32, 64), kernel_size=3, dropout=0.25)
@keras.saving.register_keras_serializable(package="zoo")
class ConvNet(keras.Model):
    """Convolution -> batch norm -> ReLU -> max-pool blocks, then a pooled dense head.

    Batch normalization (Ioffe & Szegedy 2015, https://arxiv.org/abs/1502.03167) after each
    convolution lets the stack train fast at a high learning rate. "same" padding in both
    convolution and pooling keeps every spatial size >= 1, so any H x W x C input works
    (8x8x1 digits, 28x28x1 MNIST, 32x32x3 CIFAR alike).

    Args:
        num_classes: int. Number of output classes.
        filters: tuple of int. Output channels of each block; one block per entry.
        kernel_size: int. Height and width of every convolution window.
        dropout: float. Dropout rate before the classification head.

    Call arguments:
        images: float32 [batch, height, width, channels], raw pixel values 0..255.

    Returns:
        Logits, float32 [batch, num_classes].

    Example:
    >>> model = ConvNet(num_classes=10)
    >>> model(keras.ops.zeros([2, 28, 28, 1])).shape
    (2, 10)
    """

    def __init__(self, num_classes, filters=(32, 64), kernel_size=3, dropout=0.25, **kwargs):
        super().__init__(**kwargs)
        # === Layers ===
        self.rescale = keras.layers.Rescaling(1.0 / 255)
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
        self.global_pool = keras.layers.GlobalAveragePooling2D()
        self.head_dropout = keras.layers.Dropout(dropout)
        self.classifier = keras.layers.Dense(num_classes, dtype="float32")  # float32 logits under mixed precision.

        # === Config ===
        self.num_classes = num_classes
        self.filters = tuple(filters)
        self.kernel_size = kernel_size
        self.dropout = dropout

    def call(self, images, training=False):
        x = self.rescale(images)  # [batch, H, W, C] in 0..1
        for convolution, batch_norm, relu, pool in self.blocks:
            x = pool(relu(batch_norm(convolution(x), training=training)))  # [batch, ceil(H/2), ceil(W/2), width]
        x = self.global_pool(x)  # [batch, filters[-1]]
        return self.classifier(self.head_dropout(x, training=training))

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "filters": list(self.filters),
            "kernel_size": self.kernel_size,
            "dropout": self.dropout,
        }
