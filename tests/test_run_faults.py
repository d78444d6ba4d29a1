"""Faults injected into real worker processes cost one variant, never the run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from bench.config import SuiteConfig
from bench.results import RunResult
from bench.runner import new_run_dir
from tests.clirun import REPO_ROOT, bench_env, run_bench, run_folder

HANG_LIMIT_S = 20


@pytest.fixture(scope="module")
def faulty_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    suite = out.parent / "faulty-suite.toml"
    suite.write_text(
        'variants = ["baseline", "xla", "mixed-float16", "tflite-float32", "tflite-float16", "tflite-dynamic-int8"]\n'
        "batch_sizes = [1]\n"
        "limit = 400\n"
        "quick = true\n"
        f"[timeouts_s]\n\"tflite-float16\" = {HANG_LIMIT_S}\n"
    )
    faults = ("xla:measure:raise,mixed-float16:timing:raise,tflite-float32:build:abort,"
              "tflite-float16:measure:hang")
    completed = run_bench(
        "run", "--config", str(suite), "--out", str(out),
        env=bench_env(BENCH_FAULT_INJECTION=faults),
    )
    return RunResult.load(run_folder(out)), completed, run_folder(out)


def test_faulty_run_exit_code(faulty_run):
    _, completed, _ = faulty_run
    assert completed.returncode == 3, completed.stderr[-3000:]


def test_raising_worker_recorded(faulty_run):
    run, _, _ = faulty_run
    failure = run.model("xla").failure
    assert run.model("xla").status == "failed"
    assert failure.stage == "measure"
    assert failure.kind == "exception"
    assert "injected fault" in failure.message
    assert "RuntimeError" in failure.log_tail


def test_aborting_worker_recorded(faulty_run):
    run, _, _ = faulty_run
    failure = run.model("tflite-float32").failure
    assert failure.stage == "build"
    assert failure.kind == "signal"
    assert "SIGABRT" in failure.message


def test_hanging_worker_recorded(faulty_run):
    run, _, _ = faulty_run
    failure = run.model("tflite-float16").failure
    assert failure.stage == "measure"
    assert failure.kind == "timeout"
    assert f"{HANG_LIMIT_S:g} s" in failure.message


def test_failed_timing_process_keeps_samples(faulty_run):
    run, _, _ = faulty_run
    model = run.model("mixed-float16")
    assert model.status == "failed"
    assert model.failure.stage == "measure"
    assert "timing process 2 of 2 failed" in model.failure.message
    assert "injected fault in timing" in model.failure.message
    # The first process's timing, accuracy and memory stay in the record.
    assert model.processes_measured == 1
    assert model.latency[0].count > 0
    assert model.accuracy is not None


def test_other_variants_survive(faulty_run):
    run, _, _ = faulty_run
    assert run.model("baseline").status == "ok"
    assert run.model("tflite-dynamic-int8").status == "ok"
    assert run.model("tflite-dynamic-int8").latency


def test_report_shows_failures(faulty_run):
    _, _, folder = faulty_run
    report = (folder / "report.md").read_text()
    assert "SIGABRT" in report
    assert "timed out after" in report


def _start_run(out, variants):
    return subprocess.Popen(
        [sys.executable, "-m", "bench.cli", "run", "--quick", "--limit", "400", "--batch-sizes", "1",
         "--variants", variants, "--out", str(out)],
        cwd=REPO_ROOT, env=bench_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True,
    )


def _wait_for_models(out, count, process, limit_s=600):
    """Poll the run's results.json until ``count`` models are recorded."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"run ended early: {process.stderr.read()[-3000:]}")
        for folder in out.iterdir():
            results = folder / "results.json"
            if folder.is_dir() and not folder.is_symlink() and results.is_file():
                try:
                    if len(json.loads(results.read_text())["models"]) >= count:
                        return folder
                except (json.JSONDecodeError, KeyError):
                    pass
        time.sleep(0.5)
    raise AssertionError(f"no {count} models recorded within {limit_s} s")


def test_killed_run_resumes(tmp_path):
    process = _start_run(tmp_path, "baseline,xla,tflite-float32")
    folder = _wait_for_models(tmp_path, 1, process)
    process.kill()
    process.wait()
    kept = RunResult.load(folder)
    assert [model.name for model in kept.models] == ["baseline"]

    completed = run_bench("run", "--resume", str(folder))
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "skipping variants already recorded" in completed.stderr
    resumed = RunResult.load(folder)
    assert [model.name for model in resumed.models] == ["baseline", "xla", "tflite-float32"]
    assert resumed.model("baseline").build_time_s == kept.model("baseline").build_time_s
    # The timing rounds ran after the resume: every variant has both quick-mode processes.
    for model in resumed.models:
        assert model.processes_measured == 2, model.name


def test_terminated_run_keeps_results(tmp_path):
    process = _start_run(tmp_path, "baseline,xla,tflite-float32")
    folder = _wait_for_models(tmp_path, 1, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-3000:]
    assert "--resume" in stderr
    assert RunResult.load(folder).model("baseline").status == "ok"
    assert (folder / "report.md").is_file()


def test_run_folder_never_reused(tmp_path):
    config = SuiteConfig(variants=["baseline"])
    first = new_run_dir(tmp_path, config)
    second = new_run_dir(tmp_path, config)
    assert first != second
    assert first.is_dir()
    assert second.is_dir()


def test_worker_dies_with_parent(tmp_path):
    process = _start_run(tmp_path, "baseline,xla")
    folder = _wait_for_models(tmp_path, 1, process)
    process.kill()
    process.wait()
    time.sleep(2)
    # No worker of this run may still be alive: they die with their parent.
    leftovers = subprocess.run(["pgrep", "-f", f"{folder}/work"], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", leftovers.stdout
    assert os.path.isdir(folder)
