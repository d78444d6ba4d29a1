"""Tests of ``bench compare``: thresholds, significance tests, verdicts, environments, exit codes.

Every run is built in memory from constructed latency samples, so the tests
check decisions and never depend on how fast this machine is.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import compare
from bench.compare import (
    DEFAULT_THRESHOLDS,
    METRICS,
    VERDICT_IMPROVED,
    VERDICT_NOT_COMPARABLE,
    VERDICT_REGRESSED,
    VERDICT_UNCHANGED,
    Threshold,
    compare_latency,
    compare_runs,
    mann_whitney_test,
    parse_threshold,
    quantile_test,
    resolve_thresholds,
    run_compare,
)
from bench.errors import BenchError
from bench.report.compare_markdown import format_comparison
from bench.results import (
    AccuracyResult,
    DataInfo,
    Environment,
    Failure,
    LatencyResult,
    MemoryResult,
    ModelResult,
    RunResult,
    SizeResult,
)
from tests.clirun import REPO_ROOT, bench_env, run_bench


# ---------------------------------------------------------------------------
# Factories


def latency_samples_s(median_ms: float, count: int, spread: float = 0.03, seed: int = 0) -> list[float]:
    """Log-normal per-call latencies in seconds around ``median_ms``."""
    rng = np.random.default_rng(seed)
    return list(median_ms / 1000.0 * np.exp(rng.normal(0.0, spread, count)))


def make_latency(batch_size: int, samples_s: list[float]) -> LatencyResult:
    return LatencyResult.from_samples(
        batch_size=batch_size,
        call_path="constructed samples",
        first_call_s=0.5,
        warmup_s=[0.002] * 3,
        samples_s=samples_s,
    )


def make_model(
    name: str = "baseline",
    *,
    status: str = "ok",
    median_ms: dict[int, float] | None = None,
    count: int = 400,
    spread: float = 0.03,
    seed: int = 0,
    raw_bytes: int = 1_000_000,
    gzip_bytes: int = 900_000,
    accuracy: float = 0.85,
    f1: float = 0.84,
    peak_rss_bytes: int = 500 * 2**20,
    failure: Failure | None = None,
) -> ModelResult:
    """A measured model; ``seed`` picks the latency noise, so two seeds give an A/A pair."""
    if status != "ok":
        return ModelResult(name=name, family="test", status=status, failure=failure)
    medians = median_ms if median_ms is not None else {1: 1.0, 32: 10.0}
    latency = [
        make_latency(batch_size, latency_samples_s(median, count, spread, seed + batch_size))
        for batch_size, median in medians.items()
    ]
    return ModelResult(
        name=name,
        family="test",
        status="ok",
        runtime="litert",
        size=SizeResult(file=f"artifacts/{name}/model.tflite", raw_bytes=raw_bytes, gzip_bytes=gzip_bytes),
        accuracy=AccuracyResult(accuracy=accuracy, f1=f1, balanced_accuracy=accuracy, examples=1000),
        memory=MemoryResult(
            rss_before_load_bytes=100 * 2**20,
            rss_after_load_bytes=200 * 2**20,
            load_increase_bytes=100 * 2**20,
            peak_rss_bytes=peak_rss_bytes,
        ),
        latency=latency,
    )


def make_environment(**overrides) -> Environment:
    values = dict(
        cpu_model="Test CPU 3000",
        cpu_count_logical=2,
        cpu_count_physical=1,
        memory_total_bytes=8 * 2**30,
        os="Linux",
        python="3.11.7",
        packages={"tensorflow": "2.21.0", "ai-edge-litert": "2.3.0", "numpy": "2.4.6"},
        device="cpu",
        gpus=[],
        git_commit="0123456789abcdef",
        git_dirty=False,
        hostname="test-host",
        command_line=["bench", "run"],
        thread_settings={},
    )
    values.update(overrides)
    return Environment(**values)


def make_data(sha256: str = "a" * 64) -> DataInfo:
    return DataInfo(
        name="test-data", source="data.csv", sha256=sha256, language="en", tokenizer="words",
        rows_read=1000, duplicates_dropped=0, conflicting_dropped=0, train=800, validation=100,
        test=100, positive_share=0.5, vocab_size=1000, seq_len=64, truncated_share=0.1,
    )


def make_run(
    models: list[ModelResult],
    *,
    run_id: str = "run",
    batch_sizes: list[int] | None = None,
    data_sha256: str = "a" * 64,
    thresholds: list[str] | None = None,
    **environment,
) -> RunResult:
    suite = {"batch_sizes": batch_sizes if batch_sizes is not None else [1, 32], "quick": True}
    if thresholds is not None:
        suite["compare"] = {"thresholds": thresholds}
    return RunResult(
        run_id=run_id,
        started_at="2026-01-01T00:00:00+00:00",
        environment=make_environment(**environment),
        suite=suite,
        data=make_data(data_sha256),
        models=models,
        finished_at="2026-01-01T00:10:00+00:00",
    )


def save_run(run: RunResult, folder: Path) -> Path:
    """Save ``run`` as ``folder/results.json``, like a run folder, and return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    run.save(folder / "results.json")
    return folder


def rows_for(report, model: str, metric: str | None, batch_size: int | None = None):
    return [
        row for row in report.rows
        if row.model == model and row.metric == metric and row.batch_size == batch_size
    ]


def one_row(report, model: str, metric: str | None, batch_size: int | None = None):
    rows = rows_for(report, model, metric, batch_size)
    assert len(rows) == 1, f"expected one row for {model} {metric} {batch_size}, got {rows}"
    return rows[0]


