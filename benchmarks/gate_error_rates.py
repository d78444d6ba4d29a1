"""Measure the error rates of the ``bench compare`` latency gate on this machine.

The script serves built artifacts of a finished run in many fresh worker
processes, each timing the model the way the harness does (``bench.worker``
with the run's timing plan). Some processes serve the plain model; the others
busy-wait after each call for an extra ``--slowdown`` share of the median
call (the slowdown the gate must catch) or of the 1st percentile (a smaller
wait, which moves the p1 gate's statistic by the share itself).

A run of the harness pools the calls of several processes per variant
(``processes`` in the suite), timed in rounds over all variants. The script
forms such runs from its pool of processes and judges pairs of them with the
decision functions of ``bench compare`` (``bench.compare.compare_latency``,
and ``confirm_rows`` for ``--confirm``):

- false alarms: two runs of plain processes (A/A) that the gate calls regressed;
- detection: a plain run against one of slowed processes (A/B), which the gate
  should call regressed.

A suite-level pair counts as flagged when any row of any variant regressed,
which is when ``bench compare`` exits 1.

Every round measures each variant four times (two plain processes and one of
each slowed kind), in a shuffled order, so drift of the machine over time
touches both kinds of pairs alike and every run's processes spread over the
whole measuring time, as in the harness. The pairs are drawn from that pool
at random, with disjoint processes within a pair and its confirmation, so
pairs are not independent of each other and the rates are estimates without
an exact interval.

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
    confirm_rows,
    resolve_thresholds,
    timing_regressions,
)
from bench.config import SuiteConfig, make_config  # noqa: E402
from bench.errors import BenchError  # noqa: E402
from bench.results import LatencyResult, ProcessTiming, ResultsError, RunResult  # noqa: E402
from bench.stats import summarize, throughput_per_s  # noqa: E402

CALIBRATION_PROCESSES = 3
WORKER_TIMEOUT_S = 600
PLAIN = "plain"
# Slowed processes busy-wait ``--slowdown`` times the median call after each
# call, or times the 1st percentile. The second wait is smaller and moves p1
# by the slowdown itself, so it is the stricter test of a p1 gate.
SLOWED_KINDS = {"slowed": "median", "slowed_p1": "p1"}


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


def _statistic(kind: str, samples_s: list[float]) -> float:
    return float(np.median(samples_s) if kind == "median" else np.percentile(samples_s, 1))


def measure_pool(
    run_dir: Path, variants: list[str], rounds: int, slowdown: float, seed: int,
    samples_path: Optional[Path], log,
) -> dict:
    """Calibrate each variant's slowdowns, then measure ``rounds`` rounds of the pool.

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
        "slowed_kinds": SLOWED_KINDS,
        "variants": {},
    }
    with tempfile.TemporaryDirectory(prefix="gate-error-rates-") as folder:
        work_dir = Path(folder)
        for variant, setup in setups.items():
            log(f"{variant}: calibrating with {CALIBRATION_PROCESSES} plain processes")
            values: dict[str, dict[str, list[float]]] = {
                kind: {str(size): [] for size in setup.config.batch_sizes} for kind in SLOWED_KINDS.values()
            }
            for _ in range(CALIBRATION_PROCESSES):
                for size, timing in measure(setup, work_dir, {}).items():
                    for kind in SLOWED_KINDS.values():
                        values[kind][size].append(_statistic(kind, timing["samples_s"]))
            entry = {
                "extra": {
                    role: {size: slowdown * float(np.median(found)) for size, found in values[kind].items()}
                    for role, kind in SLOWED_KINDS.items()
                },
                PLAIN: [],
            }
            entry.update({role: [] for role in SLOWED_KINDS})
            pool["variants"][variant] = entry

        started = time.monotonic()
        for index in range(rounds):
            jobs = [(variant, role) for variant in variants for role in (PLAIN, PLAIN, *SLOWED_KINDS)]
            rng.shuffle(jobs)
            for variant, role in jobs:
                entry = pool["variants"][variant]
                extra = {int(size): value for size, value in entry["extra"][role].items()} if role != PLAIN else {}
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


