"""The objectives' losses and metrics against hand computations; filler rows count for nothing."""

import numpy as np
import pytest
import tensorflow as tf

from trainers.tasks.classification import Classification
from trainers.tasks.distillation import Distillation
from trainers.tasks.pretraining import MaskedLMAndNextSentence, ReplacedTokenDetection


def _softmax_cross_entropy(logits, label):
    logits = np.asarray(logits, np.float64)
    return float(np.log(np.exp(logits).sum()) - logits[label])


def test_masked_lm_and_nsp_loss_and_metrics_match_a_hand_computation():
    rng = np.random.default_rng(0)
    outputs = {"mlm_logits": rng.normal(size=[3, 2, 5]).astype(np.float32),
               "nsp_logits": rng.normal(size=[3, 2]).astype(np.float32)}
    labels = {
        "mask_ids": np.array([[1, 4], [2, 0], [-1, -1]], np.int32),
        "mask_weights": np.array([[1, 1], [1, 0], [-1, -1]], np.float32),
        "next_sentence_label": np.array([1, 0, -1], np.int32),  # The third row is filler: every label -1.
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

    # Without next sentence prediction (RoBERTa): the masked LM's loss alone, no NSP label or metric.
    masked_lm = MaskedLMAndNextSentence(next_sentence_prediction=False)
    mlm_labels = {key: value for key, value in labels.items() if key != "next_sentence_label"}
    mlm_loss = masked_lm.per_example_loss(mlm_labels, outputs).numpy()
    np.testing.assert_allclose(mlm_loss, [
        np.mean([_softmax_cross_entropy(outputs["mlm_logits"][0, p], labels["mask_ids"][0, p]) for p in (0, 1)]),
        _softmax_cross_entropy(outputs["mlm_logits"][1, 0], 2), 0.0], rtol=1e-5, atol=1e-6)
    sums = masked_lm.step_sums(mlm_labels, outputs, masked_lm.per_example_loss(mlm_labels, outputs))
    assert set(sums) == set(masked_lm.SUMS) and not any("nsp" in name for name in [*sums, *masked_lm.RATIOS])
    mlm_metrics = masked_lm.eval_metrics({key: value.numpy() for key, value in masked_lm.eval_values(mlm_labels, outputs).items()})
    assert set(mlm_metrics) == {"loss", "mlm_loss", "mlm_accuracy", "num_examples"}
    assert (mlm_metrics["mlm_accuracy"], mlm_metrics["num_examples"]) == (metrics["mlm_accuracy"], 2)


def test_classification_ignores_filler_rows_in_sums():
    logits = tf.constant([[2.0, 0.0], [0.0, 2.0], [5.0, 0.0]])
    labels = tf.constant([0, 0, -1])
    objective = Classification()
    loss = objective.per_example_loss(labels, logits)
    sums = {key: float(value) for key, value in objective.step_sums(labels, logits, loss).items()}
    assert sums["count"] == 2 and sums["correct"] == 1
    assert sums["loss_sum"] == pytest.approx(_softmax_cross_entropy([2, 0], 0) + _softmax_cross_entropy([0, 2], 0), rel=1e-5)


def test_label_smoothing_trains_against_the_label_mixed_with_the_uniform_distribution():
    """Szegedy et al.'s target (1 - e) * one-hot + e / classes: the loss is its cross-entropy with the
    softmax, smallest where the predicted probability of the label is 1 - e + e / classes, not 1."""
    logits = tf.constant([[2.0, 0.0, -1.0], [0.5, 0.0, 3.0], [5.0, 0.0, 0.0]])
    labels = tf.constant([0, 1, -1])
    smoothing = 0.3
    loss = Classification(label_smoothing=smoothing).per_example_loss(labels, logits).numpy()
    targets = np.eye(3)[[0, 1]] * (1 - smoothing) + smoothing / 3
    expected = [-np.sum(targets[row] * _log_softmax(logits.numpy()[row])) for row in range(2)]
    np.testing.assert_allclose(loss, [*expected, 0.0], rtol=1e-5)

    best = np.log((1 - smoothing + smoothing / 3) / (smoothing / 3))  # The logit gap of the smoothed target.
    gaps = tf.constant([[gap, 0.0, 0.0] for gap in (best - 1, best, best + 1)])
    losses = Classification(label_smoothing=smoothing).per_example_loss(tf.constant([0, 0, 0]), gaps).numpy()
    assert losses[1] < losses[0] and losses[1] < losses[2]


def _log_softmax(logits):
    logits = np.asarray(logits, np.float64)
    return logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))


