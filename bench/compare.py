"""Compare two benchmark runs metric by metric: the performance-regression gate.

A row's verdict is one of ``regressed``, ``improved``, ``unchanged`` or
``not comparable``. Deterministic metrics (model size, accuracy, F1, peak
memory) are judged by their threshold alone. A latency or throughput change
counts only when it exceeds its threshold *and* a one-sided test on the raw
per-call samples is significant at ``ALPHA``.

Everything above the command-line section computes and never prints;
``bench.report.compare_markdown`` renders a ``ComparisonReport``, and only
``run_compare`` prints. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import argparse
import difflib
import math
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np

from bench.arguments import whole_number
from bench.errors import BenchError
from bench.results import RESULTS_FILE, LatencyResult, ModelResult, ResultsError, RunResult
from bench.stats import throughput_per_s

# One-sided significance level of the latency tests. It equals a two-sided
# level of 0.002, the level asv uses for its Mann-Whitney U check
# (asv/statistics.py, is_different). A comparison contains dozens of latency
# rows (variants x batch sizes x metrics). At 0.001, 50 rows without any real
# change give a significant row by chance in under 5% of comparisons, and
# such a row must still exceed its threshold to fail.
ALPHA = 0.001

VERDICT_REGRESSED = "regressed"
VERDICT_IMPROVED = "improved"
VERDICT_UNCHANGED = "unchanged"
VERDICT_NOT_COMPARABLE = "not comparable"

# Changes are compared with limits in floating point: 10% computed as
# 10.000000000000002% must not exceed a 10% limit.
_LIMIT_TOLERANCE = 1e-9


# ---------------------------------------------------------------------------
# Metrics


@dataclass(frozen=True)
class Metric:
    """A quantity that ``bench compare`` can check, and how to judge it."""

    name: str  # as written in a threshold spec
    unit: str  # of the values shown in the report
    lower_is_better: bool
    limit_unit: str  # "%" for a relative change, "pt" for a change in percentage points
    per_batch_size: bool  # latency metrics have one value per batch size
    # The significance test on raw latency samples: "mann-whitney" (location
    # shift), "quantile" (shift of the quantile ``quantile``) or None for a
    # metric judged by its threshold alone.
    test: Optional[str] = None
    quantile: Optional[float] = None
    description: str = ""


METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric("latency.p1", "ms", True, "%", True, "quantile", 0.01,
               "1st percentile latency: the model's speed when nothing else slows it"),
        Metric("latency.p10", "ms", True, "%", True, "quantile", 0.10, "10th percentile latency"),
        Metric("latency.p50", "ms", True, "%", True, "mann-whitney", 0.5, "median latency per call"),
        Metric("latency.p90", "ms", True, "%", True, "quantile", 0.90, "90th percentile latency"),
        Metric("latency.p99", "ms", True, "%", True, "quantile", 0.99, "99th percentile latency"),
        Metric("latency.mean", "ms", True, "%", True, "mann-whitney", None, "mean latency per call"),
        Metric("throughput", "samples/s", False, "%", True, "mann-whitney", None,
               "batch size / mean latency"),
        Metric("size.raw", "bytes", True, "%", False, description="model file size"),
        Metric("size.gzip", "bytes", True, "%", False, description="gzip -9 size of the model file"),
        Metric("accuracy", "share", False, "pt", False, description="test-split accuracy"),
        Metric("f1", "share", False, "pt", False, description="test-split F1 score"),
        Metric("memory.peak_rss", "bytes", True, "%", False,
               description="peak resident memory of the worker"),
    )
}


def _latency_value(metric: Metric, latency: LatencyResult) -> float:
    """Return the metric's value, from the raw samples when the record has them.

    The samples are what the tests use, so the shown value agrees with the
    test even when a results file's summary fields were edited by hand.
    """
    if latency.samples_s is not None and len(latency.samples_s):
        if metric.quantile is not None:
            return latency.percentile_ms(metric.quantile * 100)
        mean_ms = float(np.mean(np.asarray(latency.samples_s, dtype=np.float64))) * 1000.0
        return mean_ms if metric.name == "latency.mean" else throughput_per_s(latency.batch_size, mean_ms)
    values = {
        "latency.p50": latency.p50_ms,
        "latency.p90": latency.p90_ms,
        "latency.p99": latency.p99_ms,
        "latency.mean": latency.mean_ms,
        "throughput": latency.throughput_per_s,
    }
    return float(values[metric.name])


def _model_value(metric: Metric, model: ModelResult) -> Optional[float]:
    """Return the per-model value of ``metric``, or None when it was not recorded."""
    getters: dict[str, Callable[[ModelResult], Any]] = {
        "size.raw": lambda m: m.size.raw_bytes if m.size else None,
        "size.gzip": lambda m: m.size.gzip_bytes if m.size else None,
        "accuracy": lambda m: m.accuracy.accuracy if m.accuracy else None,
        "f1": lambda m: m.accuracy.f1 if m.accuracy else None,
        "memory.peak_rss": lambda m: m.memory.peak_rss_bytes if m.memory else None,
    }
    value = getters[metric.name](model)
    return None if value is None else float(value)


# ---------------------------------------------------------------------------
# Thresholds

# The latency gate checks the fastest calls, because other programs on a
# shared machine only ever add time to calls. docs/ci.md gives the measurements.
DEFAULT_THRESHOLDS = (
    "latency.p1:7%",
    # Listed as off so that the report names them. Turn them on where the
    # machine is quiet, for example latency.p50:10% on a dedicated runner.
    "latency.p50:off",
    "latency.p99:off",
    "throughput:off",
    # File sizes are deterministic for a given architecture and converter,
    # and the gzip size moves slightly with the trained weight values.
    "size.raw:1%",
    "size.gzip:1%",
    # Retraining on the same data and seed is not bit-exact on a multi-core CPU.
    "accuracy:-1pt",
    "f1:-1pt",
    "memory.peak_rss:15%",
)

SOURCE_DEFAULT = "default"
SOURCE_SUITE = "suite configuration"
SOURCE_COMMAND_LINE = "command line"

_SPEC_PATTERN = re.compile(r"^\s*(?P<metric>[^:\s]+)\s*:\s*(?P<limit>.*?)\s*$")
_LIMIT_PATTERN = re.compile(r"^(?P<sign>[+-]?)(?P<number>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>%|pt)$")


@dataclass(frozen=True)
class Threshold:
    """The largest tolerated worsening of one metric.

    ``limit`` is in percent of the baseline value for "%" metrics and in
    percentage points for "pt" metrics, always as a non-negative size of the
    worsening. None means the metric is not checked.
    """

    metric: str
    limit: Optional[float]
    source: str = SOURCE_DEFAULT

    @property
    def spec(self) -> str:
        if self.limit is None:
            return f"{self.metric}:off"
        unit = METRICS[self.metric].limit_unit
        sign = "-" if not METRICS[self.metric].lower_is_better and unit == "pt" else ""
        return f"{self.metric}:{sign}{self.limit:g}{unit}"


def _spec_help() -> str:
    return (
        "Write METRIC:LIMIT, for example latency.p50:10%, accuracy:-0.5pt, or "
        "METRIC:off to skip a metric. Relative limits take %, accuracy and f1 take "
        f"points (pt). Metrics: {', '.join(METRICS)}."
    )


def parse_threshold(text: str, source: str = SOURCE_COMMAND_LINE) -> Threshold:
    """Parse one ``METRIC:LIMIT`` spec such as ``latency.p99:25%`` or ``f1:-1pt``.

    The limit is the tolerated worsening. A sign is optional, but if given it
    must point in the worsening direction: ``+`` for metrics where lower is
    better, ``-`` for accuracy, F1 and throughput. Raises BenchError naming
    the spec, where it came from and the valid forms.
    """
    where = f" (from the {source})" if source != SOURCE_DEFAULT else ""
    if not isinstance(text, str):
        raise BenchError(
            f"invalid threshold {text!r}{where}: expected a string. {_spec_help()}"
        )
    match = _SPEC_PATTERN.match(text)
    if match is None or not match.group("limit"):
        raise BenchError(f"invalid threshold {text!r}{where}. {_spec_help()}")

    name = match.group("metric").lower()
    metric = METRICS.get(name)
    if metric is None:
        close = difflib.get_close_matches(name, METRICS, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise BenchError(
            f"invalid threshold {text!r}{where}: unknown metric {name!r}.{hint} {_spec_help()}"
        )

    limit_text = match.group("limit").lower()
    if limit_text == "off":
        return Threshold(name, None, source)

    limit = _LIMIT_PATTERN.match(limit_text)
    if limit is None:
        raise BenchError(
            f"invalid threshold {text!r}{where}: {limit_text!r} is not a limit. {_spec_help()}"
        )
    if limit.group("unit") != metric.limit_unit:
        example = "-0.5pt" if metric.limit_unit == "pt" else "10%"
        kind = "percentage points (pt)" if metric.limit_unit == "pt" else "a relative change in %"
        raise BenchError(
            f"invalid threshold {text!r}{where}: {name} takes {kind}, "
            f"for example {name}:{example}."
        )

    sign = limit.group("sign")
    worse_sign = "+" if metric.lower_is_better else "-"
    if sign and sign != worse_sign:
        direction = "an increase" if metric.lower_is_better else "a decrease"
        raise BenchError(
            f"invalid threshold {text!r}{where}: the limit is the tolerated worsening, and "
            f"for {name} that is {direction}; write {name}:{worse_sign}"
            f"{limit.group('number')}{metric.limit_unit} or leave out the sign."
        )
    return Threshold(name, float(limit.group("number")), source)


def suite_threshold_specs(run: RunResult) -> list[str]:
    """Return the ``compare.thresholds`` list of a run's suite configuration.

    Raises BenchError when the entry exists but is not a list of strings.
    """
    compare_section = run.suite.get("compare") if isinstance(run.suite, dict) else None
    if compare_section is None:
        return []
    if not isinstance(compare_section, dict):
        raise BenchError(
            f"invalid 'compare' entry in the suite configuration of run {run.run_id}: "
            f"expected an object with a 'thresholds' list, got {compare_section!r}"
        )
    specs = compare_section.get("thresholds", [])
    if not isinstance(specs, list) or not all(isinstance(spec, str) for spec in specs):
        raise BenchError(
            f"invalid compare.thresholds in the suite configuration of run {run.run_id}: "
            f"expected a list of strings such as [\"latency.p50:10%\"], got {specs!r}"
        )
    return specs


def resolve_thresholds(
    suite_specs: Iterable[str] = (), command_line_specs: Iterable[str] = ()
) -> dict[str, Threshold]:
    """Merge thresholds: defaults, then the suite's, then the command line's.

    A later source replaces an earlier one metric by metric. Metrics without
    a threshold in any source are not checked.
    """
    thresholds: dict[str, Threshold] = {}
    for specs, source in (
        (DEFAULT_THRESHOLDS, SOURCE_DEFAULT),
        (suite_specs, SOURCE_SUITE),
        (command_line_specs, SOURCE_COMMAND_LINE),
    ):
        for spec in specs:
            threshold = parse_threshold(spec, source)
            thresholds[threshold.metric] = threshold
    return {name: thresholds[name] for name in METRICS if name in thresholds}


# ---------------------------------------------------------------------------
# Significance tests on raw latency samples


@dataclass(frozen=True)
class TestOutcome:
    """A one-sided test of whether the new samples are slower (or faster)."""

    name: str  # "Mann-Whitney U" or "p99 exceedance, Fisher exact"
    alternative: str  # "slower" or "faster": the direction that was tested
    alpha: float
    p_value: Optional[float] = None  # None when the test could not run
    problem: Optional[str] = None  # why the test cannot reach alpha, in words

    @property
    def significant(self) -> bool:
        return self.problem is None and self.p_value is not None and self.p_value < self.alpha


def _log_binomial(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def mann_whitney_test(
    baseline_s: Sequence[float], new_s: Sequence[float], slower: bool, alpha: float = ALPHA
) -> TestOutcome:
    """Test whether the new calls are stochastically slower (or faster) than the baseline's.

    Uses scipy's one-sided Mann-Whitney U test. When even complete
    separation of the two samples could not reach ``alpha`` (the smallest
    exact one-sided p-value is 1 / C(n1 + n2, n1)), no test is made and
    ``problem`` explains why.

    NOTE: the test treats every call as independent. Calls in one process
    share its state (memory layout, thread placement, background load). With
    hundreds of samples per run even a 1-2% shift between two processes is
    significant, so the threshold, not the test, absorbs run-to-run variation.
    """
    name = "Mann-Whitney U"
    alternative = "slower" if slower else "faster"
    baseline = np.asarray(baseline_s, dtype=np.float64)
    new = np.asarray(new_s, dtype=np.float64)
    sizes = f"{baseline.size} baseline and {new.size} new calls"
    if baseline.size == 0 or new.size == 0:
        return TestOutcome(name, alternative, alpha, problem=f"no raw samples ({sizes})")

    smallest_p = math.exp(-_log_binomial(baseline.size + new.size, baseline.size))
    if smallest_p >= alpha:
        return TestOutcome(
            name, alternative, alpha,
            problem=f"too few samples for a significance test ({sizes}; "
            f"the smallest possible p-value is {smallest_p:.2g}, not below {alpha:g})",
        )

    if np.all(baseline == baseline[0]) and np.all(new == baseline[0]):
        # Identical constant samples: scipy would return NaN for this case.
        return TestOutcome(name, alternative, alpha, p_value=1.0)
    # Imported here because scipy.stats takes about 1 s to import and only
    # comparisons need it.
    from scipy import stats as scipy_stats

    result = scipy_stats.mannwhitneyu(
        new, baseline, alternative="greater" if slower else "less", method="auto"
    )
    return TestOutcome(name, alternative, alpha, p_value=float(result.pvalue))


def quantile_test(
    baseline_s: Sequence[float],
    new_s: Sequence[float],
    quantile: float,
    slower: bool,
    alpha: float = ALPHA,
) -> TestOutcome:
    """Test whether the new calls exceed a quantile more (or less) often.

    A change in one part of the distribution can leave the rest alone: a
    tail regression moves p99 but not the median, and a slower model under
    bursts of outside load moves p10 more clearly than the median. So the
    calls of both runs are pooled, each run's calls above the pooled
    ``quantile`` are counted, and Fisher's exact test checks the 2x2 table
    of (run, above or not). Under "no change" the split of those calls
    between the runs is hypergeometric, so the test is exact for
    independent calls.

    With k calls on the rarer side of the pooled quantile the smallest
    attainable p-value is about 2^-k for runs of equal length, so a p99
    test at alpha 0.001 needs about 500 calls per run.
    """
    percentile = f"p{quantile * 100:g}"
    name = f"{percentile} exceedance, Fisher exact"
    alternative = "slower" if slower else "faster"
    baseline = np.asarray(baseline_s, dtype=np.float64)
    new = np.asarray(new_s, dtype=np.float64)
    sizes = f"{baseline.size} baseline and {new.size} new calls"
    if baseline.size == 0 or new.size == 0:
        return TestOutcome(name, alternative, alpha, problem=f"no raw samples ({sizes})")

    from scipy import stats as scipy_stats  # imported here for the same reason

    cut = np.quantile(np.concatenate([baseline, new]), quantile)
    new_above = int(np.count_nonzero(new > cut))
    baseline_above = int(np.count_nonzero(baseline > cut))
    above = new_above + baseline_above
    total = baseline.size + new.size

    # The most extreme table puts as many of the calls above the cut as
    # possible into the tested run, and its probability is the smallest p-value.
    distribution = scipy_stats.hypergeom(total, above, new.size)
    extreme = min(above, new.size) if slower else max(0, above - baseline.size)
    smallest_p = float(distribution.pmf(extreme))
    if smallest_p >= alpha:
        # k calls on the rarer side of the cut, split evenly, reach p of about 2^-k at best.
        rarer_calls = math.ceil(math.log2(1 / alpha))
        needed = math.ceil(rarer_calls / (2 * min(quantile, 1 - quantile)) - _LIMIT_TOLERANCE)
        return TestOutcome(
            name, alternative, alpha,
            problem=f"too few samples for a {percentile} test ({sizes}, {above} above the "
            f"pooled {percentile}; the smallest possible p-value is {smallest_p:.2g}, "
            f"not below {alpha:g}); time about {needed} calls per run",
        )

    table = [[new_above, new.size - new_above], [baseline_above, baseline.size - baseline_above]]
    result = scipy_stats.fisher_exact(table, alternative="greater" if slower else "less")
    return TestOutcome(name, alternative, alpha, p_value=float(result.pvalue))


def _significance_test(
    metric: Metric, baseline_s: Sequence[float], new_s: Sequence[float], slower: bool, alpha: float
) -> TestOutcome:
    if metric.test == "quantile":
        return quantile_test(baseline_s, new_s, metric.quantile, slower, alpha)
    return mann_whitney_test(baseline_s, new_s, slower, alpha)


# ---------------------------------------------------------------------------
# Verdicts


@dataclass(frozen=True)
class MetricComparison:
    """One row of the comparison: a model, a batch size if any, and a metric."""

    model: str
    batch_size: Optional[int]  # None for per-model metrics and whole-model rows
    metric: Optional[str]  # None for a whole-model row (failed or missing model)
    verdict: str
    baseline: Optional[float] = None
    new: Optional[float] = None
    change: Optional[float] = None  # percent, or percentage points for "pt" metrics
    threshold: Optional[Threshold] = None
    test: Optional[TestOutcome] = None
    note: str = ""
    # The same row from the confirming re-timing of ``--confirm``, when one ran.
    check: Optional["MetricComparison"] = None


def metric_change(metric: Metric, baseline: float, new: float) -> float:
    """Return the change from ``baseline`` to ``new`` in the metric's limit unit.

    For "%" metrics this is the relative change in percent, which is
    infinite when only the baseline is 0. For "pt" metrics it is the
    difference of two shares in [0, 1], in percentage points.
    """
    if metric.limit_unit == "pt":
        return (new - baseline) * 100.0
    if baseline == 0:
        return 0.0 if new == 0 else math.copysign(math.inf, new)
    return (new - baseline) / abs(baseline) * 100.0


def _worsening(metric: Metric, change: float) -> float:
    """Return how much worse the new value is, in the limit unit (negative: better)."""
    return change if metric.lower_is_better else -change


def _threshold_verdict(metric: Metric, change: float, threshold: Threshold) -> str:
    worsening = _worsening(metric, change)
    if worsening > threshold.limit + _LIMIT_TOLERANCE:
        return VERDICT_REGRESSED
    if -worsening > threshold.limit + _LIMIT_TOLERANCE:
        return VERDICT_IMPROVED
    return VERDICT_UNCHANGED


def compare_model_metric(
    model: str, metric_name: str, baseline: ModelResult, new: ModelResult, threshold: Threshold
) -> MetricComparison:
    """Judge a per-model metric (size, accuracy, F1, memory) by its threshold alone."""
    metric = METRICS[metric_name]
    baseline_value = _model_value(metric, baseline)
    new_value = _model_value(metric, new)
    missing = [name for name, value in (("baseline", baseline_value), ("new run", new_value))
               if value is None]
    if missing:
        return MetricComparison(
            model, None, metric_name, VERDICT_NOT_COMPARABLE, baseline_value, new_value,
            threshold=threshold, note=f"not recorded in the {' and the '.join(missing)}",
        )
    change = metric_change(metric, baseline_value, new_value)
    if metric.limit_unit == "pt":
        guessing = [
            name for name, record in (("baseline", baseline), ("new run", new))
            if record.accuracy and record.accuracy.at_chance
        ]
        if guessing:
            return MetricComparison(
                model, None, metric_name, VERDICT_NOT_COMPARABLE, baseline_value, new_value, change,
                threshold, note=f"the model in the {' and the '.join(guessing)} classifies no better "
                "than chance (balanced accuracy 0.50 or less); train longer or on more data",
            )
    verdict = _threshold_verdict(metric, change, threshold)
    return MetricComparison(
        model, None, metric_name, verdict, baseline_value, new_value, change, threshold,
        note="threshold only",
    )


def compare_latency_metric(
    model: str,
    metric_name: str,
    baseline: LatencyResult,
    new: LatencyResult,
    threshold: Threshold,
    alpha: float = ALPHA,
) -> MetricComparison:
    """Judge a latency or throughput metric at one batch size.

    The verdict is ``regressed`` or ``improved`` only when the change is
    beyond the threshold and the one-sided test in that direction is
    significant. A change beyond the threshold that the samples cannot test
    is ``not comparable``, and one that is not significant is ``unchanged``.
    """
    if threshold.limit is None:
        raise ValueError(f"{metric_name} is not checked (its threshold is off); leave it out")
    metric = METRICS[metric_name]
    baseline_value = _latency_value(metric, baseline)
    new_value = _latency_value(metric, new)
    change = metric_change(metric, baseline_value, new_value)
    slower = _worsening(metric, change) > 0
    test = _significance_test(metric, baseline.samples_s, new.samples_s, slower, alpha)
    row = dict(
        model=model, batch_size=baseline.batch_size, metric=metric_name,
        baseline=baseline_value, new=new_value, change=change, threshold=threshold, test=test,
    )

    candidate = _threshold_verdict(metric, change, threshold)
    if candidate == VERDICT_UNCHANGED:
        return MetricComparison(verdict=VERDICT_UNCHANGED, note="within threshold", **row)
    if test.problem is not None:
        return MetricComparison(
            verdict=VERDICT_NOT_COMPARABLE,
            note=f"beyond the threshold, but {test.problem}", **row,
        )
    if test.significant:
        return MetricComparison(verdict=candidate, note="significant", **row)
    return MetricComparison(
        verdict=VERDICT_UNCHANGED, note="beyond the threshold but not significant", **row
    )


def compare_latency(
    model: str,
    baseline: LatencyResult,
    new: LatencyResult,
    thresholds: dict[str, Threshold],
    alpha: float = ALPHA,
) -> list[MetricComparison]:
    """Compare every checked latency and throughput metric of one model at one batch size."""
    return [
        compare_latency_metric(model, name, baseline, new, threshold, alpha)
        for name, threshold in thresholds.items()
        if METRICS[name].per_batch_size and threshold.limit is not None
    ]


# Characters of a failure message kept in a comparison row; results.json and
# report.md keep the whole message.
STATUS_MESSAGE_CHARS = 160


def _status_text(model: ModelResult) -> str:
    if model.failure is None:
        return model.status
    first_line = (model.failure.message or "").strip().splitlines()
    message = first_line[0] if first_line else "no message"
    if len(message) > STATUS_MESSAGE_CHARS:
        message = message[:STATUS_MESSAGE_CHARS].rstrip() + "…"
    kind = "" if model.failure.kind == model.status else f" ({model.failure.kind})"
    return f"{model.status} at {model.failure.stage}{kind}: {message}"


def compare_models(
    baseline: ModelResult,
    new: ModelResult,
    thresholds: dict[str, Threshold],
    alpha: float = ALPHA,
) -> list[MetricComparison]:
    """Compare one model present in both runs: per-model metrics, then each batch size."""
    name = new.name
    problems = [
        f"{label}: {_status_text(model)}"
        for label, model in (("baseline", baseline), ("new run", new))
        if not model.ok
    ]
    if len(problems) == 2 and _status_text(baseline) == _status_text(new):
        problems = [f"both runs: {_status_text(new)}"]
    if problems:
        # A model that worked before and fails now is the worst regression
        # of all, so it fails the gate instead of dropping out of it.
        verdict = VERDICT_REGRESSED if baseline.ok else VERDICT_NOT_COMPARABLE
        return [MetricComparison(name, None, None, verdict, note="; ".join(problems))]

    rows = [
        compare_model_metric(name, metric_name, baseline, new, threshold)
        for metric_name, threshold in thresholds.items()
        if not METRICS[metric_name].per_batch_size and threshold.limit is not None
    ]
    batch_sizes = sorted({entry.batch_size for entry in baseline.latency + new.latency})
    for batch_size in batch_sizes:
        baseline_latency = baseline.latency_for(batch_size)
        new_latency = new.latency_for(batch_size)
        if baseline_latency is None or new_latency is None:
            where = "baseline" if baseline_latency is None else "new run"
            rows.append(MetricComparison(
                name, batch_size, None, VERDICT_NOT_COMPARABLE,
                note=f"no latency at batch size {batch_size} in the {where}",
            ))
            continue
        rows.extend(compare_latency(name, baseline_latency, new_latency, thresholds, alpha))
    return rows


def timing_regressions(rows: Iterable[MetricComparison]) -> list[MetricComparison]:
    """Return the regressed latency and throughput rows: those that re-timing can check."""
    return [
        row for row in rows
        if row.verdict == VERDICT_REGRESSED and row.metric is not None and METRICS[row.metric].per_batch_size
    ]


def _row_key(row: MetricComparison) -> tuple:
    return (row.model, row.batch_size, row.metric)


def confirm_rows(
    rows: list[MetricComparison], checks: Iterable[MetricComparison], failed: dict[str, str]
) -> list[MetricComparison]:
    """Keep a regressed latency row regressed only when a second measurement regressed too.

    ``checks`` are the rows of the confirming comparison, and ``failed`` maps
    a model whose confirming measurement failed to the reason. A check that
    failed or could not test its row never clears a regression. A row that
    the check does not repeat becomes ``unchanged``. Every checked row keeps
    the first measurement's values and carries its check in ``check``.
    """
    by_key = {_row_key(check): check for check in checks if check.metric is not None}
    suspects = {_row_key(row) for row in timing_regressions(rows)}
    confirmed = []
    for row in rows:
        key = _row_key(row)
        if key not in suspects:
            confirmed.append(row)
            continue
        check = by_key.get(key)
        if row.model in failed or check is None:
            reason = failed.get(row.model, "the confirming comparison has no such row")
            confirmed.append(replace(row, note=f"counted as regressed because the check failed: {reason}"))
        elif check.verdict == VERDICT_NOT_COMPARABLE:
            confirmed.append(replace(
                row, check=check, note=f"counted as regressed because the check could not decide: {check.note}",
            ))
        elif check.verdict == VERDICT_REGRESSED:
            confirmed.append(replace(row, check=check, note="confirmed by re-timing"))
        else:
            confirmed.append(replace(row, verdict=VERDICT_UNCHANGED, check=check, note="not confirmed by re-timing"))
    return confirmed


def unchecked_regressions(rows: Iterable[MetricComparison]) -> list[MetricComparison]:
    """Return the regressed latency rows that count because their check failed or could not decide."""
    return [
        row for row in timing_regressions(rows)
        if row.check is None or row.check.verdict != VERDICT_REGRESSED
    ]


# ---------------------------------------------------------------------------
# Environments


@dataclass(frozen=True)
class EnvironmentDifference:
    field: str  # in words, for messages: "CPU model", "TensorFlow version", ...
    baseline: Any
    new: Any

    def describe(self) -> str:
        return f"{self.field}: baseline {self.baseline!r}, new {self.new!r}"


def _batch_sizes(run: RunResult) -> Optional[list[int]]:
    sizes = run.suite.get("batch_sizes") if isinstance(run.suite, dict) else None
    return sorted(sizes) if isinstance(sizes, list) else sizes


# Fields whose difference makes latency, accuracy or size incomparable between two runs.
_BLOCKING_FIELDS: tuple[tuple[str, Callable[[RunResult], Any]], ...] = (
    ("CPU model", lambda run: run.environment.cpu_model),
    ("TensorFlow version", lambda run: run.environment.packages.get("tensorflow")),
    ("device", lambda run: run.environment.device),
    ("batch sizes", _batch_sizes),
    ("data sha256", lambda run: run.data.sha256 if run.data else None),
    # The same file prepared differently (a quick run's 2000-text slice, another
    # vocabulary) gives other model sizes and accuracy.
    ("data preparation", lambda run: (
        f"{run.data.train}/{run.data.validation}/{run.data.test} texts, vocabulary "
        f"{run.data.vocab_size}, length {run.data.seq_len}" if run.data else None
    )),
)


def environment_differences(baseline: RunResult, new: RunResult) -> list[EnvironmentDifference]:
    """Return the differences that make the two runs' numbers incomparable."""
    differences = []
    for label, read in _BLOCKING_FIELDS:
        baseline_value, new_value = read(baseline), read(new)
        if baseline_value != new_value:
            differences.append(EnvironmentDifference(label, baseline_value, new_value))
    return differences


