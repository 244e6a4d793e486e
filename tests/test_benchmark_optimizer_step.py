"""benchmarks.optimizer_step's peer is Keras' own AdamW update: while `keras_adamw` is active, the
zoo's optimizer traces Keras' ops (many more per variable) and still computes the same update.

`benchmarks` is not an installed package: the check runs in a subprocess from the repository root,
as the other benchmark tests do."""

import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent

SCRIPT = """
import keras, numpy as np, tensorflow as tf
from benchmarks.optimizer_step import keras_adamw, update_ops
from trainers.optimization import FusedAdamW

def trained(tracing):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Dense(8), keras.layers.LayerNormalization(), keras.layers.Dense(2)])
    model.build((None, 4))
    optimizer = FusedAdamW(learning_rate=0.01, weight_decay=0.1)
    optimizer.build(model.trainable_variables)
    gradients = [tf.ones_like(variable) for variable in model.trainable_variables]
    with tracing():
        ops = update_ops(optimizer, model.trainable_variables)
        apply = tf.function(lambda: optimizer.apply(gradients, model.trainable_variables))
        for _ in range(3):
            apply()
    return ops, [np.asarray(variable) for variable in model.trainable_variables]

import contextlib
fused_ops, fused = trained(contextlib.nullcontext)
keras_ops, reference = trained(keras_adamw)
assert keras_ops > 1.5 * fused_ops, (keras_ops, fused_ops)
for a, b in zip(fused, reference):
    np.testing.assert_allclose(a, b, atol=1e-6)
print("keras", keras_ops, "fused", fused_ops)
"""


def test_the_peer_traces_keras_adamw_and_updates_alike():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1].startswith("keras")