DEFAULTS = resolve_thresholds()
# The median, tail and throughput checks, which the defaults leave off.
MEDIAN_GATE = resolve_thresholds(command_line_specs=["latency.p50:10%", "latency.p99:25%", "throughput:10%"])


# ---------------------------------------------------------------------------
# Threshold parsing


@pytest.mark.parametrize(
    ("spec", "metric", "limit"),
    [
        ("latency.p50:10%", "latency.p50", 10.0),
        ("latency.p99:25%", "latency.p99", 25.0),
        ("latency.p99:+25%", "latency.p99", 25.0),
        ("throughput:10%", "throughput", 10.0),
        ("throughput:-10%", "throughput", 10.0),
        ("size.gzip:0%", "size.gzip", 0.0),
        ("size.raw:0.5%", "size.raw", 0.5),
        ("accuracy:-0.5pt", "accuracy", 0.5),
        ("accuracy:0.5pt", "accuracy", 0.5),
        ("f1:-1pt", "f1", 1.0),
        ("memory.peak_rss:15%", "memory.peak_rss", 15.0),
        (" Latency.P90 : 12.5 % ", "latency.p90", 12.5),
        ("latency.mean:.5%", "latency.mean", 0.5),
    ],
)
def test_threshold_parses_valid_spec(spec, metric, limit):
    threshold = parse_threshold(spec)
    assert threshold.metric == metric
    assert threshold.limit == pytest.approx(limit)


def test_threshold_off_disables_metric():
    threshold = parse_threshold("latency.p99:off")
    assert threshold.metric == "latency.p99"
    assert threshold.limit is None
    assert threshold.spec == "latency.p99:off"


def test_threshold_spec_round_trips():
    for spec in DEFAULT_THRESHOLDS:
        assert parse_threshold(parse_threshold(spec).spec) == parse_threshold(spec)


@pytest.mark.parametrize(
    ("spec", "expected_text"),
    [
        ("latency.p5:10%", "Did you mean 'latency.p50'?"),
        ("throughtput:10%", "Did you mean 'throughput'?"),
        ("latency.p50", "Write METRIC:LIMIT"),
        ("latency.p50:", "Write METRIC:LIMIT"),
        ("latency.p50:ten%", "'ten%' is not a limit"),
        ("latency.p50:10", "'10' is not a limit"),
        ("accuracy:1%", "accuracy takes percentage points (pt)"),
        ("latency.p50:1pt", "latency.p50 takes a relative change in %"),
        ("latency.p50:-10%", "write latency.p50:+10%"),
        ("accuracy:+1pt", "write accuracy:-1pt"),
        ("", "Write METRIC:LIMIT"),
    ],
)
def test_threshold_rejects_invalid_spec(spec, expected_text):
    with pytest.raises(BenchError) as error:
        parse_threshold(spec)
    message = str(error.value)
    assert repr(spec) in message
    assert expected_text in message


def test_threshold_error_lists_metrics_and_forms():
    with pytest.raises(BenchError) as error:
        parse_threshold("bogus:1%")
    message = str(error.value)
    for name in compare.METRICS:
        assert name in message
    assert "accuracy:-0.5pt" in message
    assert "METRIC:off" in message


def test_threshold_error_names_its_source():
    with pytest.raises(BenchError) as error:
        resolve_thresholds(suite_specs=["latency.p50:fast"])
    assert "suite configuration" in str(error.value)


def test_thresholds_merge_by_precedence():
    thresholds = resolve_thresholds(
        suite_specs=["latency.p50:20%", "latency.p90:30%"],
        command_line_specs=["latency.p50:5%", "size.raw:off"],
    )
    assert thresholds["latency.p50"] == Threshold("latency.p50", 5.0, "command line")
    assert thresholds["latency.p90"] == Threshold("latency.p90", 30.0, "suite configuration")
    assert thresholds["latency.p99"].source == "default"
    assert thresholds["size.raw"].limit is None


def test_default_thresholds_cover_main_metrics():
    checked = {name for name, threshold in DEFAULTS.items() if threshold.limit is not None}
    assert checked == {"latency.p1", "size.raw", "size.gzip", "accuracy", "f1", "memory.peak_rss"}
    # Listed as off, so that the comparison names them as not checked.
    assert {"latency.p50", "latency.p99", "throughput"} <= set(DEFAULTS) - checked
    assert "latency.p90" not in DEFAULTS


@pytest.mark.parametrize("compare_entry", [["latency.p50:10%"], {"thresholds": "latency.p50:10%"},
                                           {"thresholds": [10]}])
def test_suite_thresholds_reject_wrong_shape(compare_entry):
    run = make_run([make_model()])
    run.suite["compare"] = compare_entry
    with pytest.raises(BenchError) as error:
        compare.suite_threshold_specs(run)
    assert "suite configuration" in str(error.value)


# ---------------------------------------------------------------------------
# Significance tests


def test_mann_whitney_complete_separation_matches_exact_p():
    baseline = [0.001 + i * 1e-6 for i in range(7)]
    new = [0.002 + i * 1e-6 for i in range(7)]
    outcome = mann_whitney_test(baseline, new, slower=True)
    assert outcome.problem is None
    # The only arrangement as extreme as complete separation, out of C(14, 7).
    assert outcome.p_value == pytest.approx(1 / math.comb(14, 7))
    assert outcome.significant


def test_mann_whitney_too_few_samples():
    # Complete separation of 6 and 6 calls gives p = 1/924 > 0.001 at best.
    outcome = mann_whitney_test([0.001] * 6, [0.002] * 6, slower=True)
    assert outcome.p_value is None
    assert not outcome.significant
    assert "too few samples" in outcome.problem
    assert "6 baseline and 6 new calls" in outcome.problem


