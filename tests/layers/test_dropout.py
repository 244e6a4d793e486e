"""The zoo's dropout keeps Keras' statistics: rate, scale, fresh masks per step and per replica, exact resume."""

import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from zoo.layers import Dropout, TransformerEncoderBlock
from zoo.layers import dropout as dropout_module
from zoo.layers.dropout import random_algorithm

REPO = pathlib.Path(__file__).resolve().parent.parent.parent
SHAPE = [64, 64, 64]  # 262,144 elements: a keep fraction's standard deviation is below 0.001.


def _draw(layer, jit_compile):
    """A `tf.function` drawing one training-mode output of `layer` on ones [SHAPE] per call."""
    return tf.function(lambda: layer(tf.ones(SHAPE), training=True), jit_compile=jit_compile)


def test_the_generator_is_threefry_under_xla_and_philox_outside():
    algorithms = []

    def trace():
        algorithms.append(random_algorithm())
        return tf.zeros([])

    tf.function(trace, jit_compile=True)()
    tf.function(trace)()
    assert algorithms == ["threefry", "philox"]


@pytest.mark.parametrize("jit_compile", [True, False], ids=["xla", "no_xla"])
@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_keep_rate_and_expected_value(rate, jit_compile):
    outputs = _draw(Dropout(rate, seed=1), jit_compile)().numpy()
    kept = outputs != 0
    assert kept.mean() == pytest.approx(1 - rate, abs=0.005)
    np.testing.assert_allclose(outputs[kept], 1 / (1 - rate), rtol=1e-6)  # Scaled so that E[output] = input.
    assert outputs.mean() == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("noise_shape", [None, (None, 1, None)], ids=["elementwise", "shared_over_axis_1"])
def test_under_xla_the_backward_pass_redraws_the_forward_mask(noise_shape):
    """The gradient of sum(w * dropout(x)) is w * mask / (1 - rate): the backward pass, which draws
    its mask again from the seed, zeroes exactly the elements the forward pass zeroed."""
    rate, weights = 0.3, tf.random.stateless_normal(SHAPE, [1, 2])
    layer = Dropout(rate, noise_shape=noise_shape, seed=1)

    @tf.function(jit_compile=True)
    def forward_and_gradient():
        inputs = tf.ones(SHAPE)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = layer(inputs, training=True)
            loss = tf.reduce_sum(weights * outputs)
        return outputs, tape.gradient(loss, inputs)

    outputs, gradient = (tensor.numpy() for tensor in forward_and_gradient())
    if noise_shape is None:
        assert np.mean(outputs != 0) == pytest.approx(1 - rate, abs=0.005)
    else:  # One draw per (row, feature), the same at every position of axis 1.
        np.testing.assert_array_equal(outputs, np.broadcast_to(outputs[:, :1], outputs.shape))
    np.testing.assert_allclose(gradient, weights.numpy() * outputs, rtol=1e-6)  # outputs = mask / (1 - rate)


def test_under_xla_the_masks_are_tensorflows_threefry_masks():
    """Redrawing changes where the mask lives, not which it is: an element is kept when its 32-bit
    draw is at least rate * 2^32, where `stateless_dropout` compares a float made of the same
    draw's top 23 bits with the rate, so the two disagree only within 2^-23 of the threshold."""
    seed = tf.constant([3, 4], tf.int32)
    inputs = tf.ones(SHAPE)
    zoo_mask, tensorflow_mask = tf.function(
        lambda: (dropout_module.redrawn_dropout(inputs, 0.1, tf.shape(inputs), seed),
                 tf.nn.experimental.stateless_dropout(inputs, rate=0.1, seed=seed, rng_alg="threefry")),
        jit_compile=True,
    )()
    assert np.mean(zoo_mask.numpy() != tensorflow_mask.numpy()) < 1e-4


def test_identity_in_inference_and_at_rate_zero():
    inputs = tf.random.normal(SHAPE)
    np.testing.assert_array_equal(Dropout(0.5, seed=1)(inputs, training=False), inputs)
    np.testing.assert_array_equal(Dropout(0.5, seed=1)(inputs), inputs)
    np.testing.assert_array_equal(Dropout(0.0)(inputs, training=True), inputs)


