"""The Markdown report: a comparison table a person can read in a pull request."""

from __future__ import annotations

from typing import Any, Optional

import pandas as pd

from bench.report.table import failure_text
from bench.results import ModelResult, RunResult
from bench.stats import robust_spread

BASELINE = "baseline"
# A variant within this many accuracy points of the baseline counts as
# keeping its accuracy, for the recommendations.
ACCURACY_TOLERANCE_POINTS = 1.0
# Interquartile range over median above which a latency figure is flagged
# as noisy. Steady-state calls on an idle machine stay well below it.
NOISY_SPREAD = 0.25
# A variant is called slower than the baseline only beyond this share, because
# medians of processes on a shared machine differ by a few percent anyway.
SLOWER_MARGIN = 0.05
FEW_CALLS = 30
STATUS_WIDTH = 100  # characters of a failure cause shown in the comparison table


def _mebibytes(value: Optional[int]) -> str:
    return "" if value is None else f"{value / 2**20:.2f} MiB"


def _kibibytes(value: Optional[int]) -> str:
    return "" if value is None else f"{value / 1024:,.0f} KiB"


def _ratio(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.2f}×"


def _points(model: ModelResult, baseline: Optional[ModelResult]) -> Optional[float]:
    if not (model.accuracy and baseline and baseline.accuracy):
        return None
    return 100 * (model.accuracy.accuracy - baseline.accuracy.accuracy)


def _speedup(model: ModelResult, baseline: Optional[ModelResult], batch_size: int) -> Optional[float]:
    mine = model.latency_for(batch_size)
    theirs = baseline.latency_for(batch_size) if baseline else None
    if not (mine and theirs) or mine.p50_ms <= 0:
        return None
    return theirs.p50_ms / mine.p50_ms


def _compression(model: ModelResult, baseline: Optional[ModelResult]) -> Optional[float]:
    if not (model.size and baseline and baseline.size) or model.size.gzip_bytes <= 0:
        return None
    return baseline.size.gzip_bytes / model.size.gzip_bytes


def _batch_sizes(run: RunResult) -> list[int]:
    sizes = run.suite.get("batch_sizes") or sorted({e.batch_size for m in run.models for e in m.latency})
    return list(sizes)


def _marks(run: RunResult, batch_sizes: list[int]) -> dict[str, list[str]]:
    """Mark the fastest model per batch size, the smallest and the most accurate."""
    marks: dict[str, list[str]] = {model.name: [] for model in run.models}
    measured = [model for model in run.models if model.ok]
    for batch_size in batch_sizes:
        timed = [model for model in measured if model.latency_for(batch_size)]
        if timed:
            fastest = min(timed, key=lambda model: model.latency_for(batch_size).p50_ms)
            marks[fastest.name].append(f"fastest b{batch_size}")
    sized = [model for model in measured if model.size]
    if sized:
        marks[min(sized, key=lambda model: model.size.gzip_bytes).name].append("smallest")
    scored = [model for model in measured if model.accuracy]
    if scored:
        marks[max(scored, key=lambda model: model.accuracy.accuracy).name].append("most accurate")
    return marks


def comparison_table(run: RunResult) -> str:
    baseline = run.model(BASELINE)
    batch_sizes = _batch_sizes(run)
    marks = _marks(run, batch_sizes)
    rows = []
    for model in run.models:
        row = {"variant": model.name, "status": model.status}
        if not model.ok:
            # The table keeps the cause short; the Variants section has it all.
            if model.status == "unsupported" and model.failure:
                cause = model.failure.message.replace("|", "/")
            else:
                cause = failure_text(model).replace("|", "/")
            row["status"] = f"{model.status}: {cause[:STATUS_WIDTH]}{'…' if len(cause) > STATUS_WIDTH else ''}"
        points = _points(model, baseline)
        row["accuracy"] = f"{model.accuracy.accuracy:.4f}" if model.accuracy else ""
        row["Δ acc (pt)"] = "" if points is None else f"{points:+.2f}"
        row["F1"] = f"{model.accuracy.f1:.4f}" if model.accuracy else ""
        for batch_size in batch_sizes:
            entry = model.latency_for(batch_size)
            row[f"p50 b{batch_size} (ms)"] = f"{entry.p50_ms:.3f}" if entry else ""
            row[f"speed-up b{batch_size}"] = _ratio(_speedup(model, baseline, batch_size))
        row["size gzip"] = _kibibytes(model.size.gzip_bytes if model.size else None)
        row["smaller"] = _ratio(_compression(model, baseline))
        row["peak RSS"] = _mebibytes(model.memory.peak_rss_bytes if model.memory else None)
        row["best"] = ", ".join(marks[model.name])
        rows.append(row)
    return pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)