def test_mann_whitney_no_samples():
    outcome = mann_whitney_test([], [0.001] * 50, slower=True)
    assert "no raw samples" in outcome.problem


def test_mann_whitney_constant_equal_samples():
    outcome = mann_whitney_test([0.001] * 50, [0.001] * 50, slower=True)
    assert outcome.p_value == 1.0
    assert not outcome.significant


def test_quantile_test_matches_hypergeometric_tail():
    # 500 distinct calls per run; the new run's 10 slowest are far out, so
    # the pooled 99th percentile leaves exactly those 10 calls above it.
    baseline = [0.001 + i * 1e-7 for i in range(500)]
    new = [0.001 + i * 1e-7 + 5e-8 for i in range(490)] + [0.01 + i * 1e-6 for i in range(10)]
    outcome = quantile_test(baseline, new, 0.99, slower=True)
    assert outcome.problem is None
    assert outcome.p_value == pytest.approx(math.comb(500, 10) / math.comb(1000, 10))
    assert outcome.significant


def test_quantile_test_too_few_samples_says_how_many():
    outcome = quantile_test(latency_samples_s(1.0, 100), latency_samples_s(2.0, 100, seed=1), 0.99,
                            slower=True)
    assert outcome.p_value is None
    assert "too few samples for a p99 test" in outcome.problem
    assert "time about 500 calls per run" in outcome.problem


# ---------------------------------------------------------------------------
# Latency verdicts


def rows_by_metric(baseline: LatencyResult, new: LatencyResult, thresholds) -> dict:
    """Compare two latency records and return the rows keyed by metric."""
    return {row.metric: row for row in compare_latency("model", baseline, new, thresholds)}


def latency_rows(baseline_ms, new_ms, *, count=400, spread=0.03, thresholds=None):
    baseline = make_latency(1, latency_samples_s(baseline_ms, count, spread, seed=1))
    new = make_latency(1, latency_samples_s(new_ms, count, spread, seed=2))
    return rows_by_metric(baseline, new, thresholds or MEDIAN_GATE)


def test_latency_clearly_equal_is_unchanged():
    rows = latency_rows(1.0, 1.0)
    assert set(rows) == {"latency.p1", "latency.p50", "latency.p99", "throughput"}
    for row in rows.values():
        assert row.verdict == VERDICT_UNCHANGED, row
    assert abs(rows["latency.p50"].change) < 1.0


def test_latency_clearly_slower_regresses():
    rows = latency_rows(1.0, 1.3)
    assert rows["latency.p50"].verdict == VERDICT_REGRESSED
    assert rows["throughput"].verdict == VERDICT_REGRESSED
    assert rows["latency.p50"].change == pytest.approx(30.0, abs=2.0)
    assert rows["throughput"].change < -20.0
    assert rows["latency.p50"].test.name == "Mann-Whitney U"
    assert rows["latency.p50"].test.alternative == "slower"
    assert rows["latency.p50"].test.p_value < 1e-10


def test_latency_clearly_faster_improves():
    rows = latency_rows(1.0, 0.7)
    assert rows["latency.p50"].verdict == VERDICT_IMPROVED
    assert rows["throughput"].verdict == VERDICT_IMPROVED
    assert rows["latency.p50"].test.alternative == "faster"
    assert rows["latency.p50"].test.p_value < 1e-10


def test_latency_significant_but_within_threshold_is_unchanged():
    rows = latency_rows(1.0, 1.04, count=3000, spread=0.01)
    row = rows["latency.p50"]
    assert row.test.significant
    assert row.verdict == VERDICT_UNCHANGED


def test_latency_beyond_threshold_but_noisy_is_unchanged():
    # Ten widely spread calls per run: the new median is 20% higher, but
    # the two samples overlap too much to tell that from chance.
    base_ms = [0.5, 0.7, 0.8, 0.9, 1.0, 1.0, 1.1, 1.3, 1.6, 2.0]
    new_ms = [value * 1.2 for value in base_ms]
    rows = rows_by_metric(
        make_latency(1, [value / 1000 for value in base_ms]),
        make_latency(1, [value / 1000 for value in new_ms]),
        MEDIAN_GATE,
    )
    row = rows["latency.p50"]
    assert row.change > 10.0
    assert row.test.p_value is not None
    assert not row.test.significant
    assert row.verdict == VERDICT_UNCHANGED
    assert row.note == "beyond the threshold but not significant"


def test_latency_too_few_samples_not_comparable():
    rows = latency_rows(1.0, 2.0, count=5)
    row = rows["latency.p50"]
    assert row.verdict == VERDICT_NOT_COMPARABLE
    assert "too few samples" in row.note
    assert row.test.p_value is None


def partly_slowed_samples(share: float, factor: float, seed: int) -> list[float]:
    """2000 calls around 1 ms, of which a random ``share`` take ``factor`` times as long."""
    rng = np.random.default_rng(seed)
    samples = np.array(latency_samples_s(1.0, 2000, seed=2))
    samples[rng.random(samples.size) < share] *= factor
    return list(samples)


def test_latency_tail_regression_caught_by_p99():
    base = latency_samples_s(1.0, 2000, seed=1)
    # One call in twenty takes three times as long: the median barely moves.
    slow = partly_slowed_samples(share=0.05, factor=3.0, seed=7)
    by_metric = rows_by_metric(make_latency(1, base), make_latency(1, slow), MEDIAN_GATE)
    assert by_metric["latency.p99"].verdict == VERDICT_REGRESSED
    assert by_metric["latency.p99"].test.name == "p99 exceedance, Fisher exact"
    assert by_metric["latency.p50"].verdict == VERDICT_UNCHANGED