def prepare_pool(pool: dict) -> dict:
    """Turn every process's calls into arrays, and read a pool saved before the p1-based slowdown.

    Such a pool's one slowed kind was median-based.
    """
    for entry in pool["variants"].values():
        if "extra" not in entry:
            entry["extra"] = {"slowed": entry.pop("extra_s")}
        for role in (PLAIN, *entry["extra"]):
            for process in entry[role]:
                for timing in process["timings"].values():
                    timing["samples_s"] = np.asarray(timing["samples_s"], dtype=np.float64)
    return pool


def slowed_roles(pool: dict) -> list[str]:
    return list(next(iter(pool["variants"].values()))["extra"])


# ---------------------------------------------------------------------------
# Judging pairs of runs formed from the pool


def pooled_latency(processes: list[dict], batch_size: str) -> LatencyResult:
    """Pool the calls of ``processes`` into the record a run of them would store.

    It leaves out warm-up and first calls, which the gate does not read, and
    builds the record from arrays, because from_processes flattens Python
    lists and thousands of pairs of pooled runs take long that way.
    """
    samples_s = np.concatenate([process["timings"][batch_size]["samples_s"] for process in processes])
    summary = summarize(samples_s)
    return LatencyResult(
        batch_size=int(batch_size), call_path="measured", first_call_s=0.0, warmup_s=[], samples_s=samples_s,
        throughput_per_s=throughput_per_s(int(batch_size), summary.mean_ms),
        processes=[ProcessTiming(len(process["timings"][batch_size]["samples_s"]), 0.0) for process in processes],
        **dataclasses.asdict(summary),
    )


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


Picks = dict[str, tuple[list[dict], list[dict]]]  # per variant: the baseline's and the new run's processes


def judge_pair(pool: dict, picks: Picks, thresholds, checks: Optional[Picks] = None) -> dict[str, list]:
    """Compare two runs as ``bench compare`` does; with ``checks``, as ``bench compare --confirm``.

    ``checks`` contains the processes of the confirming re-timing. Only the
    variants with a regressed row use them, because ``--confirm`` re-times only those.
    """
    rows_by_variant = {}
    for variant, (baseline, new) in picks.items():
        rows = []
        for size in pool["variants"][variant][PLAIN][0]["timings"]:
            rows += compare_latency(
                variant, pooled_latency(baseline, size), pooled_latency(new, size), thresholds, ALPHA
            )
        if checks is not None and timing_regressions(rows):
            check_rows = judge_pair(pool, {variant: checks[variant]}, thresholds)[variant]
            rows = confirm_rows(rows, check_rows, {})
        rows_by_variant[variant] = rows
    return rows_by_variant


def _by_round(entry: dict, roles: list[str]) -> list[dict]:
    """Group a variant's processes by round: two plain processes and one of each slowed kind.

    Every round appends two plain processes and one process of each slowed kind per variant.
    """
    return [
        {PLAIN: (entry[PLAIN][2 * index], entry[PLAIN][2 * index + 1]),
         **{role: entry[role][index] for role in roles}}
        for index in range(len(entry[roles[0]]))
    ]


def _retimed_picks(rounds: list[dict], roles: list[str], rng: random.Random) -> tuple[tuple, dict[str, tuple]]:
    """Split rounds into an A/A pair (one plain process each per round) and an A/B pair per slowed kind."""
    first, second = [], []
    for group in rounds:
        pair = list(group[PLAIN])
        rng.shuffle(pair)
        first.append(pair[0])
        second.append(pair[1])
    return (first, second), {role: (first, [group[role] for group in rounds]) for role in roles}


