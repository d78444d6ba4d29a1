"""Orchestrate one run: data, then build and measure each variant in its own process."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from bench import __version__, environment
from bench.config import SuiteConfig, make_config
from bench.errors import BenchError
from bench.process import WorkerOutcome, run_worker
from bench.results import (
    RESULTS_FILE,
    STATUS_FAILED,
    STATUS_OK,
    STATUS_UNSUPPORTED,
    AccuracyResult,
    DataInfo,
    Failure,
    MemoryResult,
    ModelResult,
    ResultsError,
    RunResult,
    SizeResult,
)
from textcls.variants import VARIANTS
from textcls.variants.base import Artifact

log = logging.getLogger(__name__)

SUITE_FILE = "suite.json"
LATEST_LINK = "latest"
REPO_ROOT = Path(__file__).resolve().parent.parent

EXIT_OK = 0
EXIT_INVALID = 2
EXIT_SOME_FAILED = 3
EXIT_INTERRUPTED = 130


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def new_run_dir(out: Path, config: SuiteConfig) -> Path:
    """Create a new, sortable run folder; an existing folder is never reused."""
    data_name = Path(config.data).stem if Path(config.data).suffix else config.data
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{data_name}{'-quick' if config.quick else ''}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        for attempt in range(1000):
            candidate = out / (base if attempt == 0 else f"{base}-{attempt}")
            try:
                candidate.mkdir()
                return candidate
            except FileExistsError:
                continue
    except OSError as error:
        raise BenchError(f"cannot create a run folder in {out}: {error.strerror}; choose a writable folder with --out") from None
    raise BenchError(f"too many runs named {base} in {out}")


def update_latest_link(run_dir: Path) -> None:
    """Point ``<out>/latest`` at ``run_dir``, replacing the old link atomically."""
    link = run_dir.parent / LATEST_LINK
    temporary = run_dir.parent / f".{LATEST_LINK}.{os.getpid()}"
    try:
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(run_dir.name)
        os.replace(temporary, link)
    except OSError as error:
        log.warning("could not update %s: %s", link, error)


def file_size(path: Path, relative_to: Path) -> SizeResult:
    data = path.read_bytes()
    return SizeResult(
        file=str(path.relative_to(relative_to)),
        raw_bytes=len(data),
        gzip_bytes=len(gzip.compress(data, compresslevel=9, mtime=0)),
    )


def probe_gpus() -> list[str]:
    """List TensorFlow's GPUs, in a child process so the parent stays free of TensorFlow."""
    code = "from textcls.tf_env import tf; print('\\n'.join(d.name for d in tf.config.list_physical_devices('GPU')))"
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=worker_env("gpu"), timeout=300
    )
    if completed.returncode != 0:
        raise BenchError(f"the GPU check failed, so --device gpu cannot be used: {completed.stderr.strip()[-500:]}")
    return [line for line in completed.stdout.splitlines() if line.strip()]


def load_data(config: SuiteConfig):
    """Read, clean, split and tokenize the suite's data set."""
    from textcls.data import DataError, load_texts, prepare_data

    try:
        texts = load_texts(
            config.data,
            text_column=config.text_column,
            label_column=config.label_column,
            positive_label=config.positive_label,
        )
        return prepare_data(
            texts,
            seed=config.seed,
            vocab_size=config.vocab_size,
            seq_len=config.seq_len,
            limit=config.effective_limit(),
        )
    except DataError as error:
        raise BenchError(str(error)) from None


