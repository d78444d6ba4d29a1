"""Summary statistics of latency samples."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class Summary:
    """Statistics of one set of per-call latencies, in milliseconds."""

    count: int
    mean_ms: float
    stdev_ms: float
    min_ms: float
    max_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float


def summarize(samples_s: Sequence[float]) -> Summary:
    """Summarize per-call latencies given in seconds.

    Percentiles interpolate linearly between the two nearest ranks (NumPy's
    default method); the standard deviation is the sample one (ddof=1) and
    is 0 for a single sample.
    """
    values = np.asarray(samples_s, dtype=np.float64) * 1000.0
    if values.size == 0:
        raise ValueError("cannot summarize an empty list of latency samples")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError("latency samples must be finite and non-negative")
    p50, p90, p99 = np.percentile(values, PERCENTILES)
    return Summary(
        count=int(values.size),
        mean_ms=float(values.mean()),
        stdev_ms=float(values.std(ddof=1)) if values.size > 1 else 0.0,
        min_ms=float(values.min()),
        max_ms=float(values.max()),
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
    )


def throughput_per_s(batch_size: int, mean_ms: float) -> float:
    """Samples per second when calls of ``batch_size`` take ``mean_ms`` each."""
    return batch_size / (mean_ms / 1000.0) if mean_ms > 0 else float("inf")


def relative_spread(summary: Summary) -> float:
    """Coefficient of variation (stdev / mean), a noise indicator."""
    return summary.stdev_ms / summary.mean_ms if summary.mean_ms > 0 else 0.0


def robust_spread(samples_s: Sequence[float]) -> float:
    """Interquartile range over median: a noise indicator that rare outliers do not dominate."""
    values = np.asarray(samples_s, dtype=np.float64)
    if values.size == 0:
        raise ValueError("cannot measure the spread of an empty list of latency samples")
    low, median, high = np.percentile(values, (25, 50, 75))
    return float((high - low) / median) if median > 0 else 0.0
