"""The result record of a benchmark run, and its JSON form.

Every consumer (reports, ``bench compare``, resume) reads a run through
``RunResult.load``. Units are in the field names: ``_s`` seconds, ``_ms``
milliseconds, ``_bytes`` bytes, ``_per_s`` samples per second. Raw latency
samples are kept so that statistics can be recomputed and compared.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any, Optional

import numpy as np

from bench.stats import summarize, throughput_per_s

SCHEMA_VERSION = 2
# Version 1 lacks the per-process records, which load as empty lists.
READABLE_SCHEMA_VERSIONS = (1, 2)
RESULTS_FILE = "results.json"

# Balanced accuracy of a classifier that guesses, whatever the class balance.
CHANCE_BALANCED_ACCURACY = 0.5

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_UNSUPPORTED = "unsupported"
STATUSES = (STATUS_OK, STATUS_FAILED, STATUS_UNSUPPORTED)


class ResultsError(Exception):
    """A results file that is missing, unreadable or of an unknown format."""


@dataclass
class ProcessTiming:
    """The share of one fresh worker process in a latency record."""

    calls: int  # steady-state calls it timed: the next ``calls`` entries of samples_s
    first_call_s: float  # its first call, including tracing or XLA compilation


@dataclass
class LatencyResult:
    """Serving latency of one model at one batch size, pooled over worker processes."""

    batch_size: int
    call_path: str  # the call that was timed, in words
    first_call_s: float  # median over processes, tracing or compilation included
    warmup_s: list[float]  # warm-up calls of every process, not in the statistics
    samples_s: list[float]  # steady-state calls, process after process, one duration per call
    count: int
    mean_ms: float
    stdev_ms: float
    min_ms: float
    max_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    throughput_per_s: float
    processes: list[ProcessTiming] = field(default_factory=list)  # empty in version 1 files

    @classmethod
    def from_samples(
        cls,
        batch_size: int,
        call_path: str,
        first_call_s: float,
        warmup_s: list[float],
        samples_s: list[float],
    ) -> "LatencyResult":
        """Build the record of a single process's timing."""
        return cls.from_processes(batch_size, call_path, [
            {"first_call_s": first_call_s, "warmup_s": warmup_s, "samples_s": samples_s}
        ])

    @classmethod
    def from_processes(cls, batch_size: int, call_path: str, timings: list[dict]) -> "LatencyResult":
        """Pool the timings of several processes (dicts with first_call_s, warmup_s, samples_s)."""
        if not timings:
            raise ValueError("a latency record needs the timing of at least one process")
        samples_s = [value for timing in timings for value in timing["samples_s"]]
        summary = summarize(samples_s)
        return cls(
            batch_size=batch_size,
            call_path=call_path,
            first_call_s=float(median([timing["first_call_s"] for timing in timings])),
            warmup_s=[value for timing in timings for value in timing["warmup_s"]],
            samples_s=samples_s,
            throughput_per_s=throughput_per_s(batch_size, summary.mean_ms),
            processes=[ProcessTiming(len(timing["samples_s"]), timing["first_call_s"]) for timing in timings],
            **dataclasses.asdict(summary),
        )

    @property
    def process_count(self) -> int:
        """Return how many worker processes the calls come from (a version 1 record counts one)."""
        return len(self.processes) or 1

    def percentile_ms(self, percent: float) -> float:
        """Return a percentile of the raw samples in milliseconds, as ``summarize`` computes them."""
        return float(np.percentile(np.asarray(self.samples_s, dtype=np.float64), percent) * 1000.0)

    def process_timings(self) -> list[dict]:
        """Split the record back into per-process timings, as ``from_processes`` takes them.

        Warm-up calls are split evenly, since every process made the same number.
        A version 1 record counts as one process.
        """
        if not self.processes:
            return [{"first_call_s": self.first_call_s, "warmup_s": self.warmup_s, "samples_s": self.samples_s}]
        warmup_each = len(self.warmup_s) // len(self.processes)
        timings, start = [], 0
        for index, process in enumerate(self.processes):
            timings.append({
                "first_call_s": process.first_call_s,
                "warmup_s": self.warmup_s[index * warmup_each : (index + 1) * warmup_each],
                "samples_s": self.samples_s[start : start + process.calls],
            })
            start += process.calls
        return timings

    def add_process(self, timing: dict) -> "LatencyResult":
        """Return this record with one more process's timing pooled in."""
        return LatencyResult.from_processes(self.batch_size, self.call_path, [*self.process_timings(), timing])


@dataclass
class SizeResult:
    file: str  # path relative to the run folder
    raw_bytes: int
    gzip_bytes: int  # gzip level 9 of the file's bytes


@dataclass
class AccuracyResult:
    """Metrics on the held-out test split."""

    accuracy: float
    f1: float
    balanced_accuracy: float
    examples: int

    @property
    def at_chance(self) -> bool:
        """Whether the model classifies no better than guessing, so that its changes are noise."""
        return self.balanced_accuracy <= CHANCE_BALANCED_ACCURACY


@dataclass
class MemoryResult:
    """Resident memory of the worker process that served the model."""

    rss_before_load_bytes: int
    rss_after_load_bytes: int
    load_increase_bytes: int
    peak_rss_bytes: int  # sampled over load, evaluation and timing
    gpu_peak_bytes: Optional[int] = None  # TensorFlow's GPU allocator peak, GPU runs only


@dataclass
class Failure:
    stage: str  # "build" or "measure"
    kind: str  # "exception", "signal", "timeout", "unsupported", "dependency", "interrupted"
    message: str
    log_tail: str = ""
    log_file: Optional[str] = None


