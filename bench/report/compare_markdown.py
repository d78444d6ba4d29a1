"""Render a ``bench compare`` result as Markdown, for a terminal, a file or a CI job summary."""

from __future__ import annotations

import math
from typing import Optional

from tabulate import tabulate

from bench.compare import (
    METRICS,
    VERDICT_IMPROVED,
    VERDICT_NOT_COMPARABLE,
    VERDICT_REGRESSED,
    VERDICT_UNCHANGED,
    ComparisonReport,
    MetricComparison,
    Threshold,
    TestOutcome,
)
from bench.results import RunResult

# Row notes that repeat what the verdict and test columns show.
_IMPLIED_NOTES = {"within threshold", "significant", "threshold only"}


def _significant_digits(value: float, digits: int = 3) -> str:
    """Format ``value`` with about ``digits`` significant digits, never in exponent notation.

    Values of 10^digits or more keep all their integer digits, with thousands separators.
    """
    if math.isinf(value) or math.isnan(value):
        return str(value)
    if abs(value) >= 10 ** digits:
        return f"{value:,.0f}"
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def format_value(metric_name: str, value: Optional[float]) -> str:
    """Format a metric's value with its unit."""
    if value is None:
        return ""
    unit = METRICS[metric_name].unit
    if metric_name.startswith("size."):
        return f"{int(value):,} B"
    if unit == "bytes":
        return f"{value / 2**20:,.1f} MiB"
    if unit == "share":
        return f"{100 * value:.2f}%"
    return f"{_significant_digits(value)} {unit}"


def format_change(metric_name: str, change: Optional[float]) -> str:
    """Format a change as a signed percentage, or in points for accuracy and F1."""
    if change is None:
        return ""
    if METRICS[metric_name].limit_unit == "pt":
        return f"{change:+.2f} pt"
    if math.isinf(change):
        return "from 0"
    if change == 0:
        return "±0%"
    sign = "+" if change > 0 else "-"
    return f"{sign}{_significant_digits(abs(change))}%"


def format_limit(threshold: Optional[Threshold]) -> str:
    if threshold is None or threshold.limit is None:
        return ""
    unit = METRICS[threshold.metric].limit_unit
    return f"{threshold.limit:g} pt" if unit == "pt" else f"{threshold.limit:g}%"


def format_p_value(p_value: float) -> str:
    # Asymptotic p-values of very large samples underflow to 0.
    return "p < 1e-300" if p_value == 0 else f"p = {p_value:.2g}"


def format_test(test: Optional[TestOutcome]) -> str:
    """Describe the test and its p-value, e.g. "Mann-Whitney U, one-sided (slower), p = 0.0004"."""
    if test is None:
        return ""
    if test.p_value is None:
        return f"{test.name}: not run"
    return f"{test.name}, one-sided ({test.alternative}), {format_p_value(test.p_value)}"


def _notes_cell(row: MetricComparison) -> str:
    parts = []
    if row.note and row.note not in _IMPLIED_NOTES:
        parts.append(row.note)
    if row.test is not None and row.test.p_value is not None:
        parts.append(format_test(row.test))
    elif row.test is not None and row.test.problem and row.test.problem not in row.note:
        # The verdict did not need the test, but the note gives the reason for the missing p-value.
        parts.append(f"no test: {row.test.problem}")
    if row.check is not None:
        check = row.check
        parts.append(
            f"re-timed to confirm: {format_value(check.metric, check.baseline)} → "
            f"{format_value(check.metric, check.new)} ({format_change(check.metric, check.change)}), "
            f"{check.verdict}" + (f", {format_test(check.test)}" if check.test and check.test.p_value is not None else "")
        )
    return "; ".join(parts)


