"""Time the artifacts of two runs again, alternating between them: ``bench compare --retime``.

A shared machine's speed drifts: over tens of minutes another tenant can
make every call of a Keras model half as slow again, or a LiteRT model a
third faster. Latency stored in a baseline run measured hours earlier then
differs from the new run's by more than most regressions. Re-timing both
runs' artifacts in the same rounds, one fresh process of each run after the
other in a random order, exposes both to the same machine, so their
difference is the models' own.

Re-timing serves both runs' artifacts with this checkout's runtimes. It
compares models, not runtimes: a change of TensorFlow or LiteRT shows only
in the stored latency.
"""

from __future__ import annotations

import copy
import logging
import random
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import BenchError
from bench.results import RESULTS_FILE, STATUS_FAILED, Failure, LatencyResult, ModelResult, RunResult

log = logging.getLogger("bench.retime")

ROLES = ("baseline", "new")
RETIME_FOLDER = "retime"


@dataclass
class _Timings:
    """What the re-timing processes of one model of one run measured."""

    load_times_s: list[float] = field(default_factory=list)
    by_batch: dict[int, list[dict]] = field(default_factory=dict)
    call_paths: dict[int, str] = field(default_factory=dict)
    failure: Failure | None = None


def _run_folder(path: Path, role: str) -> Path:
    folder = path if path.is_dir() else path.parent
    missing = [name for name in ("artifacts", "data/splits.npz", RESULTS_FILE) if not (folder / name).exists()]
    if missing:
        raise BenchError(
            f"--retime needs the {role} run's folder with its artifacts, but {folder} has no "
            f"{' and no '.join(missing)}. Keep the whole run folder (results.json, artifacts/ and "
            "data/), not only results.json; in CI, cache the folder that bench run wrote."
        )
    return folder


def retimed_models(baseline: RunResult, new: RunResult) -> list[str]:
    """Return the models that both runs measured, in the new run's order."""
    return [
        model.name for model in new.models
        if model.ok and (previous := baseline.model(model.name)) is not None and previous.ok
    ]


def retime_runs(
    baseline_path: Path, new_path: Path, baseline: RunResult, new: RunResult, processes: int, seed: int = 0,
) -> tuple[RunResult, RunResult, str]:
    """Re-time every model measured in both runs; return the two runs with the new latency and a summary.

    Each of ``processes`` rounds runs one timing-only worker per model and
    run, in a seeded random order within each model's pair. A process that
    fails marks that model failed in its run's copy, with the processes
    timed so far kept. The copies are saved under ``retime/`` in the new
    run's folder.
    """
    from bench.config import make_config
    from bench.process import run_worker
    from bench.runner import measure_spec, worker_env

    if processes < 1:
        raise BenchError(f"--processes {processes} is invalid; use 1 or more")
    folders = {"baseline": _run_folder(baseline_path, "baseline"), "new": _run_folder(new_path, "new")}
    runs = {"baseline": baseline, "new": new}
    configs = {role: make_config(dict(run.suite)) for role, run in runs.items()}
    names = retimed_models(baseline, new)
    out_dir = folders["new"] / RETIME_FOLDER
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    timings = {(role, name): _Timings() for role in ROLES for name in names}
    rng = random.Random(seed)

    with tempfile.TemporaryDirectory(prefix="bench-retime-") as work:
        for round_number in range(1, processes + 1):
            log.info("re-timing round %d/%d: %s", round_number, processes, ", ".join(names))
            for name in names:
                order = list(ROLES)
                rng.shuffle(order)
                for role in order:
                    record = timings[(role, name)]
                    if record.failure is not None:
                        continue
                    run, folder, config = runs[role], folders[role], configs[role]
                    spec = measure_spec(
                        config, name, folder / "artifacts" / name, folder / "data" / "splits.npz",
                        run.data.seq_len, Path(work) / f"{role}-{name}.json", evaluate=False,
                    )
                    log_path = out_dir / "logs" / f"{role}-{name}.log"
                    outcome = run_worker(
                        spec, Path(work) / f"{role}-{name}.spec.json", log_path,
                        config.timeout_for(name, "measure"), f"{name} re-time, {role} run", worker_env(config.device),
                    )
                    if outcome.result is None:
                        record.failure = Failure(
                            "measure", outcome.failure_kind or "exception",
                            f"re-timing process {round_number} of {processes} failed: {outcome.message}",
                            outcome.log_tail, str(log_path),
                        )
                        log.warning("%s run, %s: %s", role, name, record.failure.message)
                        continue
                    record.load_times_s.append(outcome.result["load_time_s"])
                    for entry in outcome.result["latency"]:
                        record.call_paths[entry["batch_size"]] = entry["call_path"]
                        record.by_batch.setdefault(entry["batch_size"], []).append(entry)

    retimed = {role: copy.deepcopy(run) for role, run in runs.items()}
    for (role, name), record in timings.items():
        _apply(retimed[role].model(name), record)
    for role in ROLES:
        retimed[role].save(out_dir / f"{role}.json")
    summary = (
        f"Latency re-timed on this machine in {processes} rounds: each round served every model "
        f"of both runs in one fresh process each, one run after the other in a random order. "
        f"The stored latency was not used. Re-timed results: {out_dir}/baseline.json and new.json."
    )
    return retimed["baseline"], retimed["new"], summary


def _apply(model: ModelResult, record: _Timings) -> None:
    if record.by_batch:
        model.latency = [
            LatencyResult.from_processes(batch_size, record.call_paths[batch_size], entries)
            for batch_size, entries in sorted(record.by_batch.items())
        ]
        model.load_times_s = list(record.load_times_s)
        model.load_time_s = statistics.median(record.load_times_s)
    if record.failure is not None:
        model.status = STATUS_FAILED
        model.failure = record.failure
