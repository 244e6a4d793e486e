"""The optimizer a run gets: BERT's warmup + decay schedule, AdamW's weight-decay exemptions."""

import numpy as np
import pytest

import zoo
from trainers.config import config_from_dict
from trainers.optimization import create_optimizer


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
