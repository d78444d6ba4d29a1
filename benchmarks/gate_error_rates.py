"""Measure the error rates of the ``bench compare`` latency gate on this machine.

The script serves built artifacts of a finished run in many fresh worker
processes, each timing the model the way the harness does (``bench.worker``
with the run's timing plan). Some processes serve the plain model; the others
busy-wait an extra ``--slowdown`` share of the median call after each call.

A run of the harness pools the calls of several processes per variant
(``processes`` in the suite), timed in rounds over all variants. The script
forms such runs from its pool of processes and judges pairs of them with the
decision function of ``bench compare`` (``bench.compare.compare_latency``):

- false alarms: two runs of plain processes (A/A) that the gate calls regressed;
- detection: a plain run against one of slowed processes (A/B), which the gate
  should call regressed.

A suite-level pair counts as flagged when any row of any variant regressed,
which is when ``bench compare`` exits 1.

Every round measures each variant three times (two plain processes and one
slowed), in a shuffled order, so drift of the machine over time touches both
kinds of pairs alike and every run's processes spread over the whole
measuring time, as in the harness. The pairs are drawn from that pool at
random (disjoint processes within a pair), so they are not independent: the
script also judges one split of the pool into disjoint pairs and gives exact
(Clopper-Pearson) 95% confidence intervals for that split.

    python benchmarks/gate_error_rates.py reports/latest --variant baseline \\
        --variant tflite-float32 --rounds 30 --samples pool.json
    python benchmarks/gate_error_rates.py --reuse pool.json --threshold latency.p50:5%

``--samples FILE`` saves the pool after each round; ``--reuse FILE`` judges a
saved pool again without measuring. This is a proof script, not a test.
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
    VERDICT_REGRESSED,
    compare_latency,
    resolve_thresholds,
)
from bench.config import SuiteConfig, make_config  # noqa: E402
from bench.errors import BenchError  # noqa: E402
from bench.results import LatencyResult, ResultsError, RunResult  # noqa: E402

CALIBRATION_PROCESSES = 3
WORKER_TIMEOUT_S = 600
CONFIDENCE = 0.95
PLAIN, SLOWED = "plain", "slowed"


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
# Measuring the pool


@dataclasses.dataclass(frozen=True)
class Setup:
    run_dir: Path
    variant: str
    config: SuiteConfig  # the run's suite, whose timing plan and batch sizes the workers use
    seq_len: int

    def spec(self, result_path: Path) -> dict:
        """Return the timing-only spec of a measuring worker, as the runner writes it."""
        from bench.runner import measure_spec

        return measure_spec(
            self.config, self.variant, self.run_dir / "artifacts" / self.variant,
            self.run_dir / "data" / "splits.npz", self.seq_len, result_path, evaluate=False,
        )


def prepare(run: RunResult, run_dir: Path, variant: str) -> Setup:
    model = run.model(variant)
    if model is None or not model.ok:
        names = ", ".join(entry.name for entry in run.models if entry.ok) or "none"
        raise BenchError(f"variant {variant!r} was not measured in {run_dir}; measured: {names}")
    if run.data is None:
        raise BenchError(f"the run at {run_dir} has no data record")
    return Setup(run_dir, variant, make_config(run.suite), run.data.seq_len)


def measure(setup: Setup, work_dir: Path, extra_s_by_batch: dict[int, float]) -> dict[str, dict]:
    """Run one fresh worker; return its timing per batch size (keys are strings, as in JSON)."""
    from bench.runner import worker_env

    spec_path = work_dir / "spec.json"
    result_path = work_dir / "result.json"
    result_path.unlink(missing_ok=True)
    spec_path.write_text(json.dumps(setup.spec(result_path)))
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(spec_path),
               "--extra-s", json.dumps({str(size): extra for size, extra in extra_s_by_batch.items()})]
    completed = subprocess.run(
        command, env=worker_env(setup.config.device), capture_output=True, text=True,
        timeout=WORKER_TIMEOUT_S, stdin=subprocess.DEVNULL,
    )
    if completed.returncode != 0 or not result_path.is_file():
        raise RuntimeError(
            f"measurement worker failed with exit code {completed.returncode}; "
            f"the end of its standard error:\n{completed.stderr[-3000:]}"
        )
    result = json.loads(result_path.read_text())
    return {
        str(entry["batch_size"]): {key: entry[key] for key in ("first_call_s", "warmup_s", "samples_s")}
        for entry in result["latency"]
    }


def _write_json(path: Path, payload: dict) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(payload))
    os.replace(temporary, path)


def measure_pool(
    run_dir: Path, variants: list[str], rounds: int, slowdown: float, seed: int,
    samples_path: Optional[Path], log,
) -> dict:
    """Calibrate each variant's slowdown, then measure ``rounds`` rounds of the pool.

    With ``samples_path`` the pool is saved after every round, so an
    interrupted measurement keeps what it measured.
    """
    try:
        run = RunResult.load(run_dir)
    except ResultsError as error:
        raise BenchError(f"cannot read the run at {run_dir}: {error}") from None

    setups = {variant: prepare(run, run_dir, variant) for variant in variants}
    config = make_config(run.suite)
    rng = random.Random(seed)
    pool = {
        "run_dir": str(run_dir),
        "processes": config.processes,
        "timing": config.timing_values(),
        "slowdown": slowdown,
        "variants": {},
    }
    with tempfile.TemporaryDirectory(prefix="gate-error-rates-") as folder:
        work_dir = Path(folder)
        for variant, setup in setups.items():
            log(f"{variant}: calibrating with {CALIBRATION_PROCESSES} plain processes")
            medians: dict[str, list[float]] = {str(size): [] for size in setup.config.batch_sizes}
            for _ in range(CALIBRATION_PROCESSES):
                for size, timing in measure(setup, work_dir, {}).items():
                    medians[size].append(float(np.median(timing["samples_s"])))
            pool["variants"][variant] = {
                "extra_s": {size: slowdown * float(np.median(values)) for size, values in medians.items()},
                PLAIN: [],
                SLOWED: [],
            }

        started = time.monotonic()
        for index in range(rounds):
            jobs = [(variant, role) for variant in variants for role in (PLAIN, PLAIN, SLOWED)]
            rng.shuffle(jobs)
            for variant, role in jobs:
                entry = pool["variants"][variant]
                extra = {int(size): value for size, value in entry["extra_s"].items()} if role == SLOWED else {}
                timings = measure(setups[variant], work_dir, extra)
                # The 1-minute load average includes this script's own worker (about 1).
                entry[role].append({
                    "round": index,
                    "minute": round((time.monotonic() - started) / 60, 2),
                    "load": round(os.getloadavg()[0], 2),
                    "timings": timings,
                })
            if samples_path is not None:
                _write_json(samples_path, pool)
            elapsed = time.monotonic() - started
            log(f"round {index + 1}/{rounds} done, {elapsed / (index + 1):.0f} s per round")
    return pool


# ---------------------------------------------------------------------------
# Judging pairs of runs formed from the pool


def pooled_latency(processes: list[dict], batch_size: str) -> LatencyResult:
    timings = [process["timings"][batch_size] for process in processes]
    return LatencyResult.from_processes(int(batch_size), "measured", timings)


@dataclasses.dataclass
class Tally:
    """How often the gate flagged pairs, per variant and for the whole suite."""

    pairs: int = 0
    suite_flagged: int = 0  # pairs where some row of some variant regressed: bench compare exits 1
    flagged: dict[str, int] = dataclasses.field(default_factory=dict)
    by_row: dict[str, int] = dataclasses.field(default_factory=dict)
    changes: dict[str, list[float]] = dataclasses.field(default_factory=dict)

    def add(self, rows_by_variant: dict[str, list]) -> None:
        self.pairs += 1
        any_flag = False
        for variant, rows in rows_by_variant.items():
            regressed = any(row.verdict == VERDICT_REGRESSED for row in rows)
            any_flag |= regressed
            self.flagged[variant] = self.flagged.get(variant, 0) + regressed
            for row in rows:
                key = f"{variant} {row.metric} b{row.batch_size}"
                self.by_row[key] = self.by_row.get(key, 0) + (row.verdict == VERDICT_REGRESSED)
                self.changes.setdefault(key, []).append(row.change)
        self.suite_flagged += any_flag


def judge_pair(pool: dict, picks: dict[str, tuple[list[dict], list[dict]]], thresholds) -> dict[str, list]:
    rows_by_variant = {}
    for variant, (baseline, new) in picks.items():
        rows = []
        for size in pool["variants"][variant]["extra_s"]:
            rows += compare_latency(
                variant, pooled_latency(baseline, size), pooled_latency(new, size), thresholds, ALPHA
            )
        rows_by_variant[variant] = rows
    return rows_by_variant


def _by_round(entry: dict) -> list[tuple[dict, dict, dict]]:
    """Group a variant's processes by round: (first plain, second plain, slowed).

    Every round appends two plain processes and one slowed process per variant.
    """
    plain, slowed = entry[PLAIN], entry[SLOWED]
    return [(plain[2 * index], plain[2 * index + 1], slowed[index]) for index in range(len(slowed))]


def _draw(pool: dict, processes: int, rng: random.Random, retimed: bool) -> tuple[dict, dict]:
    """Draw one A/A and one A/B pair of runs per variant.

    Stored: each run takes processes from anywhere in the pool, as a baseline
    measured at another time would. Re-timed: both runs take their processes
    from the same rounds, as ``bench compare --retime`` measures them.
    """
    aa, ab = {}, {}
    for variant, entry in pool["variants"].items():
        if retimed:
            rounds = rng.sample(_by_round(entry), processes)
            first, second = [], []
            for plain_one, plain_two, _ in rounds:
                pair = [plain_one, plain_two]
                rng.shuffle(pair)
                first.append(pair[0])
                second.append(pair[1])
            aa[variant] = (first, second)
            ab[variant] = (first, [slowed for _, _, slowed in rounds])
        else:
            plain = rng.sample(entry[PLAIN], 2 * processes)
            aa[variant] = (plain[:processes], plain[processes:])
            ab[variant] = (plain[:processes], rng.sample(entry[SLOWED], processes))
    return aa, ab


def resampled_tallies(
    pool: dict, processes: int, pairs: int, thresholds, seed: int, retimed: bool
) -> tuple[Tally, Tally]:
    """Judge ``pairs`` random A/A and A/B pairs of runs of ``processes`` processes each."""
    rng = random.Random(seed)
    false_alarms, detections = Tally(), Tally()
    for _ in range(pairs):
        aa, ab = _draw(pool, processes, rng, retimed)
        false_alarms.add(judge_pair(pool, aa, thresholds))
        detections.add(judge_pair(pool, ab, thresholds))
    return false_alarms, detections


def disjoint_tallies(pool: dict, processes: int, thresholds, seed: int, retimed: bool) -> tuple[Tally, Tally]:
    """Judge one split of the pool into pairs that share no process (re-timed: no round)."""
    rng = random.Random(seed)
    false_alarms, detections = Tally(), Tally()
    if retimed:
        grouped = {variant: rng.sample(_by_round(entry), len(entry[SLOWED])) for variant, entry in pool["variants"].items()}
        count = min(len(rounds) for rounds in grouped.values()) // processes
        for index in range(count):
            part = slice(index * processes, (index + 1) * processes)
            rounds = {variant: values[part] for variant, values in grouped.items()}
            false_alarms.add(judge_pair(pool, {
                variant: ([one for one, _, _ in chosen], [two for _, two, _ in chosen]) for variant, chosen in rounds.items()
            }, thresholds))
            detections.add(judge_pair(pool, {
                variant: ([one for one, _, _ in chosen], [slowed for _, _, slowed in chosen]) for variant, chosen in rounds.items()
            }, thresholds))
        return false_alarms, detections

    shuffled = {
        variant: (rng.sample(entry[PLAIN], len(entry[PLAIN])), rng.sample(entry[SLOWED], len(entry[SLOWED])))
        for variant, entry in pool["variants"].items()
    }
    # Each A/A pair takes 2k plain processes, and each A/B pair k plain and k slowed.
    aa_pairs = min(len(plain) // (2 * processes) for plain, _ in shuffled.values())
    ab_pairs = min(min(len(plain), len(slowed)) // processes for plain, slowed in shuffled.values())
    for index in range(aa_pairs):
        low, middle, high = 2 * index * processes, (2 * index + 1) * processes, (2 * index + 2) * processes
        false_alarms.add(judge_pair(
            pool, {variant: (plain[low:middle], plain[middle:high]) for variant, (plain, _) in shuffled.items()},
            thresholds,
        ))
    for index in range(ab_pairs):
        part = slice(index * processes, (index + 1) * processes)
        detections.add(judge_pair(
            pool, {variant: (plain[part], slowed[part]) for variant, (plain, slowed) in shuffled.items()},
            thresholds,
        ))
    return false_alarms, detections


def interval(successes: int, trials: int) -> tuple[float, float]:
    from scipy import stats

    if trials == 0:
        return (0.0, 1.0)
    result = stats.binomtest(successes, trials).proportion_ci(CONFIDENCE, method="exact")
    return (result.low, result.high)


def rate_text(successes: int, trials: int, with_interval: bool = False) -> str:
    rate = 100 * successes / trials if trials else float("nan")
    text = f"{successes}/{trials} = {rate:.1f}%"
    if with_interval:
        low, high = interval(successes, trials)
        text += f" ({CONFIDENCE:.0%} CI {100 * low:.1f}% to {100 * high:.1f}%)"
    return text


def _mode_lines(pool: dict, processes: int, pairs: int, thresholds, seed: int, retimed: bool, title: str) -> list[str]:
    variants = pool["variants"]
    false_alarms, detections = resampled_tallies(pool, processes, pairs, thresholds, seed, retimed)
    lines = [
        f"{title}",
        f"  {pairs} random pairs (pairs share processes, so no interval):",
        f"    false alarms, whole suite: {rate_text(false_alarms.suite_flagged, pairs)}",
        f"    detection, whole suite:    {rate_text(detections.suite_flagged, pairs)}",
    ]
    for variant in variants:
        lines.append(f"    {variant}: false alarms {rate_text(false_alarms.flagged[variant], pairs)}, "
                     f"detection {rate_text(detections.flagged[variant], pairs)}")
    lines.append("    per row, regressed in A/A and A/B pairs; A/A |change| median / 99th percentile:")
    for key, count in false_alarms.by_row.items():
        changes = np.abs(np.array(false_alarms.changes[key]))
        lines.append(f"      {key:<34} A/A {count:>4}/{pairs}  A/B {detections.by_row[key]:>4}/{pairs}  "
                     f"|change| {np.median(changes):.1f}% / {np.percentile(changes, 99):.1f}%")
    disjoint_aa, disjoint_ab = disjoint_tallies(pool, processes, thresholds, seed, retimed)
    lines += [
        "  one split of the pool into pairs that share no process:",
        f"    false alarms, whole suite: {rate_text(disjoint_aa.suite_flagged, disjoint_aa.pairs, True)}",
        f"    detection, whole suite:    {rate_text(disjoint_ab.suite_flagged, disjoint_ab.pairs, True)}",
        "",
    ]
    return lines


def report_lines(pool: dict, processes: int, pairs: int, thresholds, seed: int) -> list[str]:
    variants = pool["variants"]
    rounds = min(len(entry[SLOWED]) for entry in variants.values())
    if rounds < processes:
        raise BenchError(
            f"the pool has {rounds} rounds, too few for pairs of runs of {processes} processes; "
            "measure more rounds or pass a smaller --processes"
        )
    checked = ", ".join(t.spec for t in thresholds.values()
                        if METRICS[t.metric].per_batch_size and t.limit is not None)
    loads = [process["load"] for entry in variants.values() for process in entry[PLAIN] + entry[SLOWED]]
    minutes = max(process["minute"] for entry in variants.values() for process in entry[PLAIN] + entry[SLOWED])
    lines = [
        f"run {pool['run_dir']}; timing plan {pool['timing']}",
        f"pool: {', '.join(f'{name} {len(entry[PLAIN])} plain + {len(entry[SLOWED])} slowed' for name, entry in variants.items())} "
        f"processes, measured over {minutes:.0f} minutes",
        f"injected slowdown {100 * pool['slowdown']:g}% of the median call: "
        + "; ".join(f"{name} " + ", ".join(f"b{size} +{1e6 * extra:.0f} µs" for size, extra in entry["extra_s"].items())
                    for name, entry in variants.items()),
        f"runs of {processes} processes each; gate: {checked}; alpha {ALPHA:g}",
        f"1-minute load average after each process: median {np.median(loads):.2f}, max {np.max(loads):.2f} "
        "(this script's worker adds about 1)",
        "",
    ]
    for retimed, title in (
        (False, "stored baseline: each run's processes drawn from anywhere in the pool"),
        (True, "re-timed (bench compare --retime): both runs' processes drawn from the same rounds"),
    ):
        lines += _mode_lines(pool, processes, pairs, thresholds, seed, retimed, title)
    return lines


# ---------------------------------------------------------------------------
# Command line


def parse_arguments(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, nargs="?", default=REPO_ROOT / "reports" / "latest",
                        help="finished run folder with the artifacts (default: reports/latest)")
    parser.add_argument("--variant", dest="variants", action="append", default=[],
                        help="variant to serve (repeatable; default: baseline)")
    parser.add_argument("--rounds", type=int, default=30,
                        help="rounds of two plain and one slowed process per variant (default 30)")
    parser.add_argument("--slowdown", type=float, default=0.10,
                        help="extra time per call of slowed processes, as a share of the median call (default 0.10)")
    parser.add_argument("--processes", type=int,
                        help="processes per run when judging (default: the run's own, 5 for a full run)")
    parser.add_argument("--pairs", type=int, default=2000, help="random A/A and A/B pairs to judge (default 2000)")
    parser.add_argument("--threshold", dest="thresholds", action="append", default=[],
                        metavar="METRIC:LIMIT", help="gate threshold, as for bench compare (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the measuring order and the pairs")
    parser.add_argument("--samples", type=Path, metavar="FILE",
                        help="save the pool to this JSON file, after each round")
    parser.add_argument("--reuse", type=Path, metavar="FILE",
                        help="judge the pool saved in this file instead of measuring")
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
            pool = json.loads(args.reuse.read_text())
        else:
            if args.rounds < 1:
                raise BenchError(f"--rounds {args.rounds} is invalid; use 1 or more")
            pool = measure_pool(args.run_dir.resolve(), args.variants or ["baseline"], args.rounds,
                                args.slowdown, args.seed, args.samples, log)
            if args.samples:
                log(f"pool saved to {args.samples}")
        processes = args.processes or pool["processes"]
        if processes < 1:
            raise BenchError(f"--processes {processes} is invalid; use 1 or more")
        lines = report_lines(pool, processes, args.pairs, thresholds, args.seed)
    except BenchError as error:
        print(f"gate_error_rates: error: {error}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