def test_distillation_loss_is_hintons_soft_plus_hard_term():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=[4, 3]).astype(np.float32)
    teacher = np.exp(_log_softmax(rng.normal(size=[4, 3]))).astype(np.float32)
    teacher[0] = [1.0, 0.0, 0.0]  # A saturated teacher: log(0) must not give NaN.
    labels = {"label": np.array([2, 0, 1, -1], np.int32), "teacher_probabilities": teacher}
    teacher[3] = -1.0  # A filler row: every label leaf is PADDING_LABEL.
    temperature, alpha = 3.0, 0.7
    loss = Distillation(temperature, alpha).per_example_loss(labels, logits).numpy()

    expected = []
    for row in range(3):
        teacher_t = np.exp(_log_softmax(np.log(np.maximum(teacher[row], 1e-12)) / temperature))
        kl = np.sum(teacher_t * (np.log(np.maximum(teacher_t, 1e-300)) - _log_softmax(logits[row] / temperature)))
        expected.append(alpha * temperature**2 * kl + (1 - alpha) * _softmax_cross_entropy(logits[row], labels["label"][row]))
    np.testing.assert_allclose(loss, [*expected, 0.0], rtol=1e-5, atol=1e-6)


def test_distillation_with_alpha_zero_is_classification_and_a_perfect_mimic_has_no_soft_loss():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=[5, 2]).astype(np.float32)
    labels = {"label": np.array([0, 1, 1, 0, 1], np.int32),
              "teacher_probabilities": np.exp(_log_softmax(logits)).astype(np.float32)}
    hard = Classification().per_example_loss(labels["label"], logits).numpy()
    np.testing.assert_allclose(Distillation(2.0, 0.0).per_example_loss(labels, logits).numpy(), hard, rtol=1e-6)
    # The student's logits ARE the teacher's: KL is zero at any temperature.
    np.testing.assert_allclose(Distillation(4.0, 1.0).per_example_loss(labels, logits).numpy(), 0.0, atol=1e-5)


def test_distillation_reports_agreement_with_the_teacher_on_real_rows_only():
    logits = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0]], np.float32)
    labels = {"label": np.array([0, 0, 1, -1], np.int32),
              "teacher_probabilities": np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [-1.0, -1.0]], np.float32)}
    objective = Distillation(2.0, 0.5)
    sums = objective.step_sums(labels, logits, objective.per_example_loss(labels, logits))
    assert float(sums["agreed"]) == 2.0 and float(sums["count"]) == 3.0  # Rows 0 and 1 agree; row 3 is filler.
    metrics = objective.eval_metrics({key: np.asarray(value) for key, value in objective.eval_values(labels, logits).items()})
    assert metrics["teacher_agreement"] == pytest.approx(2 / 3)
    assert metrics["accuracy"] == pytest.approx(1 / 3) and metrics["num_examples"] == 3


def _sigmoid_cross_entropy(logit, label):
    return float(np.log1p(np.exp(-logit)) + (1 - label) * logit)


def test_electra_loss_is_the_generators_masked_lm_plus_50_times_the_mean_token_detection_loss():
    rng = np.random.default_rng(1)
    outputs = {"mlm_logits": rng.normal(size=[2, 1, 5]).astype(np.float32),
               "replaced_logits": rng.normal(size=[2, 3]).astype(np.float32),
               "replaced": np.array([[0, 1, 0], [1, 0, 0]], np.float32)}
    labels = {"mask_ids": np.array([[3], [-1]], np.int32), "mask_weights": np.array([[1], [-1]], np.float32),
              "padding_mask": np.array([[1, 1, 0], [1, 1, 1]], np.int32)}  # Row 1 is filler (mask_ids -1).
    objective = ReplacedTokenDetection()
    loss = objective.per_example_loss(labels, outputs).numpy()
    detection = np.mean([_sigmoid_cross_entropy(outputs["replaced_logits"][0, t], outputs["replaced"][0, t]) for t in (0, 1)])
    expected = _softmax_cross_entropy(outputs["mlm_logits"][0, 0], 3) + 50 * detection
    np.testing.assert_allclose(loss, [expected, 0.0], rtol=1e-5, atol=1e-6)
    metrics = objective.eval_metrics({key: value.numpy() for key, value in objective.eval_values(labels, outputs).items()})
    hits = [(outputs["replaced_logits"][0, t] > 0) == (outputs["replaced"][0, t] > 0.5) for t in (0, 1)]
    assert metrics["rtd_accuracy"] == pytest.approx(np.mean(hits))
    assert metrics["rtd_loss"] == pytest.approx(detection, rel=1e-5)
    assert metrics["num_examples"] == 1 and "nsp_accuracy" not in metrics
    assert objective.best_metric == "rtd_accuracy"