P10_GATE = compare.resolve_thresholds(command_line_specs=[
    "latency.p10:5%", "latency.p50:10%", "latency.p99:off", "throughput:off",
])


def processes_latency(medians_ms: list[float], calls: int = 600, seed: int = 0) -> LatencyResult:
    """A latency record pooled from one process per median, each with ``calls`` calls."""
    timings = [
        {"first_call_s": 0.5, "warmup_s": [], "samples_s": latency_samples_s(median, calls, seed=seed + index)}
        for index, median in enumerate(medians_ms)
    ]
    return LatencyResult.from_processes(1, "constructed samples", timings)


def test_p1_catches_slower_model():
    base = processes_latency([1.0] * 10)
    slower = processes_latency([1.1] * 10, seed=50)
    row = rows_by_metric(base, slower, DEFAULTS)["latency.p1"]
    assert row.verdict == VERDICT_REGRESSED
    assert row.change == pytest.approx(10.0, abs=1.5)


def test_p10_ignores_outside_load_burst():
    base = latency_samples_s(1.0, 2000, seed=1)
    # Another program takes the second core for 60% of the new run: those
    # calls take 1.6 times as long, the others are as fast as before.
    burst = partly_slowed_samples(share=0.6, factor=1.6, seed=3)
    by_metric = rows_by_metric(make_latency(1, base), make_latency(1, burst), P10_GATE)
    assert by_metric["latency.p50"].verdict == VERDICT_REGRESSED
    assert by_metric["latency.p10"].verdict == VERDICT_UNCHANGED
    assert abs(by_metric["latency.p10"].change) < 5.0


def test_p10_catches_slower_model():
    base = latency_samples_s(1.0, 2000, seed=1)
    slower = [value * 1.10 for value in latency_samples_s(1.0, 2000, seed=2)]
    row = rows_by_metric(make_latency(1, base), make_latency(1, slower), P10_GATE)["latency.p10"]
    assert row.verdict == VERDICT_REGRESSED
    assert row.change == pytest.approx(10.0, abs=1.0)
    assert row.test.name == "p10 exceedance, Fisher exact"
    assert row.test.p_value < 1e-10


def test_p10_test_too_few_calls():
    few = quantile_test(latency_samples_s(1.0, 8), latency_samples_s(2.0, 8, seed=1), 0.10, slower=True)
    assert few.p_value is None
    assert "time about 50 calls per run" in few.problem


def test_latency_p99_with_few_calls_not_comparable():
    rows = latency_rows(1.0, 1.5, count=100)
    assert rows["latency.p50"].verdict == VERDICT_REGRESSED
    assert rows["latency.p99"].verdict == VERDICT_NOT_COMPARABLE
    assert "time about 500 calls per run" in rows["latency.p99"].note


def test_latency_off_metric_has_no_row():
    thresholds = resolve_thresholds(command_line_specs=["latency.p99:off"])
    rows = latency_rows(1.0, 1.0, thresholds=thresholds)
    assert "latency.p99" not in rows


# ---------------------------------------------------------------------------
# Per-model metrics


def compared(baseline_model: ModelResult, new_model: ModelResult, thresholds=None):
    return compare_runs(make_run([baseline_model]), make_run([new_model]), thresholds or DEFAULTS)


@pytest.mark.parametrize(
    ("new_bytes", "verdict"),
    [(1_000_001, VERDICT_REGRESSED), (1_000_000, VERDICT_UNCHANGED), (999_999, VERDICT_IMPROVED)],
)
def test_size_zero_percent_threshold(new_bytes, verdict):
    thresholds = resolve_thresholds(command_line_specs=["size.raw:0%"])
    report = compared(make_model(raw_bytes=1_000_000), make_model(raw_bytes=new_bytes, seed=5),
                      thresholds)
    assert one_row(report, "baseline", "size.raw").verdict == verdict


def test_size_at_exact_limit_is_unchanged():
    thresholds = resolve_thresholds(command_line_specs=["size.gzip:10%"])
    report = compared(make_model(gzip_bytes=1_000_000), make_model(gzip_bytes=1_100_000), thresholds)
    row = one_row(report, "baseline", "size.gzip")
    assert row.change == pytest.approx(10.0)
    assert row.verdict == VERDICT_UNCHANGED


@pytest.mark.parametrize(
    ("new_accuracy", "verdict"),
    [(0.846, VERDICT_UNCHANGED), (0.844, VERDICT_REGRESSED), (0.856, VERDICT_IMPROVED)],
)
def test_accuracy_points_threshold(new_accuracy, verdict):
    thresholds = resolve_thresholds(command_line_specs=["accuracy:-0.5pt"])
    report = compared(make_model(accuracy=0.85), make_model(accuracy=new_accuracy), thresholds)
    row = one_row(report, "baseline", "accuracy")
    assert row.change == pytest.approx((new_accuracy - 0.85) * 100)
    assert row.verdict == verdict
    assert row.test is None


def test_memory_growth_regresses():
    report = compared(make_model(peak_rss_bytes=500 * 2**20), make_model(peak_rss_bytes=600 * 2**20))
    row = one_row(report, "baseline", "memory.peak_rss")
    assert row.change == pytest.approx(20.0)
    assert row.verdict == VERDICT_REGRESSED


def test_unrecorded_metric_not_comparable():
    new_model = make_model()
    new_model.size = None
    report = compared(make_model(), new_model)
    row = one_row(report, "baseline", "size.raw")
    assert row.verdict == VERDICT_NOT_COMPARABLE
    assert row.note == "not recorded in the new run"