def worker_env(device: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if device == "cpu":
        # Hide GPUs so that a CPU run measures the CPU on any machine.
        env["CUDA_VISIBLE_DEVICES"] = "-1"
    return env


def measure_spec(
    config: SuiteConfig, variant: str, artifact_dir: Path, splits_path: Path, seq_len: int,
    result_path: Path, evaluate: bool,
) -> dict:
    """Return the spec of a measuring worker (``python -m bench.worker``).

    With ``evaluate`` false the worker only times the model, as the later
    processes of a run and re-timing do.
    """
    return {
        "stage": "measure",
        "variant": variant,
        "result_path": str(result_path),
        "artifact_dir": str(artifact_dir),
        "splits_path": str(splits_path),
        "batch_sizes": config.batch_sizes,
        "seq_len": seq_len,
        "threads": config.threads,
        "device": config.device,
        "timing": config.timing_values(),
        "evaluate": evaluate,
    }


class Runner:
    """Run a suite into ``run_dir``, writing results.json after every model."""

    def __init__(self, config: SuiteConfig, run_dir: Path, result: RunResult):
        self.config = config
        self.run_dir = run_dir
        self.result = result
        self.env = worker_env(config.device)
        for folder in ("data", "artifacts", "logs", "work"):
            (run_dir / folder).mkdir(exist_ok=True)

    @classmethod
    def start(cls, config: SuiteConfig, command_line: list[str]) -> "Runner":
        gpus = probe_gpus() if config.device == "gpu" else []
        if config.device == "gpu" and not gpus:
            raise BenchError("device 'gpu' was requested but TensorFlow finds no GPU on this machine; use --device cpu")
        # The data is read and checked before the run folder exists, so that
        # bad input leaves nothing behind.
        prepared = load_data(config)
        run_dir = new_run_dir(Path(config.out), config)
        (run_dir / SUITE_FILE).write_text(json.dumps(config.to_dict(), indent=1) + "\n")
        result = RunResult(
            run_id=run_dir.name,
            started_at=utc_now(),
            environment=environment.collect(config.device, config.threads, gpus, command_line),
            suite=config.to_dict(),
            data=DataInfo(**prepared.info),
            tool_version=__version__,
        )
        log.info("run folder %s", run_dir)
        runner = cls(config, run_dir, result)
        prepared.splits.save(runner.splits_path)
        (run_dir / "data" / "tokenizer.json").write_text(prepared.tokenizer.to_json(), encoding="utf-8")
        runner.save()
        return runner

    @classmethod
    def resume(cls, run_dir: Path) -> "Runner":
        if not (run_dir / SUITE_FILE).is_file() or not (run_dir / "data" / "splits.npz").is_file():
            raise BenchError(
                f"{run_dir} is not a run folder of bench run (it lacks {SUITE_FILE} or data/splits.npz); "
                "give a folder that bench run created, e.g. reports/latest"
            )
        config = make_config(json.loads((run_dir / SUITE_FILE).read_text()))
        try:
            result = RunResult.load(run_dir / RESULTS_FILE)
        except ResultsError as error:
            raise BenchError(f"cannot resume {run_dir}: {error}") from None
        return cls(config, run_dir, result)

    def save(self) -> None:
        self.result.save(self.run_dir / RESULTS_FILE)

    @property
    def splits_path(self) -> Path:
        return self.run_dir / "data" / "splits.npz"

    # -- variants ----------------------------------------------------------

    def pending_variants(self) -> list[str]:
        done = {model.name for model in self.result.models}
        skipped = [name for name in self.config.variants if name in done]
        if skipped:
            log.info("skipping variants already recorded in %s: %s", self.run_dir.name, ", ".join(skipped))
        return [name for name in self.config.variants if name not in done]

    def run_variants(self) -> None:
        pending = self.pending_variants()
        for index, name in enumerate(pending, start=1):
            log.info("variant %d/%d: %s", index, len(pending), name)
            started = time.perf_counter()
            record = self.run_variant(name)
            self.result.put_model(record)
            self.save()
            summary = record.status if record.ok else f"{record.status}: {record.failure.message if record.failure else ''}"
            log.info("variant %s finished in %.0f s (%s)", name, time.perf_counter() - started, summary)
        self.run_timing_rounds()

    def run_timing_rounds(self) -> None:
        """Time every measured variant again in fresh processes, one round over all variants at a time.

        Load from other tenants of a shared machine comes in bursts that
        last from a tenth of a second to several seconds and slow every call
        made meanwhile. Spreading each variant's processes over the whole
        measuring phase lets such a burst touch a small share of any
        variant's calls, instead of all calls of the unlucky one.
        """
        total = self.config.processes
        for process in range(2, total + 1):
            due = [
                model for name in self.config.variants
                if (model := self.result.model(name)) is not None and model.ok and model.processes_measured < process
            ]
            if not due:
                continue
            log.info("timing round %d/%d: %s", process, total, ", ".join(model.name for model in due))
            for model in due:
                self._time_again(model, process, total)
                self.save()

    def _time_again(self, model: ModelResult, process: int, total: int) -> None:
        artifact_dir = self.run_dir / "artifacts" / model.name
        log_path = self.run_dir / "logs" / f"{model.name}.log"
        outcome = self._measure(model.name, artifact_dir, log_path, evaluate=False)
        if outcome.result is None:
            # The processes timed so far stay in the record, and the failure names the one that broke.
            model.status = STATUS_FAILED
            model.failure = self._failure("measure", outcome, log_path)
            model.failure.message = f"timing process {process} of {total} failed: {model.failure.message}"
            log.warning("%s: %s", model.name, model.failure.message)
            return
        model.add_timing(outcome.result)

    def run_variant(self, name: str) -> ModelResult:
        spec = VARIANTS[name]
        record = ModelResult(
            name=name,
            family=spec.family,
            status=STATUS_FAILED,
            params=self.config.params_for(name),
            device=self.config.device,
            threads=self.config.threads,
        )
        blocked = [dep for dep in ("baseline", *spec.depends_on) if dep != name and not self._succeeded(dep)]
        if blocked:
            record.failure = Failure("build", "dependency", f"not built because {', '.join(blocked)} did not succeed")
            return record

        artifact_dir = self.run_dir / "artifacts" / name
        log_path = self.run_dir / "logs" / f"{name}.log"
        build = self._build(name, record.params, artifact_dir, log_path)
        if build.result is None:
            record.failure = self._failure("build", build, log_path)
            return record
        record.build_time_s = build.result["build_time_s"]
        if build.result["status"] == STATUS_UNSUPPORTED:
            record.status = STATUS_UNSUPPORTED
            record.failure = Failure("build", "unsupported", build.result["reason"])
            return record

        artifact = Artifact.load(artifact_dir)
        record.runtime = artifact.runtime
        record.details = artifact.details
        record.notes = artifact.notes
        record.size = file_size(artifact_dir / artifact.model_file, self.run_dir)

        measured = self._measure(name, artifact_dir, log_path)
        if measured.result is None:
            record.failure = self._failure("measure", measured, log_path)
            return record
        self._fill_measurement(record, measured.result)
        record.status = STATUS_OK
        return record

    def _succeeded(self, name: str) -> bool:
        model = self.result.model(name)
        return model is not None and model.ok

    def _failure(self, stage: str, outcome: WorkerOutcome, log_path: Path) -> Failure:
        return Failure(
            stage=stage,
            kind=outcome.failure_kind or "exception",
            message=outcome.message,
            log_tail=outcome.log_tail,
            log_file=str(log_path.relative_to(self.run_dir)),
        )

    def _build(self, name: str, params: dict, artifact_dir: Path, log_path: Path) -> WorkerOutcome:
        if artifact_dir.exists():
            # A build interrupted earlier may have left files behind.
            import shutil

            shutil.rmtree(artifact_dir)
        artifact_dir.mkdir(parents=True)
        data = self.result.data
        spec = {
            "stage": "build",
            "variant": name,
            "params": params,
            "result_path": str(self.run_dir / "work" / f"{name}.build.json"),
            "context": {
                "out_dir": str(artifact_dir),
                "splits_path": str(self.splits_path),
                "baseline_path": str(self.run_dir / "artifacts" / "baseline" / "model.keras"),
                "vocab_size": data.vocab_size,
                "seq_len": data.seq_len,
                "batch_sizes": self.config.batch_sizes,
                "seed": self.config.seed,
                "quick": self.config.quick,
                "dependency_dirs": {
                    dep: str(self.run_dir / "artifacts" / dep) for dep in VARIANTS[name].depends_on
                },
            },
        }
        return run_worker(
            spec, self.run_dir / "work" / f"{name}.build.spec.json", log_path,
            self.config.timeout_for(name, "build"), f"{name} build", self.env,
        )

    def _measure(self, name: str, artifact_dir: Path, log_path: Path, evaluate: bool = True) -> WorkerOutcome:
        spec = measure_spec(
            self.config, name, artifact_dir, self.splits_path, self.result.data.seq_len,
            self.run_dir / "work" / f"{name}.measure.json", evaluate,
        )
        return run_worker(
            spec, self.run_dir / "work" / f"{name}.measure.spec.json", log_path,
            self.config.timeout_for(name, "measure"), f"{name} measure", self.env,
        )

    def _fill_measurement(self, record: ModelResult, measured: dict) -> None:
        record.add_timing(measured)
        record.accuracy = AccuracyResult(**measured["accuracy"])
        record.memory = MemoryResult(**measured["memory"])

    # -- the whole run ---------------------------------------------------------

    def finish(self) -> int:
        self.result.finished_at = utc_now()
        self.save()
        from bench.report import write_reports

        write_reports(self.result, self.run_dir)
        update_latest_link(self.run_dir)
        failed = [model.name for model in self.result.models if model.status == STATUS_FAILED]
        if failed:
            log.warning("%d variant(s) failed: %s; see %s", len(failed), ", ".join(failed), self.run_dir / "report.md")
            return EXIT_SOME_FAILED
        return EXIT_OK


def run_suite(config: Optional[SuiteConfig], command_line: list[str], resume_dir: Optional[Path] = None) -> tuple[int, Path]:
    """Run (or resume) a suite; return the exit code and the run folder."""
    runner = Runner.resume(resume_dir) if resume_dir else Runner.start(config, command_line)
    try:
        runner.run_variants()
    except KeyboardInterrupt:
        log.warning("interrupted: finished variants are kept in %s; continue with bench run --resume %s",
                    runner.run_dir / RESULTS_FILE, runner.run_dir)
        runner.save()
        from bench.report import write_reports

        write_reports(runner.result, runner.run_dir)
        return EXIT_INTERRUPTED, runner.run_dir
    return runner.finish(), runner.run_dir


__all__ = ["run_suite", "Runner", "STATUS_OK", "EXIT_OK", "EXIT_INVALID", "EXIT_SOME_FAILED", "EXIT_INTERRUPTED"]
