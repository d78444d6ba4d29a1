"""The flat table of a run: one row per model and batch size."""

from __future__ import annotations

import pandas as pd

from bench.results import ModelResult, RunResult

COLUMNS = [
    "run_id", "model", "family", "status", "runtime", "device", "batch_size",
    "p10_ms", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "stdev_ms", "min_ms", "max_ms", "calls", "processes",
    "throughput_per_s", "first_call_s", "load_time_s", "build_time_s",
    "accuracy", "f1", "balanced_accuracy", "size_raw_bytes", "size_gzip_bytes",
    "peak_rss_bytes", "load_increase_bytes", "gpu_peak_bytes", "call_path", "failure",
]

INTEGER_COLUMNS = [
    "batch_size", "calls", "processes", "size_raw_bytes", "size_gzip_bytes",
    "peak_rss_bytes", "load_increase_bytes", "gpu_peak_bytes",
]


def failure_text(model: ModelResult) -> str:
    if model.failure is None:
        return ""
    return f"{model.failure.stage} {model.failure.kind}: {model.failure.message}"


def _model_columns(run: RunResult, model: ModelResult) -> dict:
    return {
        "run_id": run.run_id,
        "model": model.name,
        "family": model.family,
        "status": model.status,
        "runtime": model.runtime,
        "device": model.device,
        "load_time_s": model.load_time_s,
        "build_time_s": model.build_time_s,
        "accuracy": model.accuracy.accuracy if model.accuracy else None,
        "f1": model.accuracy.f1 if model.accuracy else None,
        "balanced_accuracy": model.accuracy.balanced_accuracy if model.accuracy else None,
        "size_raw_bytes": model.size.raw_bytes if model.size else None,
        "size_gzip_bytes": model.size.gzip_bytes if model.size else None,
        "peak_rss_bytes": model.memory.peak_rss_bytes if model.memory else None,
        "load_increase_bytes": model.memory.load_increase_bytes if model.memory else None,
        "gpu_peak_bytes": model.memory.gpu_peak_bytes if model.memory else None,
        "failure": failure_text(model),
    }


def results_frame(run: RunResult) -> pd.DataFrame:
    """Build one row per model and measured batch size, and one row for a model without latency."""
    rows = []
    for model in run.models:
        shared = _model_columns(run, model)
        if not model.latency:
            rows.append(shared)
        for entry in model.latency:
            rows.append(
                {
                    **shared,
                    "batch_size": entry.batch_size,
                    "p10_ms": entry.percentile_ms(10),
                    "p50_ms": entry.p50_ms,
                    "p90_ms": entry.p90_ms,
                    "p99_ms": entry.p99_ms,
                    "mean_ms": entry.mean_ms,
                    "stdev_ms": entry.stdev_ms,
                    "min_ms": entry.min_ms,
                    "max_ms": entry.max_ms,
                    "calls": entry.count,
                    "processes": entry.process_count,
                    "throughput_per_s": entry.throughput_per_s,
                    "first_call_s": entry.first_call_s,
                    "call_path": entry.call_path,
                }
            )
    table = pd.DataFrame(rows, columns=COLUMNS)
    # A row without measurements (an unsupported variant) would turn these
    # columns into floats: 1.0 for batch size 1.
    return table.astype({name: "Int64" for name in INTEGER_COLUMNS})
