"""Find the artifacts of a finished run, so that each variant and batch size gets a benchmark.

The run folder is ``$BENCH_RUN_DIR`` or, without it, ``reports/latest``.
Without a finished run every benchmark is skipped with the reason, so
``pytest tests/perf`` on a fresh checkout reports skips, not errors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

from bench.results import RESULTS_FILE, ResultsError, RunResult
from textcls.variants.base import ARTIFACT_FILE

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN_DIR_VARIABLE = "BENCH_RUN_DIR"


@dataclass(frozen=True)
class ServingCase:
    """One variant at one batch size, as the run measured it."""

    run_dir: Path
    run_id: str
    variant: str
    batch_size: int
    threads: Optional[int]  # None: the runtime's default
    warmup_calls: int

    @property
    def artifact_dir(self) -> Path:
        return self.run_dir / "artifacts" / self.variant

    @property
    def test_id(self) -> str:
        return f"{self.variant}-b{self.batch_size}"


def run_dir() -> Path:
    configured = os.environ.get(RUN_DIR_VARIABLE)
    return Path(configured) if configured else REPO_ROOT / "reports" / "latest"


def discover_cases() -> tuple[list[ServingCase], list[tuple[str, str]]]:
    """Return the cases to benchmark, and (id, reason) for each case or run that is skipped."""
    folder = run_dir()
    source = f"${RUN_DIR_VARIABLE}" if os.environ.get(RUN_DIR_VARIABLE) else "the default"
    if not (folder / RESULTS_FILE).is_file():
        return [], [(
            "no-run",
            f"no finished run at {folder} ({source}); run `bench run` first, or set "
            f"{RUN_DIR_VARIABLE} to a run folder",
        )]
    try:
        run = RunResult.load(folder)
    except ResultsError as error:
        return [], [("no-run", f"cannot read the run at {folder}: {error}")]

    warmup_calls = int(run.suite.get("warmup_calls", 10))
    cases, skipped = [], []
    for model in run.models:
        batch_sizes = [entry.batch_size for entry in model.latency] or list(run.suite.get("batch_sizes", []))
        for batch_size in batch_sizes:
            case = ServingCase(folder, run.run_id, model.name, batch_size, model.threads, warmup_calls)
            if not model.ok:
                skipped.append((case.test_id, f"{model.name} is {model.status} in run {run.run_id}"))
            elif not (case.artifact_dir / ARTIFACT_FILE).is_file():
                skipped.append((case.test_id, f"no {ARTIFACT_FILE} in {case.artifact_dir}"))
            else:
                cases.append(case)
    return cases, skipped


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "serving_case" not in metafunc.fixturenames:
        return
    cases, skipped = discover_cases()
    parameters = [pytest.param(case, id=case.test_id) for case in cases]
    parameters += [
        pytest.param(None, id=test_id, marks=pytest.mark.skip(reason=reason))
        for test_id, reason in skipped
    ]
    metafunc.parametrize("serving_case", parameters)
