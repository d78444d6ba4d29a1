"""Binary classification metrics in NumPy, usable without TensorFlow."""

from __future__ import annotations

import numpy as np


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> dict:
    """Return accuracy, F1 of the positive class and balanced accuracy.

    Balanced accuracy is the mean of the recall of each class, so it is 0.5
    for a model that always predicts the majority class.
    """
    labels = np.asarray(labels).astype(bool).reshape(-1)
    predicted = np.asarray(probabilities).reshape(-1) >= threshold
    if labels.shape != predicted.shape:
        raise ValueError(f"{labels.shape[0]} labels but {predicted.shape[0]} predictions")
    if labels.size == 0:
        raise ValueError("no examples to evaluate")

    true_pos = int(np.sum(predicted & labels))
    true_neg = int(np.sum(~predicted & ~labels))
    false_pos = int(np.sum(predicted & ~labels))
    false_neg = int(np.sum(~predicted & labels))

    precision = true_pos / (true_pos + false_pos) if true_pos + false_pos else 0.0
    recall = true_pos / (true_pos + false_neg) if true_pos + false_neg else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    specificity = true_neg / (true_neg + false_pos) if true_neg + false_pos else 0.0
    return {
        "accuracy": (true_pos + true_neg) / labels.size,
        "f1": f1,
        "balanced_accuracy": (recall + specificity) / 2,
        "examples": int(labels.size),
    }
