"""The ``bench`` command line.

Only the ``run`` subcommand's workers import TensorFlow; help, ``list``,
``report`` and ``compare`` stay fast.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import Any, Optional

from bench import __version__
from bench.arguments import name_list, positive_int_list, variant_setting, whole_number
from bench.errors import BenchError

log = logging.getLogger("bench")

EXIT_INVALID = 2


class _Parser(argparse.ArgumentParser):
    """An argument parser that reports a usage error in one line, without the usage block."""

    def error(self, message: str):
        self.exit(EXIT_INVALID, f"{self.prog}: error: {message}\nsee '{self.prog} --help' for the options\n")


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="suite file (TOML or JSON); options given here override it")
    parser.add_argument("--data", help="built-in data set (rotten-tomatoes, chinese-reviews) or a .csv/.jsonl file")
    parser.add_argument("--text-column", help="text column of a user data file (default: text)")
    parser.add_argument("--label-column", help="label column of a user data file (default: label)")
    parser.add_argument("--positive-label", help="label value that means positive, when it cannot be guessed")
    parser.add_argument("--limit", type=whole_number, help="use at most this many texts, sampled with the seed")
    parser.add_argument("--vocab-size", type=whole_number, help="vocabulary size, padding and unknown ids included (default 10000)")
    parser.add_argument("--seq-len", type=whole_number, help="tokens per text (default: 95th percentile of training texts)")
    parser.add_argument("--batch-sizes", type=positive_int_list, help="batch sizes to time, comma-separated (default 1,32)")
    parser.add_argument("--variants", type=name_list, help="variants to run, comma-separated (default: all; see bench list)")
    parser.add_argument("--skip", type=name_list, default=[], help="variants to leave out, comma-separated")
    parser.add_argument("--set", dest="settings", type=variant_setting, action="append", default=[],
                        metavar="VARIANT.PARAM=VALUE", help="set a variant parameter, e.g. pruned.target_sparsity=0.9 (repeatable)")
    parser.add_argument("--out", help="folder that receives one folder per run (default: reports)")
    parser.add_argument("--device", help="cpu (default) or gpu; gpu fails when TensorFlow finds none")
    parser.add_argument("--threads", type=whole_number, help="threads per runtime (default: the runtime's own)")
    parser.add_argument("--seed", type=whole_number, help="seed for sampling, splitting and training (default 0)")
    parser.add_argument("--quick", action="store_true", default=None,
                        help="smoke run: 2000 texts, at most 8 training epochs, short timing")
    parser.add_argument("--warmup-calls", type=whole_number, help="untimed calls before timing (default 10)")
    parser.add_argument("--min-calls", type=whole_number, help="minimum timed calls per batch size (default 50)")
    parser.add_argument("--min-duration-s", type=float, help="minimum seconds of timed calls per batch size (default 1.0)")
    parser.add_argument("--max-calls", type=whole_number, help="maximum timed calls per batch size (default 100000)")
    parser.add_argument("--processes", type=whole_number,
                        help="fresh worker processes that time each variant (default 10, 2 with --quick)")
    parser.add_argument("--build-timeout-s", type=float, help="seconds one variant's build may take (default 3600)")
    parser.add_argument("--measure-timeout-s", type=float, help="seconds one variant's measurement may take (default 900)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR",
                        help="continue an interrupted run in RUN_DIR, skipping finished variants; other options are ignored")


# Command-line options that map one to one onto SuiteConfig fields.
_RUN_FIELDS = (
    "data", "text_column", "label_column", "positive_label", "limit", "vocab_size", "seq_len",
    "batch_sizes", "variants", "out", "device", "threads", "seed", "quick", "warmup_calls",
    "min_calls", "min_duration_s", "max_calls", "processes", "build_timeout_s", "measure_timeout_s",
)


def build_config(args: argparse.Namespace):
    from bench.config import load_config_file, make_config
    from textcls.variants import VARIANTS, get_variant

    values: dict[str, Any] = load_config_file(args.config) if args.config else {}
    for name in _RUN_FIELDS:
        value = getattr(args, name)
        if value is not None:
            values[name] = value
    if args.skip:
        for name in args.skip:
            try:
                get_variant(name)
            except ValueError as error:
                raise BenchError(f"--skip: {error}") from None
        chosen = values.get("variants", list(VARIANTS))
        values["variants"] = [name for name in chosen if name not in args.skip]
    if args.settings:
        params = {name: dict(table) for name, table in values.get("variant_params", {}).items()}
        for variant, parameter, value in args.settings:
            params.setdefault(variant, {})[parameter] = value
        values["variant_params"] = params
    return make_config(values)


def _interrupt_on_sigterm() -> None:
    """Treat SIGTERM (CI cancelling a job) like Ctrl-C, so finished results are saved."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def command_run(args: argparse.Namespace) -> int:
    from bench.runner import run_suite

    _interrupt_on_sigterm()
    if args.resume:
        ignored = [f"--{name.replace('_', '-')}" for name in _RUN_FIELDS if getattr(args, name) is not None]
        others = (("--config", args.config), ("--set", args.settings), ("--skip", args.skip))
        ignored += [flag for flag, value in others if value]
        if ignored:
            log.warning("--resume continues with the run's own settings; ignoring %s", ", ".join(ignored))
        exit_code, run_dir = run_suite(None, sys.argv, resume_dir=args.resume)
    else:
        config = build_config(args)
        exit_code, run_dir = run_suite(config, sys.argv)
    print(f"results: {run_dir / 'results.json'}")
    print(f"report:  {run_dir / 'report.md'}")
    return exit_code