def environment_notes(baseline: RunResult, new: RunResult) -> list[str]:
    """Describe differences that may shift the numbers but do not block a comparison."""
    notes = []
    old_env, new_env = baseline.environment, new.environment
    if old_env.python != new_env.python:
        notes.append(f"Python differs: baseline {old_env.python!r}, new {new_env.python!r}")
    if old_env.cpu_count_logical != new_env.cpu_count_logical:
        notes.append(
            f"logical CPU count differs: baseline {old_env.cpu_count_logical}, "
            f"new {new_env.cpu_count_logical}"
        )
    if old_env.thread_settings != new_env.thread_settings:
        notes.append(
            f"thread settings differ: baseline {old_env.thread_settings!r}, "
            f"new {new_env.thread_settings!r}"
        )
    packages = sorted(set(old_env.packages) | set(new_env.packages))
    for package in packages:
        if package == "tensorflow":
            continue  # a blocking field, reported by environment_differences
        old_version, new_version = old_env.packages.get(package), new_env.packages.get(package)
        if old_version != new_version:
            notes.append(
                f"package {package} differs: baseline {old_version!r}, new {new_version!r}"
            )
    if new_env.git_dirty:
        notes.append("the new run was made from a work tree with uncommitted changes")
    return notes


# ---------------------------------------------------------------------------
# Whole runs


