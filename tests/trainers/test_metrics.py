"""Eval metrics computed from labels and probabilities match their definitions."""

import numpy as np
import pytest

from trainers.tasks.classification import classification_metrics


def test_binary_metrics_match_hand_computed_values():
    # 6 negatives (4 predicted right), 4 positives (3 predicted right).
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    positive = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9, 0.65, 0.2])
    metrics = classification_metrics(labels, np.stack([1 - positive, positive], axis=-1))
    precision = [4 / 5, 3 / 5]
    recall = [4 / 6, 3 / 4]
    f1 = [2 * p * r / (p + r) for p, r in zip(precision, recall)]
    assert metrics["accuracy"] == pytest.approx(0.7)
    assert metrics["precision"] == pytest.approx(np.mean(precision))
    assert metrics["recall"] == pytest.approx(np.mean(recall))
    assert metrics["f1"] == pytest.approx(np.mean(f1))
    label_probability = np.where(labels == 1, positive, 1 - positive)
    assert metrics["loss"] == pytest.approx(-np.log(label_probability).mean())
    # ROC-AUC = share of (positive, negative) pairs ranked the right way round; a tie counts half.
    pairs = [(p, n) for p in positive[labels == 1] for n in positive[labels == 0]]
    assert metrics["auc"] == pytest.approx(np.mean([(p > n) + 0.5 * (p == n) for p, n in pairs]), abs=2e-3)
    assert metrics["num_examples"] == 10


def test_classes_absent_from_labels_do_not_drag_the_macro_average_and_no_auc_beyond_two_classes():
    labels = np.array([0, 0, 1, 1])
    probabilities = np.array([[0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1]])
    metrics = classification_metrics(labels, probabilities)
    assert metrics["precision"] == pytest.approx(1.0)
    assert metrics["f1"] == pytest.approx(1.0)
    assert "auc" not in metrics
