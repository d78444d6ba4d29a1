"""Latency statistics against hand-computed values, and the timing loop with a fake clock."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from bench import timing
from bench.stats import Summary, relative_spread, robust_spread, summarize, throughput_per_s
from bench.timing import TimingPlan, time_calls

# --- summarize -----------------------------------------------------------------


def test_summarize_four_samples():
    summary = summarize([0.001, 0.002, 0.003, 0.004])

    assert summary.count == 4
    assert summary.mean_ms == pytest.approx(2.5)
    assert summary.min_ms == pytest.approx(1.0)
    assert summary.max_ms == pytest.approx(4.0)
    # Linear interpolation between ranks: position q * (n - 1) = 1.5, 2.7, 2.97.
    assert summary.p50_ms == pytest.approx(2.5)
    assert summary.p90_ms == pytest.approx(3.7)
    assert summary.p99_ms == pytest.approx(3.97)
    # Sample standard deviation: squared deviations sum to 5, over n - 1 = 3.
    assert summary.stdev_ms == pytest.approx(math.sqrt(5 / 3))


def test_summarize_ignores_sample_order():
    assert summarize([0.004, 0.001, 0.003, 0.002]) == summarize([0.001, 0.002, 0.003, 0.004])


def test_summarize_single_sample():
    summary = summarize([0.0025])

    assert summary.count == 1
    assert summary.stdev_ms == 0.0
    assert summary.p50_ms == pytest.approx(2.5)
    assert summary.p99_ms == pytest.approx(2.5)
    assert summary.min_ms == summary.max_ms


def test_summarize_accepts_numpy_array():
    assert summarize(np.array([0.001, 0.003])).mean_ms == pytest.approx(2.0)


def test_summarize_zero_duration_allowed():
    assert summarize([0.0, 0.0]).mean_ms == 0.0


def test_summarize_returns_plain_floats():
    summary = summarize([0.001, 0.002])

    assert type(summary.mean_ms) is float
    assert type(summary.count) is int


@pytest.mark.parametrize(
    "samples",
    [
        pytest.param([], id="empty"),
        pytest.param([0.001, -0.001], id="negative"),
        pytest.param([0.001, float("nan")], id="nan"),
        pytest.param([0.001, float("inf")], id="infinite"),
    ],
)
def test_summarize_invalid_samples_raise(samples):
    with pytest.raises(ValueError):
        summarize(samples)


def test_summarize_empty_message():
    with pytest.raises(ValueError, match="empty"):
        summarize([])


# --- throughput and spread -------------------------------------------------------


def test_throughput_batch_one():
    assert throughput_per_s(1, 2.0) == pytest.approx(500.0)


def test_throughput_batch_32():
    assert throughput_per_s(32, 4.0) == pytest.approx(8000.0)


def test_throughput_zero_latency_infinite():
    assert throughput_per_s(8, 0.0) == float("inf")


def test_relative_spread_stdev_over_mean():
    summary = summarize([0.001, 0.002, 0.003, 0.004])

    assert relative_spread(summary) == pytest.approx(math.sqrt(5 / 3) / 2.5)


def test_relative_spread_zero_mean():
    summary = Summary(count=2, mean_ms=0.0, stdev_ms=0.0, min_ms=0.0, max_ms=0.0, p50_ms=0.0, p90_ms=0.0, p99_ms=0.0)

    assert relative_spread(summary) == 0.0


# --- time_calls --------------------------------------------------------------------


class FakeClock:
    """A clock that only moves when the fake model is called."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeModel:
    """Records each input and advances the clock by ``duration_s`` per call.

    The first call takes ``first_call_s``, as tracing would.
    """

    def __init__(self, clock: FakeClock, duration_s: float = 0.25, first_call_s: float = 2.0) -> None:
        self.clock = clock
        self.duration_s = duration_s
        self.first_call_s = first_call_s
        self.inputs: list[int] = []

    def __call__(self, batch: np.ndarray) -> None:
        self.clock.now += self.first_call_s if not self.inputs else self.duration_s
        self.inputs.append(int(batch[0]))


@pytest.fixture
def fake_model(monkeypatch) -> FakeModel:
    clock = FakeClock()
    monkeypatch.setattr(timing, "time", SimpleNamespace(perf_counter=clock))
    return FakeModel(clock)


def batches(count: int) -> list[np.ndarray]:
    """Input batches whose first element is their index."""
    return [np.array([index]) for index in range(count)]


def test_time_calls_first_call_separate(fake_model):
    timed = time_calls(fake_model, batches(3), TimingPlan(warmup_calls=2, min_calls=4, min_duration_s=0.0))

    assert timed.first_call_s == pytest.approx(2.0)
    assert 2.0 not in timed.warmup_s
    assert 2.0 not in timed.samples_s


