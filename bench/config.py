"""Suite configuration: what to run and how to measure it, validated before any work."""

from __future__ import annotations

import dataclasses
import difflib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from bench.errors import BenchError
from textcls.variants import VARIANTS, get_variant, resolve_params

DEVICES = ("cpu", "gpu")

# A quick run trains on a slice of the data and times fewer calls: a smoke
# test of the whole path, not a measurement to publish.
QUICK_LIMIT = 2000
DEFAULT_PROCESSES = 10
QUICK_OVERRIDES = {
    "warmup_calls": 3,
    "min_calls": 20,
    "min_duration_s": 0.2,
    "processes": 2,
}
QUICK_BASELINE_PARAMS = {"max_epochs": 8}


@dataclass
class SuiteConfig:
    """One benchmark suite. Every field can be set in a TOML file or on the command line."""

    data: str = field(default="rotten-tomatoes", metadata={"help": "built-in data set name, or a .csv/.jsonl file"})
    text_column: str = field(default="text", metadata={"help": "text column of a user data file"})
    label_column: str = field(default="label", metadata={"help": "label column of a user data file"})
    positive_label: Optional[str] = field(default=None, metadata={"help": "label value meaning positive, when it cannot be guessed"})
    limit: Optional[int] = field(default=None, metadata={"help": "use at most this many texts (sampled with the seed)"})
    vocab_size: Optional[int] = field(default=None, metadata={"help": "vocabulary size including padding and unknown ids (default 10000)"})
    seq_len: Optional[int] = field(default=None, metadata={"help": "tokens per text (default: 95th percentile of training texts)"})
    batch_sizes: list[int] = field(default_factory=lambda: [1, 32], metadata={"help": "batch sizes to time"})
    variants: list[str] = field(default_factory=lambda: list(VARIANTS), metadata={"help": "variants to build and measure"})
    variant_params: dict[str, dict[str, Any]] = field(default_factory=dict, metadata={"help": "per-variant parameters, e.g. {pruned = {target_sparsity = 0.9}}"})
    device: str = field(default="cpu", metadata={"help": "cpu or gpu"})
    threads: Optional[int] = field(default=None, metadata={"help": "threads per runtime (default: the runtime's own)"})
    seed: int = field(default=0, metadata={"help": "seed for sampling, splitting and training"})
    quick: bool = field(default=False, metadata={"help": "smoke run: small data slice, short training, few timed calls"})
    warmup_calls: int = field(default=10, metadata={"help": "calls before timing, not in the statistics"})
    min_calls: int = field(default=50, metadata={"help": "minimum timed calls per batch size"})
    min_duration_s: float = field(default=1.0, metadata={"help": "minimum seconds of timed calls per batch size"})
    max_calls: int = field(default=100_000, metadata={"help": "maximum timed calls per batch size"})
    processes: int = field(default=DEFAULT_PROCESSES, metadata={"help": "fresh worker processes that time each variant, in rounds over the variants"})
    build_timeout_s: float = field(default=3600.0, metadata={"help": "seconds a variant's build may take"})
    measure_timeout_s: float = field(default=900.0, metadata={"help": "seconds a variant's measurement may take"})
    timeouts_s: dict[str, float] = field(default_factory=dict, metadata={"help": "per-variant limit for build and for measurement, overriding the two above"})
    out: str = field(default="reports", metadata={"help": "folder that receives one folder per run"})
    compare: dict[str, Any] = field(default_factory=dict, metadata={"help": "settings for bench compare, e.g. {thresholds = [\"latency.p50:10%\"]}"})

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        _check_types(self)
        if not self.batch_sizes:
            raise BenchError("batch_sizes is empty; give at least one batch size, e.g. --batch-sizes 1,32")
        for size in self.batch_sizes:
            if size < 1:
                raise BenchError(f"batch size {size} is invalid; batch sizes must be 1 or more")
        if len(set(self.batch_sizes)) != len(self.batch_sizes):
            raise BenchError(f"batch_sizes {self.batch_sizes} repeats a value; list each once")

        _check_positive("min_calls", self.min_calls)
        _check_positive("max_calls", self.max_calls)
        _check_positive("processes", self.processes)
        _check_positive("build_timeout_s", self.build_timeout_s)
        _check_positive("measure_timeout_s", self.measure_timeout_s)
        if self.warmup_calls < 0:
            raise BenchError(f"warmup_calls {self.warmup_calls} is invalid; use 0 or more")
        if self.min_duration_s < 0:
            raise BenchError(f"min_duration_s {self.min_duration_s} is invalid; use 0 or more seconds")
        if self.max_calls < self.min_calls:
            raise BenchError(f"max_calls {self.max_calls} is below min_calls {self.min_calls}; raise max_calls")

        if self.threads is not None:
            _check_positive("threads", self.threads)
        if self.limit is not None and self.limit < 1:
            raise BenchError(f"limit {self.limit} is invalid; use a positive number of texts")
        if self.vocab_size is not None and self.vocab_size < 3:
            raise BenchError(f"vocab_size {self.vocab_size} is invalid; it must be at least 3 (padding, unknown and one token)")
        if self.seq_len is not None:
            _check_positive("seq_len", self.seq_len)
        if self.device not in DEVICES:
            raise BenchError(f"device {self.device!r} is unknown; use one of {', '.join(DEVICES)}")

        if not self.variants:
            raise BenchError("no variants selected; name at least one, e.g. --variants baseline")
        for name in [*self.variants, *self.variant_params, *self.timeouts_s]:
            _wrap(get_variant, name)
        for name, overrides in self.variant_params.items():
            if not isinstance(overrides, dict):
                raise BenchError(f"variant_params.{name} must be a table of parameters, got {overrides!r}")
            _wrap(resolve_params, VARIANTS[name], overrides)
        for name, seconds in self.timeouts_s.items():
            if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds <= 0:
                raise BenchError(f"timeouts_s.{name} = {seconds!r} is invalid; give a positive number of seconds")
        self.variants = ordered_with_dependencies(self.variants)

    def params_for(self, variant: str) -> dict[str, Any]:
        overrides = dict(self.variant_params.get(variant, {}))
        if self.quick and variant == "baseline":
            overrides = {**QUICK_BASELINE_PARAMS, **overrides}
        return resolve_params(VARIANTS[variant], overrides)

    def timeout_for(self, variant: str, stage: str) -> float:
        default = self.build_timeout_s if stage == "build" else self.measure_timeout_s
        return float(self.timeouts_s.get(variant, default))

    def timing_values(self) -> dict[str, Any]:
        """Return the fields of bench.timing.TimingPlan for this suite."""
        return {name: getattr(self, name) for name in ("warmup_calls", "min_calls", "min_duration_s", "max_calls")}

    def effective_limit(self) -> Optional[int]:
        if self.limit is not None:
            return self.limit
        return QUICK_LIMIT if self.quick else None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _wrap(function, *arguments):
    try:
        return function(*arguments)
    except ValueError as error:
        raise BenchError(str(error)) from None