def command_report(args: argparse.Namespace) -> int:
    from bench.report import write_reports
    from bench.results import ResultsError, RunResult

    try:
        run = RunResult.load(args.run)
    except ResultsError as error:
        raise BenchError(str(error)) from None
    folder = args.run if args.run.is_dir() else args.run.parent
    for path in write_reports(run, folder):
        print(path)
    return 0


def command_list(args: argparse.Namespace) -> int:
    from textcls.data.datasets import BUILTIN_DATASETS
    from textcls.variants import VARIANTS

    print("variants:")
    for spec in VARIANTS.values():
        params = ", ".join(f"{key}={value}" for key, value in spec.defaults.items())
        print(f"  {spec.name:<22} {spec.description}" + (f" [{params}]" if params else ""))
    print("data sets:")
    for name, dataset in BUILTIN_DATASETS.items():
        print(f"  {name:<22} {dataset.description}")
    return 0


def command_fetch_data(args: argparse.Namespace) -> int:
    from textcls.data import fetch

    return fetch.main()


def build_parser() -> argparse.ArgumentParser:
    from bench.compare import add_compare_arguments

    parser = _Parser(
        prog="bench",
        description="Build optimized variants of a text classifier and measure latency, "
        "throughput, memory, size and accuracy.",
    )
    parser.add_argument("--version", action="version", version=f"bench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = subparsers.add_parser("run", help="run a benchmark suite", description="Run a benchmark suite into a new folder under --out.")
    _add_run_arguments(run)
    run.set_defaults(handler=command_run)

    compare = subparsers.add_parser("compare", help="compare two runs; exit 1 on a regression",
                                    description="Compare two runs as a performance-regression gate.")
    add_compare_arguments(compare)
    compare.set_defaults(handler=_run_compare)

    report = subparsers.add_parser("report", help="render results.csv and report.md again from results.json")
    report.add_argument("run", type=Path, help="a run folder or its results.json")
    report.set_defaults(handler=command_report)

    listing = subparsers.add_parser("list", help="list variants and built-in data sets")
    listing.set_defaults(handler=command_list)

    fetch = subparsers.add_parser("fetch-data", help="download and cache the built-in data sets")
    fetch.set_defaults(handler=command_fetch_data)
    return parser


def _run_compare(args: argparse.Namespace) -> int:
    from bench.compare import run_compare

    return run_compare(args)


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    try:
        return args.handler(args)
    except BenchError as error:
        if args.debug:
            raise
        print(f"bench: error: {error}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