@dataclass
class ModelResult:
    """Everything measured about one variant."""

    name: str
    family: str
    status: str
    params: dict[str, Any] = field(default_factory=dict)
    runtime: Optional[str] = None
    device: Optional[str] = None
    threads: Optional[int] = None  # None: the runtime's default
    build_time_s: Optional[float] = None
    load_time_s: Optional[float] = None  # median of load_times_s
    load_times_s: list[float] = field(default_factory=list)  # one per measuring process
    size: Optional[SizeResult] = None
    accuracy: Optional[AccuracyResult] = None
    memory: Optional[MemoryResult] = None
    latency: list[LatencyResult] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    failure: Optional[Failure] = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def processes_measured(self) -> int:
        """How many worker processes timed this model (a version 1 record counts one)."""
        return len(self.load_times_s) or (1 if self.latency else 0)

    def add_timing(self, measured: dict) -> None:
        """Pool one more measuring process into this record.

        ``measured`` is a measuring worker's result: its load time and one
        latency entry per batch size. The first process starts the latency
        records, and later ones must time the same batch sizes.
        """
        self.load_times_s.append(measured["load_time_s"])
        self.load_time_s = median(self.load_times_s)
        timings = {entry["batch_size"]: entry for entry in measured["latency"]}
        if not self.latency:
            self.latency = [
                LatencyResult.from_processes(size, entry["call_path"], [entry]) for size, entry in timings.items()
            ]
        else:
            self.latency = [entry.add_process(timings[entry.batch_size]) for entry in self.latency]

    def latency_for(self, batch_size: int) -> Optional[LatencyResult]:
        return next((entry for entry in self.latency if entry.batch_size == batch_size), None)


@dataclass
class DataInfo:
    """Provenance of the data: source file, checksum, cleaning, split and tokenization."""

    name: str
    source: str  # file the texts were read from
    sha256: str  # of that file
    language: str
    tokenizer: str
    rows_read: int
    duplicates_dropped: int
    conflicting_dropped: int  # texts that occurred with both labels
    train: int
    validation: int
    test: int
    positive_share: float  # share of label 1 in the whole cleaned set
    vocab_size: int
    seq_len: int
    truncated_share: float  # share of training texts longer than seq_len


@dataclass
class Environment:
    cpu_model: str
    cpu_count_logical: int
    cpu_count_physical: Optional[int]
    memory_total_bytes: int
    os: str
    python: str
    packages: dict[str, Optional[str]]  # distribution name -> version, None if absent
    device: str
    gpus: list[str]
    git_commit: Optional[str]
    git_dirty: Optional[bool]
    hostname: str
    command_line: list[str]
    thread_settings: dict[str, Any]
    # Runnable processes averaged over the minute before the run started: a
    # value near or above the core count means the figures were measured on
    # a busy machine.
    load_average_1m: Optional[float] = None


@dataclass
class RunResult:
    run_id: str
    started_at: str  # ISO 8601, UTC
    environment: Environment
    suite: dict[str, Any]  # the resolved suite configuration
    data: Optional[DataInfo] = None
    models: list[ModelResult] = field(default_factory=list)
    finished_at: Optional[str] = None
    tool_version: str = ""
    schema_version: int = SCHEMA_VERSION

    def model(self, name: str) -> Optional[ModelResult]:
        return next((entry for entry in self.models if entry.name == name), None)

    def put_model(self, result: ModelResult) -> None:
        """Add ``result``, replacing an earlier record of the same model."""
        self.models = [entry for entry in self.models if entry.name != result.name]
        self.models.append(result)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        """Write atomically, so an interrupted write never leaves a broken file."""
        path = Path(path)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=True) + "\n")
        os.replace(temporary, path)

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> "RunResult":
        version = payload.get("schema_version")
        if version not in READABLE_SCHEMA_VERSIONS or isinstance(version, bool):
            raise ResultsError(
                f"results schema version {version!r} is not supported; this tool reads "
                f"versions {', '.join(map(str, READABLE_SCHEMA_VERSIONS))}. Re-run the suite with this version of the tool."
            )
        return _build(cls, payload)

    @classmethod
    def load(cls, path: Path) -> "RunResult":
        """Read a results file, or the results file inside a run folder."""
        path = Path(path)
        if path.is_dir():
            path = path / RESULTS_FILE
        if not path.exists():
            raise ResultsError(f"results file not found: {path}")
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ResultsError(f"cannot read results file {path}: {error}") from error
        if not isinstance(payload, dict):
            raise ResultsError(f"{path} does not contain a results object")
        try:
            return cls.from_dict(payload)
        except (TypeError, KeyError, ValueError) as error:
            raise ResultsError(f"{path} is not a valid results file: {error}") from error


def _build(kind: Any, value: Any) -> Any:
    """Construct ``kind`` (a dataclass, list, dict or Optional of them) from JSON data."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        arguments = [argument for argument in typing.get_args(kind) if argument is not type(None)]
        return None if value is None else _build(arguments[0], value)
    if origin is list:
        (item,) = typing.get_args(kind)
        return [_build(item, element) for element in value]
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise TypeError(f"{kind.__name__} must be an object, got {type(value).__name__}")
        hints = typing.get_type_hints(kind)
        known = {entry.name for entry in dataclasses.fields(kind)}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"unknown fields in {kind.__name__}: {', '.join(sorted(unknown))}")
        return kind(**{name: _build(hints[name], element) for name, element in value.items()})
    return value