def _cell(text: str) -> str:
    """Keep a cell on one line and its pipes from splitting the row."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _verdict_cell(verdict: str) -> str:
    return f"**{verdict}**" if verdict == VERDICT_REGRESSED else verdict


def format_rows_table(rows: list[MetricComparison]) -> str:
    """Render one table row per comparison row, in the report's order."""
    header = ["Model", "Batch", "Metric", "Baseline", "New", "Change", "Limit", "Verdict",
              "Test or note"]
    table = []
    for row in rows:
        metric = row.metric
        table.append([
            _cell(row.model),
            "" if row.batch_size is None else str(row.batch_size),
            metric or "",
            format_value(metric, row.baseline) if metric else "",
            format_value(metric, row.new) if metric else "",
            format_change(metric, row.change) if metric else "",
            format_limit(row.threshold),
            _verdict_cell(row.verdict),
            _cell(_notes_cell(row)),
        ])
    alignment = ("left", "right", "left", "right", "right", "right", "right", "left", "left")
    return tabulate(table, headers=header, tablefmt="pipe", colalign=alignment,
                    disable_numparse=True)


def format_summary(report: ComparisonReport) -> str:
    """Return one sentence with the verdict counts, regressions first."""
    counts = report.counts()
    parts = [
        f"**{counts[VERDICT_REGRESSED]} regressed**" if counts[VERDICT_REGRESSED]
        else "0 regressed",
        f"{counts[VERDICT_IMPROVED]} improved",
        f"{counts[VERDICT_UNCHANGED]} unchanged",
        f"{counts[VERDICT_NOT_COMPARABLE]} not comparable",
    ]
    return ", ".join(parts) + "."


def _run_line(label: str, run: RunResult, source: Optional[str]) -> str:
    commit = (run.environment.git_commit or "unknown")[:12]
    if run.environment.git_dirty:
        commit += " (modified)"
    where = f" from `{source}`" if source else ""
    return f"- {label}: run `{run.run_id}`, started {run.started_at}, commit {commit}{where}"


def _regression_line(row: MetricComparison) -> str:
    where = f"{row.model}" + (f", batch {row.batch_size}" if row.batch_size is not None else "")
    test = f"; {format_test(row.test)}" if row.test is not None else ""
    return (
        f"- **{where}**, {row.metric}: {format_value(row.metric, row.baseline)} → "
        f"{format_value(row.metric, row.new)} ({format_change(row.metric, row.change)}, "
        f"limit {format_limit(row.threshold)}{test})"
    )


def format_method(report: ComparisonReport) -> list[str]:
    """Explain the thresholds and the latency test, so the table can be trusted."""
    checked = [f"`{t.spec}` ({t.source})" for t in report.thresholds.values() if t.limit is not None]
    skipped = [f"`{t.spec}` ({t.source})" for t in report.thresholds.values() if t.limit is None]
    lines = [
        "Limits: " + ", ".join(checked) + ("." if checked else "none."),
    ]
    if skipped:
        lines.append("Not checked: " + ", ".join(skipped) + ".")
    lines.append(
        "A latency or throughput row counts as regressed or improved only when its change "
        "is beyond the limit and a one-sided test on the raw per-call samples is significant "
        f"at p < {report.alpha:g}: Mann-Whitney U for p50, mean and throughput; Fisher's exact "
        "test on the calls above the pooled percentile for p1, p10, p90 and p99. With thousands of "
        "calls, a change well inside the limit can have a tiny p-value, and such a row stays "
        "unchanged. Size, accuracy, F1 "
        "and memory are judged by their limit alone. Accuracy and F1 changes are in "
        "percentage points."
    )
    return lines


def format_comparison(
    report: ComparisonReport,
    baseline_source: Optional[str] = None,
    new_source: Optional[str] = None,
) -> list[str]:
    """Render the whole comparison as Markdown lines.

    ``baseline_source`` and ``new_source`` are the paths the runs were read
    from, shown next to each run's id.
    """
    lines = [
        "# Benchmark comparison",
        "",
        format_summary(report),
        "",
        _run_line("Baseline", report.baseline, baseline_source),
        _run_line("New", report.new, new_source),
        "",
    ]
    if report.notes:
        lines += [*report.notes, ""]
    regressions = report.rows_with(VERDICT_REGRESSED)
    if regressions:
        lines += ["## Regressions", "", *[_regression_line(row) for row in regressions], ""]
    if report.warnings:
        lines += ["## Warnings", "", *[f"- {warning}" for warning in report.warnings], ""]
    lines += ["## All metrics", ""]
    lines += [format_rows_table(report.rows)] if report.rows else ["No models to compare."]
    lines += ["", *format_method(report)]
    return lines