@dataclass
class ComparisonReport:
    """The rows of a comparison, with the thresholds, level and warnings behind them."""

    baseline: RunResult
    new: RunResult
    thresholds: dict[str, Threshold]
    alpha: float
    rows: list[MetricComparison] = field(default_factory=list)
    # Blocking differences that --allow-env-mismatch let through.
    environment_differences: list[EnvironmentDifference] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how the figures were obtained, e.g. re-timing

    def rows_with(self, verdict: str) -> list[MetricComparison]:
        return [row for row in self.rows if row.verdict == verdict]

    @property
    def regressed(self) -> bool:
        return any(row.verdict == VERDICT_REGRESSED for row in self.rows)

    @property
    def compared_nothing(self) -> bool:
        """Whether no row compared two values, so the comparison cannot show a regression."""
        return not any(
            row.verdict == VERDICT_REGRESSED
            or (row.metric is not None and row.verdict != VERDICT_NOT_COMPARABLE)
            for row in self.rows
        )

    def counts(self) -> dict[str, int]:
        verdicts = (VERDICT_REGRESSED, VERDICT_IMPROVED, VERDICT_UNCHANGED, VERDICT_NOT_COMPARABLE)
        return {verdict: len(self.rows_with(verdict)) for verdict in verdicts}


def check_environments(
    baseline: RunResult, new: RunResult, allow_env_mismatch: bool
) -> list[EnvironmentDifference]:
    """Return the blocking environment differences, or raise BenchError unless they are allowed."""
    differences = environment_differences(baseline, new)
    if differences and not allow_env_mismatch:
        listed = "; ".join(difference.describe() for difference in differences)
        raise BenchError(
            f"cannot compare run {baseline.run_id} with run {new.run_id} because their "
            f"environments differ: {listed}. Numbers from different environments do not "
            "show a regression. Re-create the baseline in the new environment, or pass "
            "--allow-env-mismatch to compare anyway with a warning."
        )
    return differences


