"""Adversarial training on the token embeddings (Miyato et al. 2017, "Adversarial Training Methods
for Semi-Supervised Text Classification"; the fast gradient method of Goodfellow et al. 2015).

A train step with `train.adversarial_epsilon` > 0 makes a second forward and backward pass with
the token-embedding table moved by

    r = epsilon * g / ||g||_2,    g = d(loss) / d(table)  [vocabulary, dim], from the clean pass,

the move of the batch's word vectors, of length epsilon, that raises the loss most to first
order; the step then descends on the clean and the perturbed losses' gradients summed. The model
learns to classify a sentence alike when its words' vectors shift a little, a regularizer suited to
SST-2's 67k short phrases, which the recurrent models otherwise fit within an epoch.

Two departures from the paper, both for a trainer that works with any of the zoo's text models:
the table is perturbed (only the rows of the batch's tokens have a gradient) rather than each
example's embedded sequence, so no model needs a hook; and g is normalised over the whole batch
rather than per example. The perturbed pass swaps the table's value in a `keras.StatelessScope`,
so no variable is written (replicas of a MirroredStrategy each perturb their own copy).
"""

import contextlib

import keras
import tensorflow as tf

from zoo.errors import ConfigError


def token_embedding_table(model):
    """The variable [vocabulary, dim] that maps `model`'s token ids to vectors.

    The zoo's recurrent and Transformer classifiers hold it as `token_embedding`, BERT's tasks in
    their encoder (`encoder.token_embedding`).

    Raises:
        ConfigError: the model has no token embedding (the CNN, the bag of n-grams).
    """
    owner = getattr(model, "encoder", model)
    layer = getattr(owner, "token_embedding", None)
    if layer is None:
        raise ConfigError(
            f"train.adversarial_epsilon needs a model with a token embedding (gru, lstm, transformer, bert); "
            f"{type(model).__name__} has none: set train.adversarial_epsilon=0"
        )
    return layer.embeddings


def perturbation(gradient, epsilon):
    """`epsilon * gradient / ||gradient||_2`, a constant (no gradient flows through it).

    Args:
        gradient: the table's gradient, dense [vocabulary, dim] or `tf.IndexedSlices`; a loss
            scale (mixed_float16) multiplies it and cancels in the ratio.
        epsilon: float, the perturbation's L2 norm over the whole table.
    """
    gradient = tf.stop_gradient(tf.convert_to_tensor(gradient))
    # A zero gradient (every token's loss already flat) gives a zero move, not a division by zero.
    return epsilon * tf.math.divide_no_nan(gradient, tf.norm(gradient))


@contextlib.contextmanager
def perturbed(model, table, delta):
    """Calls of `model` inside read `table + delta` in place of `table`; nothing is written to it.

    Call inside the `tf.GradientTape` of the perturbed pass: the gradient with respect to `table`
    flows through the sum. Dropout's seed states that the pass advances are written back on exit,
    so the next pass draws new masks.
    """
    with keras.StatelessScope(state_mapping=[(table, table.value + delta)]) as scope:
        yield
    for variable in model.non_trainable_variables:
        value = scope.get_current_value(variable)
        if value is not None:
            variable.assign(value)
