"""Eval metrics computed from a confusion matrix match their definitions."""

import numpy as np
import pytest

from trainers.trainer import classification_metrics


def test_binary_metrics_from_confusion_matrix():
    # rows: true label, columns: prediction. 6 negatives (4 right), 4 positives (3 right).
    confusion = np.array([[4, 2], [1, 3]])
    metrics = classification_metrics(loss_sum=5.0, confusion=confusion)
    precision = [4 / 5, 3 / 5]
    recall = [4 / 6, 3 / 4]
    f1 = [2 * p * r / (p + r) for p, r in zip(precision, recall)]
    assert metrics["accuracy"] == pytest.approx(0.7)
    assert metrics["loss"] == pytest.approx(0.5)
    assert metrics["precision"] == pytest.approx(np.mean(precision))
    assert metrics["recall"] == pytest.approx(np.mean(recall))
    assert metrics["f1"] == pytest.approx(np.mean(f1))
    assert metrics["num_examples"] == 10


def test_classes_absent_from_labels_do_not_drag_the_macro_average():
    confusion = np.array([[5, 0, 0], [0, 5, 0], [0, 0, 0]])
    metrics = classification_metrics(loss_sum=0.0, confusion=confusion)
    assert metrics["precision"] == pytest.approx(1.0)
    assert metrics["f1"] == pytest.approx(1.0)