def compare_runs(
    baseline: RunResult,
    new: RunResult,
    thresholds: dict[str, Threshold],
    *,
    alpha: float = ALPHA,
    allow_env_mismatch: bool = False,
) -> ComparisonReport:
    """Compare every model of two runs.

    Raises BenchError naming both values when the environments differ in a
    blocking field, unless ``allow_env_mismatch`` is set; then the
    differences become warnings in the report.
    """
    differences = check_environments(baseline, new, allow_env_mismatch)
    report = ComparisonReport(baseline, new, thresholds, alpha, environment_differences=differences)
    report.warnings.extend(
        f"environments differ ({difference.describe()}); compared because of --allow-env-mismatch"
        for difference in differences
    )
    report.warnings.extend(environment_notes(baseline, new))

    new_names = {model.name for model in new.models}
    baseline_names = {model.name for model in baseline.models}
    for model in baseline.models:
        if model.name not in new_names:
            report.rows.append(MetricComparison(
                model.name, None, None, VERDICT_NOT_COMPARABLE, note="only in the baseline"
            ))
            continue
        report.rows.extend(compare_models(model, new.model(model.name), thresholds, alpha))
    for model in new.models:
        if model.name not in baseline_names:
            report.rows.append(MetricComparison(
                model.name, None, None, VERDICT_NOT_COMPARABLE, note="only in the new run"
            ))

    for model in new.models:
        previous = baseline.model(model.name)
        if previous is not None and previous.ok and not model.ok:
            report.warnings.append(
                f"{model.name} succeeded in the baseline but is {model.status} in the new run"
            )
    if report.compared_nothing:
        report.warnings.append(
            "no metric could be compared, so this comparison cannot show a regression"
        )
    return report


