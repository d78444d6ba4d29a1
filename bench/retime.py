"""Time the artifacts of two runs again, alternating between them: ``bench compare --retime``.

A shared machine's speed drifts: on the 2-core machine measured in
docs/ci.md, within an hour the median call of a Keras model went from 1.3 ms
to 2.9 ms while a LiteRT model got a third faster. Latency stored in a baseline run measured hours earlier then
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
import tempfile
from pathlib import Path
from typing import Optional

from bench.errors import BenchError
from bench.results import RESULTS_FILE, STATUS_FAILED, Failure, RunResult

log = logging.getLogger("bench.retime")

ROLES = ("baseline", "new")
RETIME_FOLDER = "retime"


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
    baseline_path: Path, new_path: Path, baseline: RunResult, new: RunResult,
    processes: Optional[int] = None, seed: int = 0,
) -> tuple[RunResult, RunResult, str]:
    """Re-time every model measured in both runs; return the two runs with the new latency and a summary.

    Each of ``processes`` rounds (default: the new run's ``processes``
    setting) runs one timing-only worker per model and run, in a seeded
    random order within each model's pair. A process that fails marks that
    model failed in its run's copy, with the processes timed so far kept.
    The copies are saved under ``retime/`` in the new run's folder.
    """
    from bench.config import make_config
    from bench.process import run_worker
    from bench.runner import measure_spec, worker_env

    folders = {"baseline": _run_folder(baseline_path, "baseline"), "new": _run_folder(new_path, "new")}
    configs = {"baseline": make_config(dict(baseline.suite)), "new": make_config(dict(new.suite))}
    if processes is None:
        processes = configs["new"].processes
    if processes < 1:
        raise BenchError(f"--processes {processes} is invalid; use 1 or more")
    names = retimed_models(baseline, new)
    out_dir = folders["new"] / RETIME_FOLDER
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)

    # The copies start without latency, and every re-timing process adds to them.
    retimed = {"baseline": copy.deepcopy(baseline), "new": copy.deepcopy(new)}
    for run in retimed.values():
        for name in names:
            model = run.model(name)
            model.latency, model.load_times_s, model.load_time_s = [], [], None
    rng = random.Random(seed)

    with tempfile.TemporaryDirectory(prefix="bench-retime-") as work:
        for round_number in range(1, processes + 1):
            log.info("re-timing round %d/%d: %s", round_number, processes, ", ".join(names))
            for name in names:
                order = list(ROLES)
                rng.shuffle(order)
                for role in order:
                    model = retimed[role].model(name)
                    if model.status == STATUS_FAILED:
                        continue
                    folder, config = folders[role], configs[role]
                    spec = measure_spec(
                        config, name, folder / "artifacts" / name, folder / "data" / "splits.npz",
                        retimed[role].data.seq_len, Path(work) / f"{role}-{name}.json", evaluate=False,
                    )
                    log_path = out_dir / "logs" / f"{role}-{name}.log"
                    outcome = run_worker(
                        spec, Path(work) / f"{role}-{name}.spec.json", log_path,
                        config.timeout_for(name, "measure"), f"{name} re-time, {role} run", worker_env(config.device),
                    )
                    if outcome.result is None:
                        model.status = STATUS_FAILED
                        model.failure = Failure(
                            "measure", outcome.failure_kind or "exception",
                            f"re-timing process {round_number} of {processes} failed: {outcome.message}",
                            outcome.log_tail, str(log_path),
                        )
                        log.warning("%s run, %s: %s", role, name, model.failure.message)
                        continue
                    model.add_timing(outcome.result)

    for role in ROLES:
        retimed[role].save(out_dir / f"{role}.json")
    summary = (
        f"Latency re-timed on this machine in {processes} rounds: each round served every model "
        f"of both runs in one fresh process each, one run after the other in a random order. "
        f"The stored latency was not used. Re-timed results: {out_dir}/baseline.json and new.json."
    )
    return retimed["baseline"], retimed["new"], summary
