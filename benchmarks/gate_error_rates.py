"""Measure the error rates of the ``bench compare`` latency gate on this machine.

The script serves one built artifact of a finished run in many fresh worker
processes. Each worker runs the harness's own measurement (``bench.worker``
with the run's timing plan). Pairs of sample sets are then judged by the
decision function of ``bench compare`` (``bench.compare.compare_latency``):

- false alarms: two plain measurements (A/A) that the gate calls regressed;
- detection: a plain measurement against one whose serving call busy-waits
  an extra ``--slowdown`` times the median call (A/B) after each call,
  which the gate should call regressed.

Each round measures A1, A2 and B in a shuffled order, so that drift of the
machine over time hits both kinds of pairs alike. Rates come with exact
(Clopper-Pearson) 95% confidence intervals.

    python benchmarks/gate_error_rates.py reports/latest --rounds 100

``--samples FILE`` saves every sample set after each round, and ``--reuse FILE``
judges saved sets again (for example with other ``--threshold`` values) without
measuring. This is a proof script, not a test. On a 2-core machine a round
of the quick baseline Keras artifact took 23 to 37 s, and calibration takes
three more measurements.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.compare import (  # noqa: E402
    ALPHA,
    METRICS,
    VERDICT_IMPROVED,
    VERDICT_REGRESSED,
    compare_latency,
    resolve_thresholds,
)
from bench.errors import BenchError  # noqa: E402
from bench.results import LatencyResult, ResultsError, RunResult  # noqa: E402
from bench.timing import TimingPlan  # noqa: E402

CALIBRATION_SETS = 3
WORKER_TIMEOUT_S = 600
CONFIDENCE = 0.95


# ---------------------------------------------------------------------------
# The measuring child: the harness's worker, with an optional slowdown


def _busy_wait(seconds: float) -> None:
    """Spin for ``seconds``, because time.sleep would add the scheduler's wake-up delay."""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        pass


class _SlowedPredictor:
    """A predictor that spins for a fixed extra time after every call."""

    def __init__(self, predictor, extra_s: float):
        self._predictor = predictor
        self._extra_s = extra_s
        self.call_path = f"{predictor.call_path} + {extra_s * 1e6:.0f} µs busy wait"

    def __call__(self, token_ids):
        output = self._predictor(token_ids)
        _busy_wait(self._extra_s)
        return output


def run_child(spec_path: str, extra_s_by_batch: dict[int, float]) -> int:
    """Run ``bench.worker`` on ``spec_path``, slowing each batch size's call as asked."""
    import textcls.serving
    from bench import worker

    if extra_s_by_batch:
        load_predictor = textcls.serving.load_predictor

        def load_slowed_predictor(runtime, model_path, batch_size, seq_len, threads):
            predictor = load_predictor(runtime, model_path, batch_size, seq_len, threads)
            return _SlowedPredictor(predictor, extra_s_by_batch[batch_size])

        # bench.worker imports load_predictor from textcls.serving when it
        # measures, so replacing the module attribute reaches it.
        textcls.serving.load_predictor = load_slowed_predictor
    return worker.main([spec_path])


# ---------------------------------------------------------------------------
# The parent: run children, pair their sample sets, apply the gate


@dataclasses.dataclass(frozen=True)
class Setup:
    run_dir: Path
    variant: str
    spec: dict  # a "measure" spec for bench.worker, as the runner writes it, less result_path
    batch_sizes: list[int]


def timing_plan(suite: dict) -> TimingPlan:
    """Return the run's timing plan, with quick mode applied as the runner applies it."""
    from bench.config import make_config

    return TimingPlan(**make_config(suite).timing_values())


def prepare(run_dir: Path, variant: str) -> Setup:
    try:
        run = RunResult.load(run_dir)
    except ResultsError as error:
        raise BenchError(f"cannot read the run at {run_dir}: {error}") from None
    model = run.model(variant)
    if model is None or not model.ok:
        names = ", ".join(entry.name for entry in run.models if entry.ok) or "none"
        raise BenchError(f"variant {variant!r} was not measured in {run_dir}; measured: {names}")
    if run.data is None:
        raise BenchError(f"the run at {run_dir} has no data record")
    batch_sizes = [entry.batch_size for entry in model.latency]
    plan = timing_plan(run.suite)
    spec = {
        "stage": "measure",
        "variant": variant,
        "artifact_dir": str(run_dir / "artifacts" / variant),
        "splits_path": str(run_dir / "data" / "splits.npz"),
        "batch_sizes": batch_sizes,
        "seq_len": run.data.seq_len,
        "threads": run.suite.get("threads"),
        "device": run.suite.get("device", "cpu"),
        "timing": dataclasses.asdict(plan),
    }
    return Setup(run_dir, variant, spec, batch_sizes)


