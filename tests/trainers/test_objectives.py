"""The objectives' losses and metrics against hand computations; filler rows count for nothing."""

import numpy as np
import pytest
import tensorflow as tf

from trainers.objectives import Classification, MaskedLMAndNextSentence


def _softmax_cross_entropy(logits, label):
    logits = np.asarray(logits, np.float64)
    return float(np.log(np.exp(logits).sum()) - logits[label])


def test_masked_lm_and_nsp_loss_and_metrics_match_a_hand_computation():
    rng = np.random.default_rng(0)
    outputs = {"mlm_logits": rng.normal(size=[3, 2, 5]).astype(np.float32),
               "nsp_logits": rng.normal(size=[3, 2]).astype(np.float32)}
    labels = {
        "mask_ids": np.array([[1, 4], [2, 0], [3, 3]], np.int32),
        "mask_weights": np.array([[1, 1], [1, 0], [1, 1]], np.float32),
        "next_sentence_label": np.array([1, 0, -1], np.int32),  # The third row is filler.
    }
    objective = MaskedLMAndNextSentence()
    loss = objective.per_example_loss(labels, outputs).numpy()
    expected = [
        np.mean([_softmax_cross_entropy(outputs["mlm_logits"][0, p], labels["mask_ids"][0, p]) for p in (0, 1)])
        + _softmax_cross_entropy(outputs["nsp_logits"][0], 1),
        _softmax_cross_entropy(outputs["mlm_logits"][1, 0], 2) + _softmax_cross_entropy(outputs["nsp_logits"][1], 0),
        0.0,
    ]
    np.testing.assert_allclose(loss, expected, rtol=1e-5, atol=1e-6)

    metrics = objective.eval_metrics({key: value.numpy() for key, value in objective.eval_values(labels, outputs).items()})
    mlm_hits = [outputs["mlm_logits"][0, 0].argmax() == 1, outputs["mlm_logits"][0, 1].argmax() == 4,
                outputs["mlm_logits"][1, 0].argmax() == 2]
    nsp_hits = [outputs["nsp_logits"][0].argmax() == 1, outputs["nsp_logits"][1].argmax() == 0]
    assert metrics["num_examples"] == 2
    assert metrics["mlm_accuracy"] == pytest.approx(np.mean(mlm_hits))
    assert metrics["nsp_accuracy"] == pytest.approx(np.mean(nsp_hits))
    assert metrics["loss"] == pytest.approx(np.sum(expected) / 2, rel=1e-5)


def test_classification_ignores_filler_rows_in_sums():
    logits = tf.constant([[2.0, 0.0], [0.0, 2.0], [5.0, 0.0]])
    labels = tf.constant([0, 0, -1])
    objective = Classification()
    loss = objective.per_example_loss(labels, logits)
    sums = {key: float(value) for key, value in objective.step_sums(labels, logits, loss).items()}
    assert sums["count"] == 2 and sums["correct"] == 1
    assert sums["loss_sum"] == pytest.approx(_softmax_cross_entropy([2, 0], 0) + _softmax_cross_entropy([0, 2], 0), rel=1e-5)
