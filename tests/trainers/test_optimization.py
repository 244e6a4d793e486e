"""The optimizer a run gets: BERT's warmup + decay schedule, AdamW's weight-decay exemptions."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from trainers.config import config_from_dict
from trainers.optimization import NO_WEIGHT_DECAY, FusedAdamW, LinearWarmup, create_optimizer


def _optimizer(decay, total_steps=100, warmup_fraction=0.1, mixed_precision="float32"):
    config = config_from_dict({
        "model": {"name": "cnn"},
        "train": {"learning_rate": 0.01, "warmup_fraction": warmup_fraction, "decay": decay},
        "runtime": {"mixed_precision": mixed_precision},
    })
    model = zoo.build("cnn", filters=(4,))
    model(np.zeros([1, 8, 8, 1], np.float32))
    return create_optimizer(config, model, total_steps=total_steps)


def _rates(optimizer, steps):
    rates = []
    for step in steps:
        optimizer.iterations.assign(step)
        rates.append(float(optimizer.learning_rate))
    return rates


@pytest.mark.parametrize("decay", ["cosine", "linear"])
def test_schedule_warms_up_linearly_then_decays_to_zero(decay):
    rates = _rates(_optimizer(decay), (0, 5, 10, 55, 100))
    assert rates[0] == 0.0
    assert rates[1] == pytest.approx(0.005)  # Half way through the 10 warmup steps.
    assert rates[2] == pytest.approx(0.01)  # The peak.
    assert rates[3] == pytest.approx(0.005, abs=1e-6)  # Half way through the decay, for both shapes.
    assert rates[4] == pytest.approx(0.0, abs=1e-9)


def test_linear_and_cosine_differ_between_the_ends():
    linear, cosine = (_rates(_optimizer(decay, total_steps=90, warmup_fraction=0.0), [30])[0] for decay in ("linear", "cosine"))
    assert linear == pytest.approx(0.01 * 2 / 3)
    assert cosine == pytest.approx(0.01 * 0.5 * (1 + np.cos(np.pi / 3)))


def test_biases_and_normalization_are_exempt_from_weight_decay():
    optimizer = _optimizer("cosine")
    model_variables = optimizer._trainable_variables
    exempt = {variable.name for variable in model_variables if optimizer._use_weight_decay(variable) is False}
    assert {"bias", "gamma", "beta"} <= exempt
    assert "kernel" not in exempt


def test_mixed_float16_gets_loss_scaling():
    assert type(_optimizer("cosine", mixed_precision="mixed_float16")).__name__ == "LossScaleOptimizer"


def _bert_step(layer_decay):
    """One AdamW step of BERT-Tiny (2 blocks) with gradients of ones: how far each variable moved."""
    config = config_from_dict({
        "model": {"name": "bert"},
        "train": {"learning_rate": 0.01, "warmup_fraction": 0.0, "weight_decay": 0.0, "layer_decay": layer_decay},
    })
    model = zoo.build("bert", vocabulary_size=50, max_sequence_length=8)
    ones = np.ones([1, 8], np.int32)
    model({"token_ids": ones, "segment_ids": 0 * ones, "padding_mask": ones})
    optimizer = create_optimizer(config, model, total_steps=10)
    variables = model.trainable_variables
    before = [keras.ops.convert_to_numpy(variable) for variable in variables]
    optimizer.apply([np.ones(variable.shape, np.float32) for variable in variables], variables)
    return {variable.path: float(np.max(np.abs(keras.ops.convert_to_numpy(variable) - old)))
            for variable, old in zip(variables, before)}, model


def test_layer_decay_scales_each_groups_first_step_by_its_depth():
    moved, model = _bert_step(layer_decay=0.5)
    groups = model.layers_by_depth()  # Embeddings, block 1, block 2: rates 1/8, 1/4, 1/2 of the head's.
    assert len(groups) == 3
    for depth, layers in enumerate(groups):
        for variable in (variable for layer in layers for variable in layer.trainable_variables):
            # Adam's first step moves every weight by the rate (gradient / sqrt(gradient^2) = 1).
            assert moved[variable.path] == pytest.approx(0.01 * 0.5 ** (3 - depth), rel=1e-3), variable.path
    head_kernel = next(path for path in moved if "head" in path and path.endswith("kernel"))
    assert moved[head_kernel] == pytest.approx(0.01, rel=1e-3)


def test_without_layer_decay_every_variable_moves_by_the_full_rate():
    moved, _ = _bert_step(layer_decay=None)
    assert min(moved.values()) == pytest.approx(0.01, rel=1e-3)
    assert max(moved.values()) == pytest.approx(0.01, rel=1e-3)


@pytest.mark.parametrize("values, message", [
    ({"model": {"name": "bert"}, "train": {"layer_decay": 1.5}}, "train.layer_decay must be in (0, 1], got 1.5"),
    ({"model": {"name": "gru"}, "train": {"layer_decay": 0.8}}, "train.layer_decay needs a model whose layers"),
])
def test_layer_decay_rejects_values_and_models_it_cannot_serve(values, message):
    from trainers.config import ConfigError
    with pytest.raises(ConfigError, match=re.escape(message)):
        config_from_dict(values)


def _train_small_model(optimizer_class, jit_compile, steps=10):
    """`steps` AdamW steps of a small model with the zoo's schedule, weight decay and exemptions,
    and global-norm clipping: the weights after them."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Dense(8), keras.layers.LayerNormalization(), keras.layers.Dense(2)])
    model.build((None, 4))
    schedule = LinearWarmup(keras.optimizers.schedules.CosineDecay(0.01, 100), warmup_steps=3)
    optimizer = optimizer_class(learning_rate=schedule, weight_decay=0.1, global_clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_names=NO_WEIGHT_DECAY)
    optimizer.build(model.trainable_variables)
    features = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    labels = np.array([0, 1] * 8)

    @tf.function(jit_compile=jit_compile)
    def step():
        with tf.GradientTape() as tape:
            loss = keras.losses.sparse_categorical_crossentropy(labels, model(features), from_logits=True)
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)

    for _ in range(steps):
        step()
    return [keras.ops.convert_to_numpy(variable) for variable in model.trainable_variables]


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fused_adamw_updates_as_keras_adamw(jit_compile):
    reference = _train_small_model(keras.optimizers.AdamW, jit_compile=False)
    fused = _train_small_model(FusedAdamW, jit_compile=jit_compile)
    for expected, got in zip(reference, fused):
        np.testing.assert_allclose(got, expected, atol=2e-6)
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(reference, _train_small_model(keras.optimizers.AdamW, False, steps=9))) > 1e-3


def test_fused_adamw_is_fewer_ops_than_keras_adamw():
    """What it is for: a graph with fewer ops to launch (each a few microseconds on a CPU)."""
    def update_ops(optimizer_class):
        model = keras.Sequential([keras.layers.Dense(8), keras.layers.LayerNormalization(), keras.layers.Dense(2)])
        model.build((None, 4))
        optimizer = optimizer_class(learning_rate=LinearWarmup(keras.optimizers.schedules.CosineDecay(0.01, 100), 3))
        optimizer.build(model.trainable_variables)
        gradients = [tf.ones_like(variable) for variable in model.trainable_variables]
        apply = tf.function(lambda: optimizer.apply(gradients, model.trainable_variables))
        return len(apply.get_concrete_function().graph.get_operations())
    assert update_ops(FusedAdamW) < 0.6 * update_ops(keras.optimizers.AdamW)