def measure(setup: Setup, work_dir: Path, extra_s_by_batch: dict[int, float]) -> dict[int, list[float]]:
    """Run one fresh worker and return its steady-state samples per batch size."""
    from bench.runner import worker_env

    spec_path = work_dir / "spec.json"
    result_path = work_dir / "result.json"
    result_path.unlink(missing_ok=True)
    spec_path.write_text(json.dumps({**setup.spec, "result_path": str(result_path)}))
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(spec_path),
               "--extra-s", json.dumps({str(size): extra for size, extra in extra_s_by_batch.items()})]
    completed = subprocess.run(
        command, env=worker_env(setup.spec["device"]), capture_output=True, text=True,
        timeout=WORKER_TIMEOUT_S, stdin=subprocess.DEVNULL,
    )
    if completed.returncode != 0 or not result_path.is_file():
        raise RuntimeError(
            f"measurement worker failed with exit code {completed.returncode}; "
            f"the end of its standard error:\n{completed.stderr[-3000:]}"
        )
    result = json.loads(result_path.read_text())
    return {entry["batch_size"]: entry["samples_s"] for entry in result["latency"]}


def latency(batch_size: int, samples_s: list[float]) -> LatencyResult:
    return LatencyResult.from_samples(batch_size, "measured", 0.0, [], samples_s)


@dataclasses.dataclass
class Tally:
    """How often the gate flagged pairs, overall and per (metric, batch size)."""

    pairs: int = 0
    flagged: int = 0  # pairs where at least one row regressed: bench compare exits 1
    improved: int = 0  # pairs where at least one row improved
    by_row: dict[str, int] = dataclasses.field(default_factory=dict)
    p50_changes: list[float] = dataclasses.field(default_factory=list)

    def add(self, rows) -> None:
        self.pairs += 1
        self.flagged += any(row.verdict == VERDICT_REGRESSED for row in rows)
        self.improved += any(row.verdict == VERDICT_IMPROVED for row in rows)
        for row in rows:
            key = f"{row.metric} b{row.batch_size}"
            self.by_row.setdefault(key, 0)
            self.by_row[key] += row.verdict == VERDICT_REGRESSED
            if row.metric == "latency.p50":
                self.p50_changes.append(row.change)


def judge(pair_sets: list[tuple[dict, dict]], variant: str, thresholds) -> Tally:
    tally = Tally()
    for baseline_sets, new_sets in pair_sets:
        rows = []
        for batch_size, baseline_samples in baseline_sets.items():
            rows += compare_latency(
                variant, latency(batch_size, baseline_samples),
                latency(batch_size, new_sets[batch_size]), thresholds, ALPHA,
            )
        tally.add(rows)
    return tally


def interval(successes: int, trials: int) -> tuple[float, float]:
    from scipy import stats

    if trials == 0:
        return (0.0, 1.0)
    result = stats.binomtest(successes, trials).proportion_ci(CONFIDENCE, method="exact")
    return (result.low, result.high)


def rate_line(label: str, successes: int, trials: int) -> str:
    low, high = interval(successes, trials)
    rate = successes / trials if trials else float("nan")
    return (f"{label}: {successes}/{trials} = {100 * rate:.1f}% "
            f"({CONFIDENCE:.0%} CI {100 * low:.1f}% to {100 * high:.1f}%)")


def report_lines(measured: dict, thresholds) -> list[str]:
    rounds = measured["rounds"]
    variant = measured["variant"]
    false_alarms = judge([(entry["a1"], entry["a2"]) for entry in rounds], variant, thresholds)
    detections = judge([(entry["a1"], entry["b"]) for entry in rounds], variant, thresholds)
    checked = ", ".join(t.spec for t in thresholds.values()
                        if METRICS[t.metric].per_batch_size and t.limit is not None)
    changes = np.abs(np.array(false_alarms.p50_changes))
    loads = [entry["load"] for entry in rounds]
    lines = [
        f"variant {variant} of {measured['run_dir']}, batch sizes {measured['batch_sizes']}",
        f"timing plan {measured['timing']}",
        f"injected slowdown {100 * measured['slowdown']:g}% of the median call: "
        + ", ".join(f"b{size} +{1e6 * extra:.0f} µs" for size, extra in measured["extra_s"].items()),
        f"gate: {checked}; alpha {ALPHA:g}",
        f"1-minute load average after each round: median {np.median(loads):.2f}, "
        f"max {np.max(loads):.2f} (this script's worker adds about 1)",
        "",
        rate_line("false alarms (A/A pairs with a regressed row)", false_alarms.flagged,
                  false_alarms.pairs),
        rate_line("detection (A/B pairs with a regressed row)", detections.flagged, detections.pairs),
        "",
        "per row, regressed in A/A and in A/B pairs:",
    ]
    for key in false_alarms.by_row:
        lines.append(f"  {key:<18} A/A {false_alarms.by_row[key]:>3}/{false_alarms.pairs}   "
                     f"A/B {detections.by_row[key]:>3}/{detections.pairs}")
    if changes.size:
        lines += [
            "",
            "A/A |change| of latency.p50 over all batch sizes: median "
            f"{np.median(changes):.1f}%, 95th percentile {np.percentile(changes, 95):.1f}%, "
            f"max {changes.max():.1f}%",
        ]
    return lines


