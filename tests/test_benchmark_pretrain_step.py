"""benchmarks.pretrain_step compares equal work: its batches with 20 and 5 prediction slots hold
the same masked tokens, so the pretraining loss and gradients are the same and only the time differs.

`benchmarks` is not an installed package: the check runs in a subprocess from the repository root,
as the other benchmark tests do."""

import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent

SCRIPT = """
import keras, numpy as np, tensorflow as tf
from benchmarks.pretrain_step import make_batch
from trainers.tasks.pretraining import MaskedLMAndNextSentence
from zoo.models.bert import BertPretrainer

keras.utils.set_random_seed(0)
model = BertPretrainer(vocabulary_size=200, num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
                       max_sequence_length=32, dropout=0.0)
objective = MaskedLMAndNextSentence()
results = []
for slots in (20, 5):
    inputs, labels = make_batch(4, 32, 200, slots, masked_tokens=5)
    assert inputs["mask_positions"].shape == (4, slots)
    assert float(tf.reduce_sum(labels["mask_weights"])) == 20.0  # 5 real predictions a row either way.
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(objective.per_example_loss(labels, model(inputs, training=True)))
    gradients = tape.gradient(loss, model.trainable_variables)
    results.append((float(loss), [np.asarray(tf.convert_to_tensor(gradient)) for gradient in gradients]))
(loss_20, gradients_20), (loss_5, gradients_5) = results
assert abs(loss_20 - loss_5) < 1e-6, (loss_20, loss_5)
for gradient_20, gradient_5 in zip(gradients_20, gradients_5):
    np.testing.assert_allclose(gradient_20, gradient_5, atol=1e-6)
print("same")
"""


def test_padding_slots_change_neither_the_loss_nor_the_gradients():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("same")