# ---------------------------------------------------------------------------
# Command line: ``bench compare BASELINE NEW``

COMPARISON_FILE = "compare.md"
EXIT_NO_REGRESSION = 0
EXIT_REGRESSION = 1
# Same code as a usage error: a gate that compared nothing must not pass.
EXIT_NOTHING_COMPARED = 2


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``bench compare`` to ``parser``."""
    parser.add_argument(
        "baseline", type=Path,
        help="results.json or run folder of the reference run, e.g. the main branch's last run",
    )
    parser.add_argument("new", type=Path, help="results.json or run folder of the run to check")
    threshold_help = (
        "largest tolerated worsening of a metric, e.g. latency.p50:10% or accuracy:-0.5pt, "
        "or METRIC:off to skip it (repeatable; overrides compare.thresholds in the new run's "
        f"suite configuration and the defaults: {' '.join(DEFAULT_THRESHOLDS)}). "
        f"Metrics: {', '.join(METRICS)}"
    )
    parser.add_argument(
        "--threshold", dest="thresholds", action="append", default=[], metavar="METRIC:LIMIT",
        help=threshold_help.replace("%", "%%"),  # argparse expands %-formatting in help
    )
    parser.add_argument(
        "--output", type=Path, metavar="FILE",
        help=f"Markdown file to write the comparison to (default: {COMPARISON_FILE} in the new "
        "run's folder, or beside its results file)",
    )
    parser.add_argument(
        "--report-only", action="store_true",
        help="print and write the comparison but exit 0 even when a metric regressed",
    )
    parser.add_argument(
        "--retime", action="store_true",
        help="time both runs' artifacts again on this machine, alternating between the runs, and "
        "compare that latency instead of the stored one; needs both run folders with artifacts",
    )
    parser.add_argument(
        "--confirm", action="store_true",
        help="re-time the models with a regressed latency or throughput row, alternating between "
        "both runs' artifacts, and count such a row as regressed only when it regresses again; needs "
        "both run folders with artifacts, and costs time only when a row regressed",
    )
    parser.add_argument(
        "--processes", type=whole_number, metavar="N",
        help="rounds of re-timing with --retime or --confirm, one fresh process per model and run "
        "in each (default: the new run's processes setting, at least 10)",
    )
    parser.add_argument(
        "--allow-env-mismatch", action="store_true",
        help="compare runs whose CPU model, TensorFlow version, device, batch sizes or data "
        "differ, listing the differences as warnings",
    )


def _missing_baseline_message(path: Path) -> str:
    return (
        f"baseline results not found: {path}. Create a baseline by running the suite on the "
        "reference commit (bench run --out DIR) and copying the run folder (or, without "
        "--retime and --confirm, its results.json) to this path. In CI, restore the main branch's run folder "
        "to it before comparing. "
        "A missing baseline is an error, not a pass."
    )


def _load_run(path: Path, role: str) -> RunResult:
    if role == "baseline" and not (path.is_file() or (path / RESULTS_FILE).is_file()):
        raise BenchError(_missing_baseline_message(path))
    try:
        return RunResult.load(path)
    except ResultsError as error:
        raise BenchError(f"cannot read the {role} results: {error}") from None


def default_output_path(new_path: Path) -> Path:
    """Return where the comparison goes without --output: the new run's folder."""
    folder = new_path if new_path.is_dir() else new_path.parent
    return folder / COMPARISON_FILE