def _write_json(path: Path, payload: dict) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(payload))
    os.replace(temporary, path)


def measure_rounds(
    setup: Setup, rounds: int, slowdown: float, seed: int, samples_path: Optional[Path], log
) -> dict:
    """Calibrate the slowdown, then measure ``rounds`` rounds of A1, A2 and B.

    With ``samples_path`` the sample sets are saved after every round, so an
    interrupted measurement keeps what it measured.
    """
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="gate-error-rates-") as folder:
        work_dir = Path(folder)

        log(f"calibrating with {CALIBRATION_SETS} plain measurements")
        medians: dict[int, list[float]] = {size: [] for size in setup.batch_sizes}
        for _ in range(CALIBRATION_SETS):
            for size, samples in measure(setup, work_dir, {}).items():
                medians[size].append(float(np.median(samples)))
        extra_s = {size: slowdown * float(np.median(values)) for size, values in medians.items()}

        measured = {
            "run_dir": str(setup.run_dir),
            "variant": setup.variant,
            "batch_sizes": setup.batch_sizes,
            "timing": setup.spec["timing"],
            "slowdown": slowdown,
            "extra_s": {str(size): value for size, value in extra_s.items()},
            "rounds": [],
        }
        started = time.monotonic()
        for index in range(rounds):
            order = ["a1", "a2", "b"]
            rng.shuffle(order)
            entry = {}
            for role in order:
                entry[role] = measure(setup, work_dir, extra_s if role == "b" else {})
            # The 1-minute load average includes this script's own worker (about 1).
            entry["load"] = round(os.getloadavg()[0], 2)
            measured["rounds"].append(entry)
            if samples_path is not None:
                _write_json(samples_path, measured)
            elapsed = time.monotonic() - started
            log(f"round {index + 1}/{rounds} done, {elapsed / (index + 1):.1f} s per round")
    return measured


def _restore_keys(measured: dict) -> dict:
    """Turn the batch-size keys that JSON made strings back into integers."""
    for entry in measured["rounds"]:
        for role in ("a1", "a2", "b"):
            entry[role] = {int(size): samples for size, samples in entry[role].items()}
    return measured


def parse_arguments(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, nargs="?", default=REPO_ROOT / "reports" / "latest",
                        help="finished run folder with the artifact (default: reports/latest)")
    parser.add_argument("--variant", default="baseline", help="variant to serve (default: baseline)")
    parser.add_argument("--rounds", type=int, default=100,
                        help="rounds of three fresh measurements: A1, A2 and slowed B (default 100)")
    parser.add_argument("--slowdown", type=float, default=0.10,
                        help="extra time per call for B, as a share of the median call (default 0.10)")
    parser.add_argument("--threshold", dest="thresholds", action="append", default=[],
                        metavar="METRIC:LIMIT", help="gate threshold, as for bench compare (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the measurement order")
    parser.add_argument("--samples", type=Path, metavar="FILE",
                        help="save every sample set to this JSON file, after each round")
    parser.add_argument("--reuse", type=Path, metavar="FILE",
                        help="judge the sample sets saved in this file instead of measuring")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--extra-s", default="{}", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_arguments(argv)
    if args.child:
        extra = {int(size): float(value) for size, value in json.loads(args.extra_s).items()}
        return run_child(args.child, extra)

    def log(message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)

    try:
        thresholds = resolve_thresholds(command_line_specs=args.thresholds)
        if args.reuse:
            measured = _restore_keys(json.loads(args.reuse.read_text()))
        else:
            if args.rounds < 1:
                raise BenchError(f"--rounds {args.rounds} is invalid; use 1 or more")
            setup = prepare(args.run_dir.resolve(), args.variant)
            measured = measure_rounds(setup, args.rounds, args.slowdown, args.seed, args.samples, log)
            if args.samples:
                log(f"sample sets saved to {args.samples}")
    except BenchError as error:
        print(f"gate_error_rates: error: {error}", file=sys.stderr)
        return 2
    print("\n".join(report_lines(measured, thresholds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