def recommendations(run: RunResult) -> list[str]:
    """List the fastest, smallest and leanest variants among those that keep accuracy."""
    baseline = run.model(BASELINE)
    if baseline is None or not baseline.ok:
        return ["No recommendation: the baseline was not measured."]
    keeping = [
        model for model in run.models
        if model.ok and (points := _points(model, baseline)) is not None and points >= -ACCURACY_TOLERANCE_POINTS
    ]
    lines = []
    for batch_size in _batch_sizes(run):
        timed = [model for model in keeping if model.latency_for(batch_size)]
        if timed:
            best = min(timed, key=lambda model: model.latency_for(batch_size).p50_ms)
            lines.append(
                f"Fastest at batch {batch_size} within {ACCURACY_TOLERANCE_POINTS:g} point of the baseline's "
                f"accuracy: **{best.name}**, p50 {best.latency_for(batch_size).p50_ms:.3f} ms "
                f"({_ratio(_speedup(best, baseline, batch_size))} the baseline, "
                f"{_points(best, baseline):+.2f} pt)."
            )
    sized = [model for model in keeping if model.size]
    if sized:
        best = min(sized, key=lambda model: model.size.gzip_bytes)
        if best.name == BASELINE:
            lines.append(f"No variant within {ACCURACY_TOLERANCE_POINTS:g} point is smaller than the baseline.")
        else:
            lines.append(
                f"Smallest within {ACCURACY_TOLERANCE_POINTS:g} point: **{best.name}**, "
                f"{_kibibytes(best.size.gzip_bytes)} gzip ({_ratio(_compression(best, baseline))} smaller, "
                f"{_points(best, baseline):+.2f} pt)."
            )
    light = [model for model in keeping if model.memory]
    if light:
        best = min(light, key=lambda model: model.memory.peak_rss_bytes)
        lines.append(
            f"Least memory within {ACCURACY_TOLERANCE_POINTS:g} point: **{best.name}**, "
            f"peak RSS {_mebibytes(best.memory.peak_rss_bytes)}."
        )
    return lines


def warnings(run: RunResult) -> list[str]:
    """Slower-than-baseline variants and noisy or short measurements, with what to do."""
    baseline = run.model(BASELINE)
    lines = []
    for model in run.models:
        if model.accuracy and model.accuracy.at_chance:
            lines.append(
                f"{model.name} classifies no better than chance (balanced accuracy "
                f"{model.accuracy.balanced_accuracy:.2f} on {model.accuracy.examples} test texts); "
                "its accuracy comparisons mean nothing. Use more data or more training epochs."
            )
        for entry in model.latency:
            speedup = _speedup(model, baseline, entry.batch_size)
            if model.name != BASELINE and speedup is not None and speedup < 1 / (1 + SLOWER_MARGIN):
                lines.append(
                    f"{model.name} is slower than the baseline at batch {entry.batch_size} "
                    f"({entry.p50_ms:.3f} ms against {baseline.latency_for(entry.batch_size).p50_ms:.3f} ms p50)."
                )
            spread = robust_spread(entry.samples_s)
            if spread > NOISY_SPREAD:
                lines.append(
                    f"{model.name} batch {entry.batch_size}: timings vary a lot (interquartile range "
                    f"{100 * spread:.0f}% of the median); close other programs or raise --min-duration-s."
                )
            if entry.count < FEW_CALLS:
                lines.append(
                    f"{model.name} batch {entry.batch_size}: only {entry.count} timed calls; raise --min-calls "
                    "for figures to compare."
                )
    return lines


def latency_table(run: RunResult) -> str:
    rows = []
    for model in run.models:
        for entry in model.latency:
            rows.append({
                "variant": model.name,
                "batch": entry.batch_size,
                "processes": entry.process_count,
                "calls": entry.count,
                "p10 (ms)": f"{entry.percentile_ms(10):.3f}",
                "p50 (ms)": f"{entry.p50_ms:.3f}",
                "p90 (ms)": f"{entry.p90_ms:.3f}",
                "p99 (ms)": f"{entry.p99_ms:.3f}",
                "mean (ms)": f"{entry.mean_ms:.3f}",
                "stdev (ms)": f"{entry.stdev_ms:.3f}",
                "throughput (/s)": f"{entry.throughput_per_s:,.0f}",
                "first call (ms)": f"{1000 * entry.first_call_s:.1f}",
            })
    return pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True) if rows else "No latency was measured."