def _assert_independent(first, second, rate):
    """Two masks drawn independently drop the same element with probability rate^2."""
    both_dropped = np.mean((np.asarray(first) == 0) & (np.asarray(second) == 0))
    assert both_dropped == pytest.approx(rate**2, abs=0.005)


@pytest.mark.parametrize("jit_compile", [True, False], ids=["xla", "no_xla"])
def test_every_call_of_a_compiled_step_draws_a_new_mask(jit_compile):
    draw = _draw(Dropout(0.5, seed=1), jit_compile)
    first, second, third = draw(), draw(), draw()
    _assert_independent(first, second, 0.5)
    _assert_independent(second, third, 0.5)


@pytest.mark.parametrize("jit_compile", [True, False], ids=["xla", "no_xla"])
def test_every_step_of_a_tf_range_loop_draws_a_new_mask(jit_compile):
    """The Trainer runs K steps per call in a `tf.range` loop; each step must get its own mask."""
    layer = Dropout(0.5, seed=1)

    @tf.function(jit_compile=jit_compile)
    def two_steps():
        masks = tf.TensorArray(tf.float32, size=2)
        for step in tf.range(2):
            masks = masks.write(step, layer(tf.ones(SHAPE), training=True))
        return masks.stack()

    first, second = two_steps().numpy()
    _assert_independent(first, second, 0.5)


def test_restored_seed_state_draws_the_same_masks(tmp_path):
    """What a resumed run relies on: the Trainer checkpoints the model's non-weight variables."""
    layer = Dropout(0.5, seed=1)
    draw = _draw(layer, jit_compile=True)
    draw()
    checkpoint = tf.train.Checkpoint(random_states=layer.non_trainable_variables)
    path = checkpoint.save(str(tmp_path / "ckpt"))
    uninterrupted = [draw().numpy() for _ in range(2)]

    resumed_layer = Dropout(0.5, seed=2)
    tf.train.Checkpoint(random_states=resumed_layer.non_trainable_variables).restore(path).assert_consumed()
    resumed_draw = _draw(resumed_layer, jit_compile=True)
    for expected in uninterrupted:
        np.testing.assert_array_equal(resumed_draw().numpy(), expected)


def test_every_dropout_of_the_encoder_block_is_the_zoos(monkeypatch):
    """Attention probabilities (the largest mask) and both sublayer outputs: three zoo draws per
    call, and one seed state per dropout, as many variables as with Keras' layers."""
    draws = []

    def recorded_algorithm():
        draws.append(random_algorithm())
        return draws[-1]

    monkeypatch.setattr(dropout_module, "random_algorithm", recorded_algorithm)
    block = TransformerEncoderBlock(num_heads=2, intermediate_dim=16, dropout=0.1)
    block.build((2, 5, 8))
    tf.function(lambda inputs: block(inputs, training=True), jit_compile=True)(tf.ones([2, 5, 8]))
    assert draws == ["threefry"] * 3
    assert len(block.non_trainable_variables) == 3


# Logical CPU devices must be configured before TensorFlow starts: the check runs in a subprocess.
_TWO_REPLICAS = textwrap.dedent(
    """
    import numpy as np, tensorflow as tf
    from trainers.strategy import split_cpu
    split_cpu(2)
    from zoo.layers import Dropout
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        layer = Dropout(0.5, seed=1)
    for jit_compile in (True, False):
        # Called, as in the Trainer, on each replica's own inputs, which place the call on its device.
        draw = tf.function(lambda inputs: layer(inputs, training=True), jit_compile=jit_compile)
        step = tf.function(lambda: strategy.run(lambda: draw(tf.ones([64, 64, 64]))))
        steps = [[values.numpy() == 0 for values in strategy.experimental_local_results(step())] for _ in range(2)]
        for first, second in (steps[0], steps[1], (steps[0][0], steps[1][0]), (steps[0][1], steps[1][1])):
            print(np.mean(first & second))  # Replica 0 and 1 at each step, then each replica's two steps.
    """
)


def test_the_replicas_of_a_mirrored_strategy_and_their_steps_draw_independent_masks():
    result = subprocess.run(
        [sys.executable, "-c", _TWO_REPLICAS], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    both_dropped = [float(line) for line in result.stdout.split()]
    assert len(both_dropped) == 8  # With and without XLA: two pairs of replicas, two pairs of steps.
    np.testing.assert_allclose(both_dropped, 0.25, atol=0.005)
