"""Dropout whose masks are cheap under XLA, differ across replicas and resume exactly.

Keras' TensorFlow dropout draws its masks with `tf.nn.experimental.stateless_dropout` and the
device's default generator, Philox. Under XLA on CPU, Philox is slow: a [32, 4, 128, 128] mask
(bert_mini's attention probabilities) took 1.7 s against 9 ms with threefry (2026-12-01, 2-core
AMD EPYC), and BERT draws one such mask per block per step. TensorFlow's kernels outside XLA
implement Philox only, so the generator is chosen where the mask is traced: threefry inside an XLA
cluster (`jit_compile=True`, TPU), Philox elsewhere (38 ms for the same mask).

Under XLA the mask is also drawn again in the backward pass instead of being kept for it
(`redrawn_dropout`): the same masks, and BERT's step 1.7-3.7% faster on a 2-core CPU.
"""

import keras
import tensorflow as tf

# Stateless ops under XLA take int32 seeds; a SeedGenerator's state is int64 (TensorFlow keeps
# int64 variables on the host), so the state is reduced modulo the largest int32 below.
_INT32_SEED_MODULUS = 2**31 - 1


def random_algorithm():
    """The stateless RNG algorithm for ops traced here: "threefry" inside XLA, "philox" outside.

    `tf.__internal__.get_enclosing_xla_context` is the hook TensorFlow exports for Keras: it finds
    the XLA context that `tf.function(jit_compile=True)` and TPU replication enter while tracing.
    """
    return "threefry" if tf.__internal__.get_enclosing_xla_context() is not None else "philox"


def replica_seed(seed_generator, algorithm):
    """The next int32 seed [2] of `seed_generator`, distinct for each replica in sync.

    The generator's state advances by one per call (and so per train step), and the state is a
    non-trainable variable of the layer that owns it: the Trainer checkpoints it with the model's
    random states, so a resumed run draws the masks an uninterrupted run draws. Replicas of a
    MirroredStrategy share that state; folding in `replica_id_in_sync_group` gives each replica its
    own mask, as each holds different examples (replica 0 and a single device draw alike).
    """
    seed = tf.cast(tf.math.floormod(seed_generator.next(), _INT32_SEED_MODULUS), tf.int32)
    context = tf.distribute.get_replica_context()  # None in a cross-replica context: one draw.
    replica_id = 0 if context is None else context.replica_id_in_sync_group
    return tf.random.experimental.stateless_fold_in(seed, replica_id, alg=algorithm)


def random_words(shape, seed, algorithm):
    """Uniform uint32 [shape] from the stateless generator `algorithm`: the bits a mask is cut from.

    One place for them, so that `benchmarks.dropout_masks` can time other generators in the same
    dropout.
    """
    return tf.random.stateless_uniform(shape, seed, minval=None, maxval=None, dtype=tf.uint32, alg=algorithm)


def redrawn_dropout(inputs, rate, noise_shape, seed, algorithm="threefry"):
    """`inputs` with each element (or each `noise_shape` cell) zeroed with probability `rate`, the
    rest scaled by 1 / (1 - rate); the backward pass draws the same mask again from `seed`.

    Why: a mask kept for the backward pass is written out whole and read back, for attention
    probabilities [batch, heads, length, length] per block; drawing it again (threefry: about
    2.5 ms for bert_mini's largest mask under XLA on a 2-core CPU) made the XLA step of bert_tiny
    3.7% and of bert_mini 1.7% faster (BENCHMARKS.md, "The zoo's BERT step, lever by lever").
    An element is kept when a uniform 32-bit integer is at least rate * 2^32: the keep
    probability is exact to 2^-32, and in float32 the mask is `stateless_dropout`'s with the same
    seed but within 2^-23 of the threshold (docs/keras_tf_behaviour.md section 14).

    Args:
        inputs: float tensor, any shape.
        rate: float in (0, 1).
        noise_shape: int list or 1-D tensor, broadcastable to `inputs`' shape.
        seed: int32 [2], e.g. from `replica_seed`.
        algorithm: the stateless RNG algorithm.
    """
    threshold = tf.constant(min(round(rate * 2**32), 2**32 - 1), tf.uint32)
    scale = 1.0 / (1.0 - rate)

    def scaled_mask():  # [noise_shape] of 0 and 1 / (1 - rate), in `inputs`' dtype.
        bits = random_words(noise_shape, seed, algorithm)
        return tf.cast(bits >= threshold, inputs.dtype) * tf.cast(scale, inputs.dtype)

    @tf.custom_gradient
    def apply(values):
        return values * scaled_mask(), lambda upstream: upstream * scaled_mask()

    return apply(inputs)


@keras.saving.register_keras_serializable(package="zoo")
class Dropout(keras.layers.Dropout):
    """`keras.layers.Dropout` (Srivastava et al. 2014) with the zoo's mask generator.

    Same arguments, config and seed-generator state as Keras' layer (a model's variables keep
    their count and order, so checkpoints written with Keras' dropout restore); only the
    draw differs: `random_algorithm()` (threefry under XLA, where the backward pass draws the
    mask again: `redrawn_dropout`) and `replica_seed()` (one mask per replica). In training each
    element is kept with probability 1 - rate and scaled by 1 / (1 - rate), so the expected
    output is the input; in inference it is the identity.

    Args:
        rate: float in [0, 1). Fraction of elements zeroed in training.
        noise_shape: optional tuple; None entries take the input's size (e.g. (batch, 1, features)
            draws one mask per example and feature, shared over time steps).
        seed: optional int. Initial state of the layer's seed generator.

    Example:
    >>> dropout = Dropout(0.5, seed=0)
    >>> dropout(keras.ops.ones([2, 4]), training=True).shape
    TensorShape([2, 4])
    """

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        algorithm = random_algorithm()
        noise_shape = tf.shape(inputs)
        if self.noise_shape is not None:
            noise_shape = [noise_shape[axis] if size is None else size for axis, size in enumerate(self.noise_shape)]
        seed = replica_seed(self.seed_generator, algorithm)
        if algorithm == "threefry":
            return redrawn_dropout(inputs, self.rate, noise_shape, seed, algorithm)
        return tf.nn.experimental.stateless_dropout(
            inputs, rate=self.rate, noise_shape=noise_shape, seed=seed, rng_alg=algorithm
        )