# ---------------------------------------------------------------------------
# Whole runs: failed and missing models, batch sizes


def test_identical_runs_have_no_regression():
    report = compared(make_model(seed=1), make_model(seed=2))
    assert not report.regressed
    assert report.rows_with(VERDICT_NOT_COMPARABLE) == []
    metrics = {(row.metric, row.batch_size) for row in report.rows}
    assert ("latency.p1", 1) in metrics
    assert ("latency.p1", 32) in metrics
    assert ("latency.p50", 1) not in metrics
    assert ("accuracy", None) in metrics


def test_newly_failed_model_regresses():
    failure = Failure(stage="measure", kind="signal", message="worker died | SIGSEGV\nmore lines")
    report = compared(make_model("tflite-int8"), make_model("tflite-int8", status="failed", failure=failure))
    row = one_row(report, "tflite-int8", None)
    assert row.verdict == VERDICT_REGRESSED
    assert "new run: failed at measure (signal): worker died | SIGSEGV" in row.note
    assert "more lines" not in row.note
    assert report.regressed
    assert any("tflite-int8 succeeded in the baseline but is failed" in w for w in report.warnings)


def test_unsupported_baseline_model_row():
    failure = Failure(stage="build", kind="unsupported", message="no GPU")
    report = compared(make_model("mixed-float16", status="unsupported", failure=failure),
                      make_model("mixed-float16"))
    row = one_row(report, "mixed-float16", None)
    assert row.verdict == VERDICT_NOT_COMPARABLE
    assert row.note.startswith("baseline: unsupported at build: no GPU")


def test_unsupported_in_both_runs_note():
    failure = Failure(stage="build", kind="unsupported", message="tfmot cannot quantize this layer. " * 20)
    report = compared(make_model("qat", status="unsupported", failure=failure),
                      make_model("qat", status="unsupported", failure=failure))
    row = one_row(report, "qat", None)
    assert row.verdict == VERDICT_NOT_COMPARABLE
    assert row.note.startswith("both runs: unsupported at build: tfmot cannot quantize this layer.")
    assert row.note.endswith("…")
    assert len(row.note) < compare.STATUS_MESSAGE_CHARS + 50


def test_models_in_one_run_only_are_listed():
    report = compare_runs(
        make_run([make_model("baseline"), make_model("pruned")]),
        make_run([make_model("baseline", seed=3), make_model("qat")]),
        DEFAULTS,
    )
    assert one_row(report, "pruned", None).note == "only in the baseline"
    assert one_row(report, "qat", None).note == "only in the new run"
    assert not report.regressed


def test_missing_batch_size_not_comparable():
    report = compared(make_model(median_ms={1: 1.0, 32: 10.0}), make_model(median_ms={1: 1.0}))
    row = one_row(report, "baseline", None, batch_size=32)
    assert row.verdict == VERDICT_NOT_COMPARABLE
    assert row.note == "no latency at batch size 32 in the new run"


def test_nothing_comparable_is_warned():
    report = compare_runs(make_run([make_model("a")]), make_run([make_model("b")]), DEFAULTS)
    assert not report.regressed
    assert any("no metric could be compared" in warning for warning in report.warnings)


# ---------------------------------------------------------------------------
# Environments


ENVIRONMENT_CASES = [
    ("CPU model", dict(cpu_model="Other CPU 9000"), "'Test CPU 3000'", "'Other CPU 9000'"),
    ("TensorFlow version",
     dict(packages={"tensorflow": "2.20.0", "ai-edge-litert": "2.3.0", "numpy": "2.4.6"}),
     "'2.21.0'", "'2.20.0'"),
    ("device", dict(device="gpu"), "'cpu'", "'gpu'"),
    ("batch sizes", dict(batch_sizes=[1, 64]), "[1, 32]", "[1, 64]"),
    ("data sha256", dict(data_sha256="b" * 64), repr("a" * 64), repr("b" * 64)),
]


@pytest.mark.parametrize(("field", "new_settings", "old_text", "new_text"), ENVIRONMENT_CASES,
                         ids=[case[0] for case in ENVIRONMENT_CASES])
def test_environment_mismatch_rejected(field, new_settings, old_text, new_text):
    baseline = make_run([make_model()])
    new = make_run([make_model(seed=4)], **new_settings)
    with pytest.raises(BenchError) as error:
        compare_runs(baseline, new, DEFAULTS)
    message = str(error.value)
    assert f"{field}: baseline {old_text}, new {new_text}" in message
    assert "--allow-env-mismatch" in message


@pytest.mark.parametrize(("field", "new_settings", "old_text", "new_text"), ENVIRONMENT_CASES,
                         ids=[case[0] for case in ENVIRONMENT_CASES])
def test_environment_mismatch_allowed_warns(field, new_settings, old_text, new_text):
    baseline = make_run([make_model()])
    new = make_run([make_model(seed=4)], **new_settings)
    report = compare_runs(baseline, new, DEFAULTS, allow_env_mismatch=True)
    assert any(f"{field}: baseline {old_text}, new {new_text}" in w for w in report.warnings)
    assert report.rows


def test_batch_size_order_does_not_matter():
    baseline = make_run([make_model()], batch_sizes=[1, 32])
    new = make_run([make_model(seed=4)], batch_sizes=[32, 1])
    assert compare.environment_differences(baseline, new) == []


