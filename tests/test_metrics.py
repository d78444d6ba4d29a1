"""Binary classification metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from textcls.metrics import classification_metrics

# Predictions at threshold 0.5: [1, 0, 1, 0, 1], so TP 2, FN 1, FP 1, TN 1.
LABELS = np.array([1, 1, 1, 0, 0])
PROBABILITIES = np.array([0.9, 0.4, 0.6, 0.2, 0.7])


def test_metrics_accuracy():
    assert classification_metrics(LABELS, PROBABILITIES)["accuracy"] == pytest.approx(3 / 5)


def test_metrics_f1():
    # Precision 2/3 and recall 2/3.
    assert classification_metrics(LABELS, PROBABILITIES)["f1"] == pytest.approx(2 / 3)


def test_metrics_balanced_accuracy():
    # Recall 2/3 and specificity 1/2.
    assert classification_metrics(LABELS, PROBABILITIES)["balanced_accuracy"] == pytest.approx(7 / 12)


def test_metrics_examples():
    assert classification_metrics(LABELS, PROBABILITIES)["examples"] == 5


def test_metrics_threshold_inclusive():
    assert classification_metrics(np.array([1]), np.array([0.5]))["accuracy"] == 1.0


def test_metrics_custom_threshold():
    # At 0.8 only 0.9 counts as positive: TP 1, FN 2, TN 2.
    assert classification_metrics(LABELS, PROBABILITIES, threshold=0.8)["accuracy"] == pytest.approx(3 / 5)


def test_metrics_majority_class_balanced_half():
    metrics = classification_metrics(np.array([1, 1, 1, 0]), np.full(4, 0.9))

    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["balanced_accuracy"] == pytest.approx(0.5)


def test_metrics_no_positive_predictions():
    metrics = classification_metrics(np.array([1, 0]), np.array([0.1, 0.1]))

    assert metrics["f1"] == 0.0
    assert metrics["balanced_accuracy"] == pytest.approx(0.5)


def test_metrics_column_of_probabilities():
    # Keras models return shape [n, 1].
    metrics = classification_metrics(LABELS, PROBABILITIES.reshape(-1, 1))

    assert metrics["accuracy"] == pytest.approx(3 / 5)


def test_metrics_length_mismatch_raises():
    with pytest.raises(ValueError, match="5 labels but 4 predictions"):
        classification_metrics(LABELS, PROBABILITIES[:4])


def test_metrics_no_examples_raises():
    with pytest.raises(ValueError, match="no examples"):
        classification_metrics(np.array([]), np.array([]))
