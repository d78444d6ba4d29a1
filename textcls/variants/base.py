"""The interface between the benchmark harness and the variant builders.

A builder turns the trained baseline into an artifact on disk and describes
it. The harness calls builders in a separate process (so a converter crash
costs one variant), serves the artifact in another fresh process, and never
looks inside a builder.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ARTIFACT_FILE = "artifact.json"

# Runtimes that textcls.serving can load.
RUNTIMES = ("keras", "keras-xla", "litert")


class VariantUnsupported(Exception):
    """Raised by a builder when the variant cannot be built for this model.

    The harness records the variant as unsupported, with this message as the
    reason, instead of as a crash.
    """


@dataclass(frozen=True)
class Splits:
    """Token ids (int32, shape [n, seq_len]) and binary labels (int32, [n])."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @classmethod
    def load(cls, path: Path) -> "Splits":
        with np.load(path) as arrays:
            return cls(**{name: arrays[name] for name in cls.__dataclass_fields__})

    def save(self, path: Path) -> None:
        np.savez_compressed(path, **asdict(self))


@dataclass(frozen=True)
class BuildContext:
    """Everything a builder may read, and the folder it writes to."""

    out_dir: Path  # empty folder that receives the artifact
    splits_path: Path  # Splits saved with Splits.save
    baseline_path: Path  # the trained baseline, native Keras format
    vocab_size: int
    seq_len: int
    batch_sizes: tuple[int, ...]  # the batch sizes that will be measured
    seed: int
    quick: bool  # smoke run: builders may shorten fine-tuning
    # Artifact folders of the variants this one is built from, by name.
    dependency_dirs: dict[str, Path] = field(default_factory=dict)

    def load_splits(self) -> Splits:
        return Splits.load(self.splits_path)


@dataclass
class Artifact:
    """A built variant, as the serving side needs it.

    ``model_file`` serves every batch size unless ``files_by_batch`` names
    another file for a batch size (LiteRT models with a fixed input shape).
    Model size is measured on ``model_file`` alone. Paths are relative to
    the artifact folder.
    """

    runtime: str
    model_file: str
    files_by_batch: dict[int, str] = field(default_factory=dict)
    # Facts for the report: sparsity per kernel, weight types, converter flags.
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise ValueError(
                f"unknown runtime {self.runtime!r}; expected one of {', '.join(RUNTIMES)}"
            )

    def file_for_batch(self, batch_size: int) -> str:
        return self.files_by_batch.get(batch_size, self.model_file)

    def save(self, folder: Path) -> None:
        payload = asdict(self)
        payload["files_by_batch"] = {str(k): v for k, v in self.files_by_batch.items()}
        (folder / ARTIFACT_FILE).write_text(json.dumps(payload, indent=2, default=str))

    @classmethod
    def load(cls, folder: Path) -> "Artifact":
        payload = json.loads((folder / ARTIFACT_FILE).read_text())
        payload["files_by_batch"] = {int(k): v for k, v in payload["files_by_batch"].items()}
        return cls(**payload)
