"""Builders of result records with fixed, hand-checkable values.

Every value is deterministic (no clock, host or package look-up), so reports
rendered from these records can be compared with golden files.
"""

from __future__ import annotations

from typing import Optional

from bench.results import (
    STATUS_FAILED,
    STATUS_OK,
    STATUS_UNSUPPORTED,
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

# Enough steady-state calls that the report does not flag them as too few.
DEFAULT_CALLS = 40


def make_environment(**overrides) -> Environment:
    values = dict(
        cpu_model="Test CPU 3000",
        cpu_count_logical=8,
        cpu_count_physical=4,
        memory_total_bytes=16 * 2**30,
        os="Linux-test",
        python="3.11.9",
        packages={"tensorflow": "2.21.0", "numpy": "2.4.6", "ai-edge-litert": None},
        device="cpu",
        gpus=[],
        git_commit="0123456789abcdef0123456789abcdef01234567",
        git_dirty=False,
        hostname="test-host",
        command_line=["bench", "run"],
        thread_settings={"threads_option": None, "OMP_NUM_THREADS": None},
    )
    values.update(overrides)
    return Environment(**values)


def make_data_info(**overrides) -> DataInfo:
    values = dict(
        name="rotten-tomatoes",
        source="/data/rotten_tomatoes_corpus_full.csv.bz2",
        sha256="ab" * 32,
        language="en",
        tokenizer="lowercase words, vocabulary 10000, length 34",
        rows_read=13905,
        duplicates_dropped=56,
        conflicting_dropped=0,
        train=10202,
        validation=1275,
        test=1275,
        positive_share=0.58,
        vocab_size=10000,
        seq_len=34,
        truncated_share=0.047,
    )
    values.update(overrides)
    return DataInfo(**values)


def make_latency(batch_size: int, p50_ms: float, calls: int = DEFAULT_CALLS, first_call_s: float = 0.5) -> LatencyResult:
    """Build a latency record whose samples all equal ``p50_ms``, so every percentile and the mean equal it."""
    samples_s = [p50_ms / 1000.0] * calls
    return LatencyResult.from_samples(
        batch_size=batch_size,
        call_path="serve(x)",
        first_call_s=first_call_s,
        warmup_s=[p50_ms / 1000.0] * 3,
        samples_s=samples_s,
    )


def make_model(
    name: str,
    *,
    family: Optional[str] = None,
    status: str = STATUS_OK,
    runtime: str = "keras",
    p50_ms: Optional[dict[int, float]] = None,
    gzip_bytes: int = 400 * 1024,
    accuracy: float = 0.80,
    peak_rss_bytes: int = 300 * 2**20,
    failure: Optional[Failure] = None,
) -> ModelResult:
    """Build a model record. A failed or unsupported record has no measurements.

    ``p50_ms`` maps batch size to the steady-state latency in milliseconds
    (default: 4 ms at batch 1 and 20 ms at batch 32).
    """
    if status != STATUS_OK:
        if failure is None:
            kind = "unsupported" if status == STATUS_UNSUPPORTED else "exception"
            failure = Failure(stage="build", kind=kind, message=f"{name} could not be built")
        return ModelResult(name=name, family=family or name, status=status, device="cpu", failure=failure)

    if p50_ms is None:
        p50_ms = {1: 4.0, 32: 20.0}
    return ModelResult(
        name=name,
        family=family or name,
        status=STATUS_OK,
        params={"seed": 0},
        runtime=runtime,
        device="cpu",
        build_time_s=12.5,
        load_time_s=0.25,
        load_times_s=[0.25],
        size=SizeResult(file=f"artifacts/{name}/model", raw_bytes=2 * gzip_bytes, gzip_bytes=gzip_bytes),
        accuracy=AccuracyResult(accuracy=accuracy, f1=accuracy - 0.01, balanced_accuracy=accuracy - 0.02, examples=1275),
        memory=MemoryResult(
            rss_before_load_bytes=100 * 2**20,
            rss_after_load_bytes=200 * 2**20,
            load_increase_bytes=100 * 2**20,
            peak_rss_bytes=peak_rss_bytes,
        ),
        latency=[make_latency(batch_size, value) for batch_size, value in p50_ms.items()],
    )


def make_failed(name: str, message: str = "converter crashed", stage: str = "build") -> ModelResult:
    failure = Failure(stage=stage, kind="exception", message=message, log_tail="Traceback ...", log_file=f"logs/{name}.log")
    return make_model(name, status=STATUS_FAILED, failure=failure)


def make_unsupported(name: str, reason: str = "not supported for a GRU") -> ModelResult:
    return make_model(name, status=STATUS_UNSUPPORTED, failure=Failure(stage="build", kind="unsupported", message=reason))


def make_run(models: Optional[list[ModelResult]] = None, batch_sizes: tuple[int, ...] = (1, 32), **overrides) -> RunResult:
    """Build a finished run. By default it contains only a measured baseline."""
    values = dict(
        run_id="20250101-120000-rotten-tomatoes",
        started_at="2025-01-01T12:00:00+00:00",
        finished_at="2025-01-01T12:30:00+00:00",
        environment=make_environment(),
        suite={"batch_sizes": list(batch_sizes), "device": "cpu", "seed": 0},
        data=make_data_info(),
        models=models if models is not None else [make_model("baseline")],
        tool_version="0.1.0",
    )
    values.update(overrides)
    return RunResult(**values)
