"""Distribution and compilation: 2 mirrored replicas train like 1 device; every step compiles with XLA."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import zoo
from trainers.config import config_from_dict
from trainers.optimization import create_optimizer
from trainers.tasks.classification import Classification
from trainers.trainer import Trainer

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))
from replica_parity import TINY, examples  # noqa: E402


@pytest.fixture(scope="module")
def loss_curves():
    result = subprocess.run(
        [sys.executable, str(HERE / "replica_parity.py")], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", list(TINY))  # Every family (the BERT sizes share bert's code).
def test_mirrored_over_two_cpus_gives_the_default_loss_curve(loss_curves, name):
    """Guards against Keras reduction bugs under MirroredStrategy (keras-team/keras#21061, #21467).

    Same initial weights, same global batches of 8 (4 per replica), dropout off: only the
    order of floating-point sums differs, so the curves agree to float32 round-off.
    """
    default, mirrored = loss_curves[name]["default"], loss_curves[name]["mirrored"]
    assert len(default) == len(mirrored) == 6
    assert all(np.isfinite(default)) and all(np.isfinite(mirrored))
    np.testing.assert_allclose(mirrored, default, rtol=1e-4, atol=1e-5)


def _trainer(name, jit_compile, model_dir, weights=None):
    config = config_from_dict({"model": {"name": name}, "train": {"learning_rate": 1e-3, "warmup_fraction": 0.0}})
    inputs, _ = examples(name)
    model = zoo.build(name, dropout=0.0, **TINY[name])
    model(tf.nest.map_structure(lambda values: values[:2], inputs))
    if weights is not None:
        model.set_weights(weights)
    optimizer = create_optimizer(config, model, total_steps=4)
    strategy = tf.distribute.get_strategy()
    return Trainer(strategy=strategy, objective=Classification(), model=model, optimizer=optimizer, model_dir=model_dir, steps_per_loop=1,
                   jit_compile=jit_compile)


def _step_losses(trainer, batch, steps=3):
    """The summed loss of each of `steps` `train_steps` steps on `batch` (with XLA where the trainer compiles)."""
    dataset = trainer.strategy.distribute_datasets_from_function(lambda _: tf.data.Dataset.from_tensors(batch).repeat())
    iterator = iter(dataset)
    return [float(trainer.train_steps(iterator, 1)["loss_sum"]) for _ in range(steps)]


@pytest.mark.parametrize("name", list(TINY))  # Every family (the BERT sizes share bert's code).
def test_every_train_step_compiles_with_xla_and_computes_the_same_loss(name, tmp_path):
    """XLA on CPU stands in for TPU compatibility: static shapes, no Python-side data dependence.

    On the default strategy the whole step (forward, backward, AdamW update) is one XLA function:
    the losses of later steps show that its updates match the uncompiled ones.
    """
    inputs, labels = examples(name)
    batch = tf.nest.map_structure(lambda values: tf.constant(values[:8]), (inputs, tf.constant(labels[:8])))
    plain = _trainer(name, jit_compile=False, model_dir=tmp_path / "plain")
    compiled = _trainer(name, jit_compile=True, model_dir=tmp_path / "compiled", weights=plain.model.get_weights())
    assert compiled.whole_step_in_xla and not plain.whole_step_in_xla
    hlo = tf.function(compiled.gradients, jit_compile=True).experimental_get_compiler_ir(*batch)(stage="hlo")
    assert "HloModule" in hlo
    np.testing.assert_allclose(_step_losses(compiled, batch), _step_losses(plain, batch), rtol=1e-4)
