"""Time a serving call: first call, warm-up and calibrated steady-state calls."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class TimingPlan:
    """How many calls to time.

    Steady-state timing stops once both ``min_calls`` calls were made and
    ``min_duration_s`` seconds passed, or at ``max_calls`` calls.
    """

    warmup_calls: int = 10
    min_calls: int = 50
    min_duration_s: float = 1.0
    max_calls: int = 100_000

    def __post_init__(self) -> None:
        if self.warmup_calls < 0:
            raise ValueError(f"warmup_calls must be 0 or more, got {self.warmup_calls}")
        if self.min_calls < 1:
            raise ValueError(f"min_calls must be at least 1, got {self.min_calls}")
        if self.min_duration_s < 0:
            raise ValueError(f"min_duration_s must be 0 or more, got {self.min_duration_s}")
        if self.max_calls < self.min_calls:
            raise ValueError(
                f"max_calls ({self.max_calls}) must be at least min_calls ({self.min_calls})"
            )


@dataclass(frozen=True)
class TimedCalls:
    first_call_s: float  # includes tracing or XLA compilation, if any
    warmup_s: list[float]  # kept apart: never part of the statistics
    samples_s: list[float]  # steady-state calls, one duration per call


def time_calls(call: Callable[[np.ndarray], object], inputs: list[np.ndarray], plan: TimingPlan) -> TimedCalls:
    """Time ``call`` on ``inputs``, cycling through them.

    Cycling through several real batches keeps caches from seeing one input
    only. Each duration is one call measured with ``time.perf_counter``.
    """
    if not inputs:
        raise ValueError("time_calls needs at least one input batch")
    clock = time.perf_counter

    started = clock()
    call(inputs[0])
    first_call_s = clock() - started

    warmup_s = []
    for index in range(plan.warmup_calls):
        started = clock()
        call(inputs[index % len(inputs)])
        warmup_s.append(clock() - started)

    samples_s: list[float] = []
    timing_started = clock()
    while len(samples_s) < plan.max_calls:
        batch = inputs[len(samples_s) % len(inputs)]
        started = clock()
        call(batch)
        samples_s.append(clock() - started)
        if len(samples_s) >= plan.min_calls and clock() - timing_started >= plan.min_duration_s:
            break
    return TimedCalls(first_call_s=first_call_s, warmup_s=warmup_s, samples_s=samples_s)