def run_compare(args: argparse.Namespace) -> int:
    """Run ``bench compare``: print the Markdown table, write it, return the exit code.

    Returns 1 when a metric regressed, 2 when no metric could be compared
    (every model failed, is missing from one run or has no checked metric)
    and 0 otherwise, or 0 in every case with --report-only. Raises
    BenchError, which the command line turns into exit code 2, for an
    invalid threshold, a missing or unreadable results file, mismatched
    environments or an unwritable output file.
    """
    from bench.report.compare_markdown import format_comparison

    for spec in args.thresholds:
        parse_threshold(spec, SOURCE_COMMAND_LINE)  # fail before reading any file
    if args.processes is not None and not (args.retime or args.confirm):
        raise BenchError(
            f"--processes {args.processes} applies to re-timing only; add --retime or --confirm, or leave it out"
        )
    if args.processes is not None and args.processes < 1:
        raise BenchError(f"--processes {args.processes} is invalid; use 1 or more")
    baseline = _load_run(args.baseline, "baseline")
    new = _load_run(args.new, "new")
    thresholds = resolve_thresholds(suite_threshold_specs(new), args.thresholds)
    notes = []
    if args.retime or args.confirm:
        from bench.retime import check_run_folders

        # Fail on missing artifacts and mismatched environments before minutes of re-timing.
        check_run_folders(args.baseline, args.new)
        check_environments(baseline, new, args.allow_env_mismatch)
    if args.retime:
        from bench.retime import retime_runs

        baseline, new, summary = retime_runs(args.baseline, args.new, baseline, new, args.processes)
        notes.append(f"Latency re-timed on this machine {summary} The stored latency was not used.")
    report = compare_runs(baseline, new, thresholds, allow_env_mismatch=args.allow_env_mismatch)
    report.notes.extend(notes)
    if args.confirm:
        from bench.retime import confirm_regressions

        report = confirm_regressions(report, args.baseline, args.new, args.processes)

    text = "\n".join(format_comparison(report, str(args.baseline), str(args.new))) + "\n"
    sys.stdout.write(text)
    sys.stdout.flush()

    output = args.output if args.output is not None else default_output_path(args.new)
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise BenchError(
            f"cannot write the comparison to {output}: {error.strerror or error}; "
            "choose another file with --output"
        ) from None
    print(f"comparison written to {output}", file=sys.stderr)

    if args.report_only:
        if report.regressed or report.compared_nothing:
            print("the gate did not pass; exit code 0 because of --report-only", file=sys.stderr)
        return EXIT_NO_REGRESSION
    if report.regressed:
        return EXIT_REGRESSION
    if report.compared_nothing:
        print(
            "bench: error: no metric could be compared (see the warnings above); "
            "check that both runs measured the same models",
            file=sys.stderr,
        )
        return EXIT_NOTHING_COMPARED
    return EXIT_NO_REGRESSION