def test_other_data_preparation_rejected():
    baseline = make_run([make_model()])
    new = make_run([make_model(seed=3)])
    # Same source file, but a quick run's slice and vocabulary.
    new.data.train, new.data.vocab_size = 1600, 700
    with pytest.raises(BenchError) as error:
        compare_runs(baseline, new, DEFAULTS)
    message = str(error.value)
    assert "data preparation" in message
    assert "'800/100/100 texts, vocabulary 1000, length 64'" in message
    assert "'1600/100/100 texts, vocabulary 700, length 64'" in message


def test_accuracy_at_chance_not_comparable():
    report = compared(make_model(accuracy=0.5), make_model(accuracy=0.45, seed=3))
    row = one_row(report, "baseline", "accuracy")
    assert row.verdict == VERDICT_NOT_COMPARABLE
    assert "classifies no better than chance" in row.note
    assert "baseline and the new run" in row.note


def test_minor_environment_differences_warn_only():
    baseline = make_run([make_model()])
    new = make_run(
        [make_model(seed=4)],
        python="3.12.1",
        packages={"tensorflow": "2.21.0", "ai-edge-litert": "2.4.0", "numpy": "2.4.6"},
        git_dirty=True,
    )
    report = compare_runs(baseline, new, DEFAULTS)
    assert "Python differs: baseline '3.11.7', new '3.12.1'" in report.warnings
    assert "package ai-edge-litert differs: baseline '2.3.0', new '2.4.0'" in report.warnings
    assert any("uncommitted changes" in warning for warning in report.warnings)


# ---------------------------------------------------------------------------
# Markdown


def test_markdown_shows_tests_and_regressions():
    baseline = make_run([make_model("baseline", median_ms={1: 1.0}, count=1000)], batch_sizes=[1])
    new = make_run([make_model("baseline", median_ms={1: 1.5}, count=1000, seed=9)], batch_sizes=[1])
    report = compare_runs(baseline, new, MEDIAN_GATE)
    text = "\n".join(format_comparison(report, "old/results.json", "new/"))
    assert "## Regressions" in text
    assert "| Model" in text
    assert "Mann-Whitney U, one-sided (slower), p" in text
    assert "p1 exceedance, Fisher exact, one-sided (slower), p" in text
    assert "`old/results.json`" in text
    assert "p < 0.001" in text
    assert "`latency.p1:7%` (default)" in text
    assert "`latency.p50:10%` (command line)" in text
    assert {(row.metric, row.verdict) for row in report.rows_with(VERDICT_REGRESSED)} >= {
        ("latency.p1", VERDICT_REGRESSED), ("latency.p50", VERDICT_REGRESSED), ("throughput", VERDICT_REGRESSED),
    }


def test_markdown_explains_missing_test():
    thresholds = compare.resolve_thresholds(command_line_specs=["latency.p99:25%"])
    baseline = make_run([make_model("baseline", median_ms={1: 1.0}, count=100)], batch_sizes=[1])
    new = make_run([make_model("baseline", median_ms={1: 1.0}, count=100, seed=9)], batch_sizes=[1])
    text = "\n".join(format_comparison(compare_runs(baseline, new, thresholds)))
    p99_line = next(line for line in text.splitlines() if "| latency.p99 " in line)
    assert "no test: too few samples for a p99 test" in p99_line


def test_markdown_escapes_pipes_in_notes():
    failure = Failure(stage="measure", kind="exception", message="bad | value")
    report = compared(make_model("x"), make_model("x", status="failed", failure=failure))
    text = "\n".join(format_comparison(report))
    row_lines = [line for line in text.splitlines() if "bad" in line]
    assert len(row_lines) == 1
    assert "bad \\| value" in row_lines[0]


# ---------------------------------------------------------------------------
# run_compare and the command line


def compare_args(baseline: Path, new: Path, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    compare.add_compare_arguments(parser)
    return parser.parse_args([str(baseline), str(new), *extra])


@pytest.fixture
def runs(tmp_path):
    """Folders of a baseline run, an equal new run and a slower new run."""
    # 1000 calls per run: the default p1 check needs about 500 to be tested.
    base = save_run(make_run([make_model(median_ms={1: 1.0}, count=1000)], run_id="base", batch_sizes=[1]),
                    tmp_path / "base")
    same = save_run(make_run([make_model(median_ms={1: 1.0}, count=1000, seed=11)], run_id="same",
                             batch_sizes=[1]), tmp_path / "same")
    slow = save_run(make_run([make_model(median_ms={1: 1.4}, count=1000, seed=12)], run_id="slow",
                             batch_sizes=[1]), tmp_path / "slow")
    return base, same, slow


def test_run_compare_exit_zero_without_regression(runs, capsys):
    base, same, _ = runs
    assert run_compare(compare_args(base, same)) == 0
    printed = capsys.readouterr()
    assert "# Benchmark comparison" in printed.out
    assert f"comparison written to {same / 'compare.md'}" in printed.err
    assert (same / "compare.md").read_text() == printed.out


def test_run_compare_exit_one_on_regression(runs, capsys):
    base, _, slow = runs
    assert run_compare(compare_args(base, slow)) == 1
    assert "**regressed**" in capsys.readouterr().out


def test_run_compare_report_only_exits_zero(runs, capsys):
    base, _, slow = runs
    assert run_compare(compare_args(base, slow, "--report-only")) == 0
    printed = capsys.readouterr()
    assert "**regressed**" in printed.out
    assert "--report-only" in printed.err


def test_run_compare_nothing_compared_exits_two(runs, tmp_path, capsys):
    base, _, _ = runs
    failure = Failure(stage="build", kind="exception", message="converter crashed")
    broken = save_run(
        make_run([make_model("other", status="failed", failure=failure)], run_id="broken", batch_sizes=[1]),
        tmp_path / "broken",
    )
    assert run_compare(compare_args(base, broken)) == 2
    printed = capsys.readouterr()
    assert "no metric could be compared" in printed.out
    assert "no metric could be compared" in printed.err
    assert run_compare(compare_args(base, broken, "--report-only")) == 0


def test_run_compare_newly_failed_exits_one(runs, tmp_path):
    base, _, _ = runs
    failure = Failure(stage="build", kind="exception", message="converter crashed")
    broken = save_run(
        make_run([make_model(status="failed", failure=failure)], run_id="broken", batch_sizes=[1]),
        tmp_path / "broken",
    )
    assert run_compare(compare_args(base, broken)) == 1


def test_run_compare_accepts_results_files(runs, tmp_path):
    base, same, _ = runs
    output = tmp_path / "out" / "table.md"
    output.parent.mkdir()
    assert run_compare(compare_args(base / "results.json", same / "results.json", "--output",
                                    str(output))) == 0
    assert output.read_text().startswith("# Benchmark comparison")


def test_run_compare_results_file_writes_beside_it(runs):
    base, same, _ = runs
    run_compare(compare_args(base, same / "results.json"))
    assert (same / "compare.md").is_file()


def test_run_compare_missing_baseline_explains(runs, tmp_path):
    _, same, _ = runs
    missing = tmp_path / "baseline" / "results.json"
    with pytest.raises(BenchError) as error:
        run_compare(compare_args(missing, same))
    message = str(error.value)
    assert f"baseline results not found: {missing}" in message
    assert "bench run --out" in message
    assert "In CI, restore the main branch's run folder" in message


def test_run_compare_empty_baseline_folder_explains(runs, tmp_path):
    _, same, _ = runs
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BenchError, match="baseline results not found"):
        run_compare(compare_args(empty, same))


