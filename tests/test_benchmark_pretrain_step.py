"""benchmarks.pretrain_step compares equal work: its batches with 20 and 10 prediction slots hold
the same masked tokens, so the pretraining loss and gradients are the same and only the time differs."""

import keras
import numpy as np
import tensorflow as tf

from benchmarks.pretrain_step import make_batch
from trainers.tasks.pretraining import MaskedLMAndNextSentence
from zoo.models.bert import BertPretrainer

SIZES = dict(vocabulary_size=200, num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
             max_sequence_length=32, dropout=0.0)


def test_padding_slots_change_neither_the_loss_nor_the_gradients():
    keras.utils.set_random_seed(0)
    model = BertPretrainer(**SIZES)
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
    assert abs(loss_20 - loss_5) < 1e-6
    for gradient_20, gradient_5 in zip(gradients_20, gradients_5):
        np.testing.assert_allclose(gradient_20, gradient_5, atol=1e-6)