def cost_table(run: RunResult) -> str:
    rows = []
    for model in run.models:
        rows.append({
            "variant": model.name,
            "runtime": model.runtime or "",
            "build (s)": "" if model.build_time_s is None else f"{model.build_time_s:.1f}",
            "load (s)": "" if model.load_time_s is None else f"{model.load_time_s:.3f}",
            "load RSS increase": _mebibytes(model.memory.load_increase_bytes if model.memory else None),
            "peak RSS": _mebibytes(model.memory.peak_rss_bytes if model.memory else None),
            "size raw": _kibibytes(model.size.raw_bytes if model.size else None),
            "size gzip": _kibibytes(model.size.gzip_bytes if model.size else None),
            "balanced acc": f"{model.accuracy.balanced_accuracy:.4f}" if model.accuracy else "",
        })
    return pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)


def _detail_text(value: Any, nested: bool = False) -> str:
    """Render a variant detail; tables such as per-kernel sparsity become ``key=value`` lists.

    Tables and lists inside another one are put in parentheses, so that their
    commas do not run into the outer list's.
    """
    if isinstance(value, (dict, list, tuple)):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        parts = [
            (f"{key}={_detail_text(item, True)}" if isinstance(value, dict) else _detail_text(item, True))
            for key, item in items
        ]
        text = ", ".join(parts) or "none"
        return f"({text})" if nested and parts else text
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _detail_label(key: str) -> str:
    """Turn a detail's field name into words, with its unit: ``conversion_s`` -> "conversion (s)"."""
    for suffix, unit in (("_s", "s"), ("_bytes", "bytes")):
        if key.endswith(suffix):
            return f"{key[: -len(suffix)].replace('_', ' ')} ({unit})"
    return key.replace("_", " ")


def _details(model: ModelResult) -> list[str]:
    lines = [f"### {model.name}", "", f"- family: {model.family}; status: {model.status}"]
    if model.params:
        lines.append("- settings: " + ", ".join(f"{key}={value}" for key, value in model.params.items()))
    for entry in model.latency:
        lines.append(f"- call timed at batch {entry.batch_size}: `{entry.call_path}`")
    for key, value in model.details.items():
        lines.append(f"- {_detail_label(key)}: {_detail_text(value)}")
    lines.extend(f"- note: {note}" for note in model.notes)
    if model.failure:
        lines.append(f"- {model.failure.stage} {model.failure.kind}: {model.failure.message}")
        if model.failure.log_file:
            lines.append(f"- log: `{model.failure.log_file}`")
        if model.failure.log_tail:
            lines += ["", "```", model.failure.log_tail[-3000:], "```"]
    return lines + [""]


def format_report(run: RunResult) -> str:
    env = run.environment
    data = run.data
    lines = [
        f"# Benchmark report {run.run_id}",
        "",
        f"Started {run.started_at}, finished {run.finished_at or 'not yet (interrupted or running)'}. "
        f"{env.cpu_model}, {env.cpu_count_logical} logical cores, device {env.device}, "
        f"TensorFlow {env.packages.get('tensorflow')}, Python {env.python}, "
        f"commit {(env.git_commit or 'unknown')[:12]}{' (modified)' if env.git_dirty else ''}"
        + (f", load average {env.load_average_1m:.2f} at the start." if env.load_average_1m is not None else "."),
    ]
    if data:
        lines += [
            "",
            f"Data: {data.name} ({data.language}), {data.train}/{data.validation}/{data.test} texts for "
            f"train/validation/test after dropping {data.duplicates_dropped} duplicates and "
            f"{data.conflicting_dropped} texts with both labels; {data.tokenizer}; "
            f"{100 * data.truncated_share:.1f}% of training texts truncated. SHA-256 `{data.sha256[:16]}…`.",
        ]
    lines += [
        "",
        "Latency is the steady-state time of one serving call (first call and warm-up excluded), "
        "pooled over the fresh worker processes that timed each variant in rounds; the first call "
        "and the load time are medians over those processes. "
        "Speed-up and size are relative to the baseline served by `tf.function`.",
        "",
        "## Comparison",
        "",
        comparison_table(run),
        "",
        "## Recommendations",
        "",
        *[f"- {line}" for line in recommendations(run)],
        "",
    ]
    notes = warnings(run)
    if notes:
        lines += ["## Warnings", "", *[f"- {line}" for line in notes], ""]
    lines += [
        "## Latency by batch size",
        "",
        latency_table(run),
        "",
        "## Build, load, memory and size",
        "",
        cost_table(run),
        "",
        "## Variants",
        "",
    ]
    for model in run.models:
        lines += _details(model)
    return "\n".join(lines).rstrip() + "\n"