def test_run_compare_unreadable_new_run(runs, tmp_path):
    base, _, _ = runs
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "results.json").write_text("{not json")
    with pytest.raises(BenchError, match="cannot read the new results"):
        run_compare(compare_args(base, broken))


def test_run_compare_bad_threshold_before_reading(tmp_path):
    with pytest.raises(BenchError, match="unknown metric 'latency.p51'"):
        run_compare(compare_args(tmp_path / "none", tmp_path / "none", "--threshold", "latency.p51:5%"))


def test_retime_needs_artifact_folders(runs):
    base, same, _ = runs
    with pytest.raises(BenchError) as error:
        run_compare(compare_args(base, same, "--retime"))
    message = str(error.value)
    assert "--retime and --confirm need the baseline run's folder with its artifacts" in message
    assert "has no artifacts and no data/splits.npz" in message


def test_processes_without_retime_rejected(runs):
    base, same, _ = runs
    with pytest.raises(BenchError, match="--processes 3 applies to re-timing only"):
        run_compare(compare_args(base, same, "--processes", "3"))


def test_run_compare_uses_new_runs_suite_thresholds(runs, tmp_path):
    base, _, _ = runs
    lenient = save_run(
        make_run([make_model(median_ms={1: 1.4}, seed=12)], run_id="lenient", batch_sizes=[1],
                 thresholds=["latency.p50:50%", "throughput:50%"]),
        tmp_path / "lenient",
    )
    assert run_compare(compare_args(base, lenient)) == 0
    assert run_compare(compare_args(base, lenient, "--threshold", "latency.p50:10%")) == 1


def test_run_compare_env_mismatch_is_usage_error(runs, tmp_path):
    base, _, _ = runs
    other = save_run(make_run([make_model(median_ms={1: 1.0})], batch_sizes=[1], cpu_model="Other"),
                     tmp_path / "other")
    with pytest.raises(BenchError, match="CPU model: baseline 'Test CPU 3000', new 'Other'"):
        run_compare(compare_args(base, other))
    assert run_compare(compare_args(base, other, "--allow-env-mismatch")) == 0