def _draw(pool: dict, processes: int, rng: random.Random, retimed: bool, confirm: bool):
    """Draw one A/A pair and one A/B pair per slowed kind, per variant, and with ``confirm`` their checks.

    Stored: each run takes processes from anywhere in the pool, as a baseline
    measured at another time would. Re-timed: both runs take their processes
    from the same rounds, as ``bench compare --retime`` measures them. The
    confirming re-timing of ``--confirm`` takes its processes from other
    rounds than the pair's. Returns (A/A, {kind: A/B}, A/A check, {kind: A/B check}).
    """
    roles = slowed_roles(pool)
    aa: Picks = {}
    ab: dict[str, Picks] = {role: {} for role in roles}
    aa_check: Optional[Picks] = {} if confirm else None
    ab_check: Optional[dict[str, Picks]] = {role: {} for role in roles} if confirm else None
    for variant, entry in pool["variants"].items():
        rounds = _by_round(entry, roles)
        rng.shuffle(rounds)
        if confirm:
            check_rounds, rounds = rounds[:processes], rounds[processes:]
            aa_check[variant], checks = _retimed_picks(check_rounds, roles, rng)
            for role in roles:
                ab_check[role][variant] = checks[role]
        if retimed:
            aa[variant], pairs = _retimed_picks(rounds[:processes], roles, rng)
            for role in roles:
                ab[role][variant] = pairs[role]
        else:
            plain = rng.sample([process for group in rounds for process in group[PLAIN]], 2 * processes)
            aa[variant] = (plain[:processes], plain[processes:])
            for role in roles:
                ab[role][variant] = (plain[:processes], rng.sample([group[role] for group in rounds], processes))
    return aa, ab, aa_check, ab_check


def resampled_tallies(
    pool: dict, processes: int, pairs: int, thresholds, seed: int, retimed: bool, confirm: bool = False
) -> tuple[Tally, dict[str, Tally], int]:
    """Judge ``pairs`` random A/A pairs, and A/B pairs per slowed kind, of runs of ``processes`` processes.

    Also returns how many A/A pairs needed the confirming re-timing.
    """
    rng = random.Random(seed)
    false_alarms = Tally()
    detections = {role: Tally() for role in slowed_roles(pool)}
    rechecked = 0
    for _ in range(pairs):
        aa, ab, aa_check, ab_check = _draw(pool, processes, rng, retimed, confirm)
        if confirm:
            rechecked += any(timing_regressions(rows) for rows in judge_pair(pool, aa, thresholds).values())
        false_alarms.add(judge_pair(pool, aa, thresholds, aa_check))
        for role, tally in detections.items():
            tally.add(judge_pair(pool, ab[role], thresholds, ab_check[role] if confirm else None))
    return false_alarms, detections, rechecked


def rate_text(successes: int, trials: int) -> str:
    rate = 100 * successes / trials if trials else float("nan")
    return f"{successes}/{trials} = {rate:.1f}%"


def _mode_lines(
    pool: dict, processes: int, pairs: int, thresholds, seed: int, retimed: bool, confirm: bool, title: str
) -> list[str]:
    variants = pool["variants"]
    false_alarms, detections, rechecked = resampled_tallies(
        pool, processes, pairs, thresholds, seed, retimed, confirm
    )
    kinds = pool.get("slowed_kinds", {"slowed": "median"})
    lines = [
        f"{title}",
        f"  {pairs} random pairs:",
        f"    false alarms, whole suite: {rate_text(false_alarms.suite_flagged, pairs)}",
    ]
    for role, tally in detections.items():
        lines.append(f"    detection of +{100 * pool['slowdown']:g}% of the {kinds[role]}, whole suite: "
                     f"{rate_text(tally.suite_flagged, pairs)}")
    if confirm:
        lines.append(f"    A/A pairs that needed the confirming re-timing: {rate_text(rechecked, pairs)}")
    for variant in variants:
        found = ", ".join(f"{kinds[role]} {rate_text(tally.flagged[variant], pairs)}" for role, tally in detections.items())
        lines.append(f"    {variant}: false alarms {rate_text(false_alarms.flagged[variant], pairs)}; detection {found}")
    lines.append("    per row, regressed in A/A and A/B pairs; A/A |change| median / 99th percentile:")
    for key, count in false_alarms.by_row.items():
        changes = np.abs(np.array(false_alarms.changes[key]))
        found = "  ".join(f"{kinds[role]} {tally.by_row[key]:>4}" for role, tally in detections.items())
        lines.append(f"      {key:<34} A/A {count:>4}  A/B {found}  "
                     f"|change| {np.median(changes):.1f}% / {np.percentile(changes, 99):.1f}%")
    return lines + [""]


