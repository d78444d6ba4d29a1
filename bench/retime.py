"""Time the artifacts of two runs again, alternating between them: ``bench compare --retime`` and ``--confirm``.

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

from bench.compare import (
    ComparisonReport,
    compare_models,
    confirm_rows,
    timing_regressions,
    unchecked_regressions,
)
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
            f"--retime and --confirm need the {role} run's folder with its artifacts, but {folder} has no "
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


def check_run_folders(baseline_path: Path, new_path: Path) -> None:
    """Raise BenchError unless both runs' folders have what re-timing serves."""
    _run_folder(baseline_path, "baseline")
    _run_folder(new_path, "new")


def retime_runs(
    baseline_path: Path, new_path: Path, baseline: RunResult, new: RunResult,
    processes: Optional[int] = None, seed: int = 0,
    models: Optional[list[str]] = None, prefix: str = "",
) -> tuple[RunResult, RunResult, str]:
    """Re-time models measured in both runs; return the two runs with the new latency and a summary.

    The summary is a sentence fragment that starts with "in N rounds" and
    goes on with sentences on the method and the result files.

    ``models`` limits the re-timing to those names (default: every model
    that both runs measured). Each of ``processes`` rounds (default: the new
    run's ``processes`` setting, at least 10) runs one timing-only worker per model and
    run, in a seeded random order within each model's pair. A process that
    fails marks that model failed in its run's copy, with the processes
    timed so far kept. The copies are saved under ``retime/`` in the new
    run's folder, as ``{prefix}baseline.json`` and ``{prefix}new.json``.
    """
    from bench.config import DEFAULT_PROCESSES, make_config
    from bench.process import run_worker
    from bench.runner import measure_spec, worker_env

    folders = {"baseline": _run_folder(baseline_path, "baseline"), "new": _run_folder(new_path, "new")}
    configs = {"baseline": make_config(dict(baseline.suite)), "new": make_config(dict(new.suite))}
    if processes is None:
        # A quick run's 2 processes give the p1 test too few calls to decide.
        processes = max(configs["new"].processes, DEFAULT_PROCESSES)
    if processes < 1:
        raise BenchError(f"--processes {processes} is invalid; use 1 or more")
    names = [name for name in retimed_models(baseline, new) if models is None or name in models]
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
                    log_path = out_dir / "logs" / f"{prefix}{role}-{name}.log"
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
        retimed[role].save(out_dir / f"{prefix}{role}.json")
    plural = "s" if processes != 1 else ""
    summary = (
        f"in {processes} round{plural}. Each round served {'every model' if models is None else ', '.join(names)} "
        "of both runs in one fresh process each, one run after the other in a random order. "
        f"Results: {out_dir}/{prefix}baseline.json and {prefix}new.json."
    )
    return retimed["baseline"], retimed["new"], summary


def confirm_regressions(
    report: ComparisonReport, baseline_path: Path, new_path: Path,
    processes: Optional[int] = None, seed: int = 1,
) -> ComparisonReport:
    """Re-time the models with a regressed latency row, and keep only the regressions that repeat.

    On a shared machine a few percent of comparisons of equal models show a
    significant latency regression by chance, because more of one run's
    processes happened to run in a slow state. A second, independent
    re-timing repeats such a chance result rarely but a real slowdown nearly
    always. Requiring both therefore cuts false alarms and keeps detection,
    as measured in docs/ci.md. It costs time only when a row regressed.
    """
    suspects = timing_regressions(report.rows)
    names = list(dict.fromkeys(row.model for row in suspects))
    if not names:
        report.notes.append("No latency row regressed, so none needed confirming.")
        return report
    log.info("confirming %d regressed latency rows by re-timing %s", len(suspects), ", ".join(names))
    baseline, new, summary = retime_runs(
        baseline_path, new_path, report.baseline, report.new, processes, seed, names, "confirm-",
    )
    checks, failed = [], {}
    for name in names:
        for role, run in (("baseline", baseline), ("new", new)):
            model = run.model(name)
            if not model.ok:
                failed[name] = f"re-timing the {role} run's model failed ({model.failure.message})"
        if name not in failed:
            checks += compare_models(baseline.model(name), new.model(name), report.thresholds, report.alpha)
    report.rows = confirm_rows(report.rows, checks, failed)
    undecided = len(unchecked_regressions(report.rows))
    confirmed_count = len(timing_regressions(report.rows)) - undecided
    text = (
        f"Regressed latency rows were checked: their models were re-timed again {summary} "
        f"A row stays regressed only when the check regressed too, which {confirmed_count} of "
        f"{len(suspects)} did."
    )
    if undecided:
        text += f" {undecided} more count as regressed because their check failed or could not decide."
    report.notes.append(text)
    return report