def test_time_calls_warmup_count(fake_model):
    timed = time_calls(fake_model, batches(3), TimingPlan(warmup_calls=5, min_calls=4, min_duration_s=0.0))

    assert len(timed.warmup_s) == 5
    assert timed.warmup_s == pytest.approx([0.25] * 5)


def test_time_calls_zero_warmup(fake_model):
    timed = time_calls(fake_model, batches(3), TimingPlan(warmup_calls=0, min_calls=4, min_duration_s=0.0))

    assert timed.warmup_s == []


def test_time_calls_total_call_count(fake_model):
    time_calls(fake_model, batches(3), TimingPlan(warmup_calls=5, min_calls=4, min_duration_s=0.0))

    assert len(fake_model.inputs) == 1 + 5 + 4


def test_time_calls_min_calls_without_duration(fake_model):
    timed = time_calls(fake_model, batches(3), TimingPlan(warmup_calls=0, min_calls=7, min_duration_s=0.0))

    assert len(timed.samples_s) == 7


def test_time_calls_min_calls_beyond_duration(fake_model):
    # Eight calls of 0.25 s pass the 1 s minimum after four, but min_calls wins.
    timed = time_calls(fake_model, batches(3), TimingPlan(warmup_calls=0, min_calls=8, min_duration_s=1.0))

    assert len(timed.samples_s) == 8


def test_time_calls_min_duration_extends(fake_model):
    # At 0.25 s per call, two calls satisfy min_calls and eight reach 2 s.
    timed = time_calls(fake_model, batches(3), TimingPlan(warmup_calls=0, min_calls=2, min_duration_s=2.0))

    assert len(timed.samples_s) == 8
    assert timed.samples_s == pytest.approx([0.25] * 8)


def test_time_calls_max_calls_cap(fake_model):
    timed = time_calls(
        fake_model, batches(3), TimingPlan(warmup_calls=0, min_calls=3, min_duration_s=3600.0, max_calls=6)
    )

    assert len(timed.samples_s) == 6


def test_time_calls_cycles_inputs(fake_model):
    time_calls(fake_model, batches(3), TimingPlan(warmup_calls=4, min_calls=5, min_duration_s=0.0))

    first, warmup, steady = fake_model.inputs[0], fake_model.inputs[1:5], fake_model.inputs[5:]
    assert first == 0
    assert warmup == [0, 1, 2, 0]
    assert steady == [0, 1, 2, 0, 1]


def test_time_calls_single_input(fake_model):
    time_calls(fake_model, batches(1), TimingPlan(warmup_calls=2, min_calls=3, min_duration_s=0.0))

    assert fake_model.inputs == [0] * 6


def test_time_calls_no_inputs_raises(fake_model):
    with pytest.raises(ValueError, match="at least one input"):
        time_calls(fake_model, [], TimingPlan())


def test_time_calls_real_clock_durations():
    calls = []
    timed = time_calls(calls.append, batches(2), TimingPlan(warmup_calls=1, min_calls=3, min_duration_s=0.0))

    assert len(calls) == 5
    assert all(duration >= 0 for duration in timed.samples_s)


# --- TimingPlan --------------------------------------------------------------------


def test_timing_plan_defaults_valid():
    plan = TimingPlan()

    assert plan.max_calls >= plan.min_calls


def test_timing_plan_max_equal_min_allowed():
    assert TimingPlan(min_calls=5, max_calls=5).max_calls == 5


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        pytest.param({"warmup_calls": -1}, "warmup_calls", id="negative-warmup"),
        pytest.param({"min_calls": 0}, "min_calls", id="zero-min-calls"),
        pytest.param({"min_duration_s": -0.5}, "min_duration_s", id="negative-duration"),
        pytest.param({"min_calls": 10, "max_calls": 9}, "max_calls", id="max-below-min"),
    ],
)
def test_timing_plan_invalid_raises(settings, named):
    with pytest.raises(ValueError, match=named):
        TimingPlan(**settings)


def test_robust_spread_hand_computed():
    # Quartiles of 1..5 ms are 2 and 4 ms around a median of 3 ms.
    assert robust_spread([0.001, 0.002, 0.003, 0.004, 0.005]) == pytest.approx(2 / 3)


def test_robust_spread_ignores_rare_outlier():
    samples_s = [0.001] * 99 + [1.0]
    assert robust_spread(samples_s) == 0.0


def test_robust_spread_empty_raises():
    with pytest.raises(ValueError):
        robust_spread([])