def _p1_shift(entry: dict, role: str, batch_size: str) -> float:
    """Return the change of the 1st percentile from the plain to the slowed processes, in percent."""
    plain = pooled_latency(entry[PLAIN], batch_size).percentile_ms(1)
    slowed = pooled_latency(entry[role], batch_size).percentile_ms(1)
    return 100 * (slowed - plain) / plain


def report_lines(pool: dict, processes: int, pairs: int, thresholds, seed: int) -> list[str]:
    variants = pool["variants"]
    roles = slowed_roles(pool)
    kinds = pool.get("slowed_kinds", {"slowed": "median"})
    rounds = min(len(entry[roles[0]]) for entry in variants.values())
    if rounds < processes:
        raise BenchError(
            f"the pool has {rounds} rounds, too few for pairs of runs of {processes} processes; "
            "measure more rounds or pass a smaller --processes"
        )
    checked = ", ".join(t.spec for t in thresholds.values()
                        if METRICS[t.metric].per_batch_size and t.limit is not None)
    everything = [process for entry in variants.values() for role in (PLAIN, *roles) for process in entry[role]]
    loads = [process["load"] for process in everything]
    minutes = max(process["minute"] for process in everything)
    lines = [
        f"run {pool['run_dir']}; timing plan {pool['timing']}",
        f"pool: {rounds} rounds of {', '.join(variants)}; each round served each variant in 2 plain "
        f"processes and one slowed by {100 * pool['slowdown']:g}% of the "
        + " and one by that share of the ".join(kinds[role] for role in roles)
        + f", measured over {minutes:.0f} minutes",
    ]
    for role in roles:
        lines.append(
            f"slowdown by {100 * pool['slowdown']:g}% of the {kinds[role]}, extra wait per call and its effect on p1: "
            + "; ".join(f"{name} " + ", ".join(
                f"b{size} +{1e6 * extra:.0f} µs (p1 {_p1_shift(entry, role, size):+.1f}%)"
                for size, extra in entry["extra"][role].items())
                for name, entry in variants.items())
        )
    lines += [
        f"runs of {processes} processes each; gate: {checked}; alpha {ALPHA:g}",
        f"1-minute load average after each process: median {np.median(loads):.2f}, max {np.max(loads):.2f} "
        "(this script's worker adds about 1)",
        "The random pairs share processes with each other, so the rates carry no exact interval;",
        "they are estimates from this pool, not from independent runs.",
        "",
    ]
    confirm_title = (
        " + --confirm: rows that regressed are checked on processes of other rounds, "
        "and count only if the check regressed too"
    )
    for retimed, confirm, title in (
        (False, False, "stored baseline: each run's processes drawn from anywhere in the pool"),
        (False, True, "stored baseline" + confirm_title),
        (True, False, "re-timed (bench compare --retime): both runs' processes drawn from the same rounds"),
        (True, True, "re-timed" + confirm_title),
    ):
        if confirm and rounds < 2 * processes:
            lines += [f"{title}", f"  skipped: needs {2 * processes} rounds, the pool has {rounds}", ""]
            continue
        lines += _mode_lines(pool, processes, pairs, thresholds, seed, retimed, confirm, title)
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
                        help="rounds of two plain processes and one of each slowed kind per variant (default 30)")
    parser.add_argument("--slowdown", type=float, default=0.10,
                        help="extra time per call of slowed processes, as a share of the median or "
                        "1st percentile call (default 0.10)")
    parser.add_argument("--processes", type=int,
                        help="processes per run when judging (default: the run's own, 5 for a full run)")
    parser.add_argument("--pairs", type=int, default=1000, help="random A/A and A/B pairs to judge (default 1000)")
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
        pool = prepare_pool(pool)
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
