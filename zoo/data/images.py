"""Image pixels -> the float32 input the zoo's image models take."""

import keras
import tensorflow as tf


class ImagePreprocessor(keras.layers.Layer):
    """Casts uint8 (or any numeric) pixels to float32, values unchanged (0..255).

    The models rescale pixels themselves, so a SavedModel client sends raw pixel values and
    training, evaluation and serving share one definition of the input. Works on one image
    [height, width, channels] (inside `tf.data.Dataset.map`) and on a batch
    [batch, height, width, channels] alike.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Nothing to build: no weights, and any input rank is fine.
        self.built = True

    def call(self, image):
        return tf.cast(image, tf.float32)