def run_cli(*arguments: str) -> subprocess.CompletedProcess:
    """Run ``bench compare`` in a fresh interpreter and report whether it imported TensorFlow."""
    code = (
        "import sys\n"
        "from bench.cli import main\n"
        "status = main(sys.argv[1:])\n"
        "print('tensorflow imported:', 'tensorflow' in sys.modules, file=sys.stderr)\n"
        "raise SystemExit(status)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, "compare", *arguments],
        capture_output=True, text=True, cwd=REPO_ROOT, env=bench_env(), timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_cli_exit_codes(runs, tmp_path):
    base, same, slow = runs
    passed = run_cli(str(base), str(same))
    assert passed.returncode == 0, passed.stderr
    assert "# Benchmark comparison" in passed.stdout
    assert "tensorflow imported: False" in passed.stderr

    regressed = run_cli(str(base), str(slow))
    assert regressed.returncode == 1, regressed.stderr

    missing = run_cli(str(tmp_path / "nothing"), str(same))
    assert missing.returncode == 2
    assert "baseline results not found" in missing.stderr
    assert "Traceback" not in missing.stderr

    invalid = run_cli(str(base), str(same), "--threshold", "accuracy:1%")
    assert invalid.returncode == 2
    assert "accuracy takes percentage points" in invalid.stderr


def test_cli_module_entry_point(runs):
    base, same, _ = runs
    result = run_bench("compare", str(base), str(same), "--output", str(same / "via-module.md"),
                       timeout=120)
    assert result.returncode == 0, result.stderr
    assert (same / "via-module.md").is_file()


def test_saved_results_round_trip(runs):
    base, _, _ = runs
    payload = json.loads((base / "results.json").read_text())
    assert payload["models"][0]["latency"][0]["samples_s"]
    assert RunResult.load(base).models[0].latency[0].count == 1000


# ---------------------------------------------------------------------------
# Confirming latency regressions


def _suite_report(new_median_ms: float, seed: int, count: int = 1000, **model_values):
    baseline = make_run([make_model(median_ms={1: 1.0}, count=count)], batch_sizes=[1])
    new = make_run([make_model(median_ms={1: new_median_ms}, count=count, seed=seed, **model_values)],
                   batch_sizes=[1])
    return compare_runs(baseline, new, DEFAULTS)


def _p1_row(rows):
    return next(row for row in rows if row.metric == "latency.p1")


def test_confirm_rows_clears_unrepeated_regression():
    first = _suite_report(1.3, seed=5)
    assert _p1_row(first.rows).verdict == VERDICT_REGRESSED
    check = _suite_report(1.0, seed=6)
    rows = compare.confirm_rows(first.rows, check.rows, {})
    row = _p1_row(rows)
    assert row.verdict == VERDICT_UNCHANGED
    assert row.change == _p1_row(first.rows).change  # the first measurement stays on show
    assert row.note == "not confirmed by re-timing"
    assert row.check == _p1_row(check.rows)
    assert compare.timing_regressions(rows) == []


def test_confirm_rows_keeps_a_repeated_regression():
    first = _suite_report(1.3, seed=5)
    check = _suite_report(1.3, seed=7)
    rows = compare.confirm_rows(first.rows, check.rows, {})
    row = _p1_row(rows)
    assert row.verdict == VERDICT_REGRESSED
    assert row.note == "confirmed by re-timing"
    assert row.check.verdict == VERDICT_REGRESSED
    assert compare.unchecked_regressions(rows) == []


def test_confirm_rows_keeps_a_regression_whose_check_failed():
    first = _suite_report(1.3, seed=5)
    rows = compare.confirm_rows(first.rows, [], {"baseline": "the worker crashed"})
    row = _p1_row(rows)
    assert row.verdict == VERDICT_REGRESSED
    assert "the worker crashed" in row.note
    assert row.check is None
    assert compare.unchecked_regressions(rows) == [row]


def test_confirm_rows_keeps_undecided_regression():
    first = _suite_report(1.3, seed=5)
    # 100 calls per run are too few for a p1 test, so the check cannot decide.
    check = _suite_report(1.3, seed=7, count=100)
    assert _p1_row(check.rows).verdict == VERDICT_NOT_COMPARABLE
    rows = compare.confirm_rows(first.rows, check.rows, {})
    row = _p1_row(rows)
    assert row.verdict == VERDICT_REGRESSED
    assert "the check could not decide" in row.note
    assert compare.unchecked_regressions(rows) == [row]


def test_confirmed_row_markdown_shows_both_tests():
    first = _suite_report(1.3, seed=5)
    check = _suite_report(1.0, seed=6)
    first.rows = compare.confirm_rows(first.rows, check.rows, {})
    lines = "\n".join(format_comparison(first)).splitlines()
    p1_line = next(line for line in lines if "| latency.p1" in line)
    assert "not confirmed by re-timing" in p1_line
    assert "re-timed to confirm: " in p1_line
    assert p1_line.count("p = ") == 2


def test_confirm_rows_leaves_other_metrics_alone():
    # A larger file is deterministic: re-timing cannot clear it.
    first = _suite_report(1.0, seed=5, gzip_bytes=1_000_000)
    assert one_row(first, "baseline", "size.gzip").verdict == VERDICT_REGRESSED
    check = _suite_report(1.0, seed=6)
    rows = compare.confirm_rows(first.rows, check.rows, {})
    assert [row.verdict for row in rows] == [row.verdict for row in first.rows]
    assert compare.timing_regressions(rows) == []


def test_confirm_needs_artifact_folders(runs):
    base, _, slow = runs
    with pytest.raises(BenchError, match="--retime and --confirm need the baseline run's folder"):
        run_compare(compare_args(base, slow, "--confirm"))


def test_processes_below_one_rejected(runs):
    base, same, _ = runs
    with pytest.raises(BenchError, match="--processes 0 is invalid; use 1 or more"):
        run_compare(compare_args(base, same, "--confirm", "--processes", "0"))


def _workflow_commands() -> list[list[str]]:
    """Return the bench commands of the example workflow, continuation lines joined."""
    import shlex

    text = (REPO_ROOT / ".github" / "workflows" / "bench-regression.yml").read_text()
    joined = text.replace("\\\n", " ")
    return [shlex.split(line.split("run:")[-1].strip())[1:]
            for line in joined.splitlines()
            if line.split("run:")[-1].strip().startswith("bench ")]


def test_example_workflow_commands_parse():
    from bench.cli import build_parser

    commands = _workflow_commands()
    assert {command[0] for command in commands} >= {"run", "compare"}
    parser = build_parser()
    for command in commands:
        args = parser.parse_args(command)
        if command[0] == "compare":
            assert args.retime
            assert args.confirm
            assert args.processes == 10
            for spec in args.thresholds:
                parse_threshold(spec)


def test_latency_values_come_from_samples():
    import dataclasses

    samples = latency_samples_s(2.0, 400)
    record = make_latency(1, samples)
    # A hand-edited summary field must not hide what the samples show.
    edited = dataclasses.replace(record, p50_ms=1.0, mean_ms=1.0, throughput_per_s=1000.0)
    for name in ("latency.p50", "latency.mean", "throughput"):
        assert compare._latency_value(METRICS[name], edited) == pytest.approx(
            compare._latency_value(METRICS[name], record)
        ), name
    assert compare._latency_value(METRICS["latency.p50"], edited) == pytest.approx(record.p50_ms)