def _check_positive(name: str, value: float) -> None:
    if value <= 0:
        raise BenchError(f"{name} {value} is invalid; it must be greater than 0")


def ordered_with_dependencies(names: list[str]) -> list[str]:
    """Put "baseline" first and each variant after the variants it is built from.

    Dependencies that were not selected are added, because the variant
    cannot be built without them.
    """
    ordered: list[str] = ["baseline"]
    for name in names:
        for dependency in VARIANTS[name].depends_on:
            if dependency not in ordered:
                ordered.append(dependency)
        if name not in ordered:
            ordered.append(name)
    return ordered


def _check_types(config: SuiteConfig) -> None:
    hints = {entry.name: entry.type for entry in dataclasses.fields(config)}
    for name, hint in hints.items():
        value = getattr(config, name)
        expected = _expected_types(hint)
        if value is None and hint.startswith("Optional"):
            continue
        if isinstance(value, bool) and bool not in expected:
            raise BenchError(f"{name} must be {_type_text(hint)}, got {value!r}")
        if not isinstance(value, expected):
            raise BenchError(f"{name} must be {_type_text(hint)}, got {value!r} ({type(value).__name__})")
        if name in ("batch_sizes",) and not all(isinstance(item, int) and not isinstance(item, bool) for item in value):
            raise BenchError(f"batch_sizes must be a list of whole numbers, got {value!r}")
        if name == "variants" and not all(isinstance(item, str) for item in value):
            raise BenchError(f"variants must be a list of names, got {value!r}")


def _expected_types(hint: str) -> tuple[type, ...]:
    if hint.startswith("list"):
        return (list,)
    if hint.startswith("dict"):
        return (dict,)
    base = hint.replace("Optional[", "").rstrip("]")
    return {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}[base]


def _type_text(hint: str) -> str:
    if hint.startswith("Optional["):
        return hint.removeprefix("Optional[").removesuffix("]") + " or absent"
    return hint


def field_names() -> list[str]:
    return [entry.name for entry in dataclasses.fields(SuiteConfig)]


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a suite file (TOML or JSON) into a dict of SuiteConfig fields."""
    path = Path(path)
    if not path.exists():
        raise BenchError(f"suite configuration file {path} not found; check the path given to --config")
    if path.is_dir():
        raise BenchError(f"suite configuration {path} is a folder; give a .toml or .json file")
    if path.suffix.lower() not in (".toml", ".json"):
        raise BenchError(
            f"suite configuration {path} has suffix {path.suffix or '(none)'!r}; write it as a .toml or .json file"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BenchError(f"cannot read suite configuration {path}: {error}") from None
    try:
        if path.suffix.lower() == ".json":
            values = json.loads(text)
        else:
            values = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise BenchError(f"suite configuration {path} is not valid {kind}: {error}") from None
    if not isinstance(values, dict):
        raise BenchError(f"suite configuration {path} must be a table of settings")
    check_keys(values, source=str(path))
    return values


def check_keys(values: dict[str, Any], source: str) -> None:
    known = field_names()
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else "."
            raise BenchError(f"unknown setting {key!r} in {source}{hint} Valid settings: {', '.join(known)}")


def make_config(values: dict[str, Any]) -> SuiteConfig:
    """Build a suite from settings; quick mode shortens the timing settings that were not given."""
    check_keys(values, source="the suite configuration")
    if values.get("quick") is True:
        values = {**QUICK_OVERRIDES, **values}
    try:
        return SuiteConfig(**values)
    except TypeError as error:
        raise BenchError(f"invalid suite configuration: {error}") from None
