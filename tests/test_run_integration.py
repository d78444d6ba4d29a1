"""The whole suite in quick mode on a slice of the real English data."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from bench.results import LatencyResult, RunResult
from tests.clirun import run_bench, run_folder

VARIANTS = ["baseline", "xla", "tflite-float32", "tflite-dynamic-int8"]
BATCH_SIZES = [1, 8]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    completed = run_bench(
        "run", "--quick", "--limit", "800", "--variants", ",".join(VARIANTS),
        "--batch-sizes", ",".join(map(str, BATCH_SIZES)), "--out", str(out),
    )
    return out, completed


def test_quick_run_exit_code(quick_run):
    _, completed = quick_run
    assert completed.returncode == 0, completed.stderr[-4000:]


def test_quick_run_writes_files(quick_run):
    out, _ = quick_run
    folder = run_folder(out)
    for name in ("results.json", "results.csv", "report.md", "suite.json", "data/splits.npz"):
        assert (folder / name).is_file(), name
    assert (out / "latest").resolve() == folder.resolve()


def test_quick_run_records_data(quick_run):
    out, _ = quick_run
    run = RunResult.load(run_folder(out))
    assert run.data.name == "rotten-tomatoes"
    assert run.data.train + run.data.validation + run.data.test == 800
    assert len(run.data.sha256) == 64
    assert run.data.seq_len > 0
    assert 0 <= run.data.truncated_share < 1


def test_quick_run_measures_every_variant(quick_run):
    out, _ = quick_run
    run = RunResult.load(run_folder(out))
    assert [model.name for model in run.models] == VARIANTS
    for model in run.models:
        assert model.status == "ok", (model.name, model.failure)
        assert [entry.batch_size for entry in model.latency] == BATCH_SIZES
        assert 0.0 <= model.accuracy.accuracy <= 1.0
        assert model.accuracy.examples == run.data.test
        assert model.size.raw_bytes > 0
        assert model.size.gzip_bytes > 0
        assert model.memory.peak_rss_bytes >= model.memory.rss_after_load_bytes


def test_quick_run_keeps_raw_samples(quick_run):
    out, _ = quick_run
    run = RunResult.load(run_folder(out))
    for model in run.models:
        for entry in model.latency:
            assert entry.count == len(entry.samples_s)
            assert entry.count >= run.suite["min_calls"] or entry.count >= 20
            assert entry.p50_ms <= entry.p90_ms <= entry.p99_ms
            # Quick mode times each variant in 2 processes of 3 warm-up calls each.
            assert len(entry.processes) == 2
            assert sum(process.calls for process in entry.processes) == entry.count
            assert len(entry.warmup_s) == 2 * 3
        assert len(model.load_times_s) == 2


def test_quick_run_call_paths(quick_run):
    out, _ = quick_run
    run = RunResult.load(run_folder(out))
    assert run.model("baseline").latency[0].call_path.startswith("tf.function")
    assert "jit_compile=True" in run.model("xla").latency[0].call_path
    assert run.model("tflite-float32").latency[0].call_path.startswith("ai_edge_litert")


def test_litert_worker_skips_tensorflow(quick_run):
    out, _ = quick_run
    run = RunResult.load(run_folder(out))
    keras_peak = run.model("baseline").memory.peak_rss_bytes
    litert_peak = run.model("tflite-float32").memory.peak_rss_bytes
    # A process that imported TensorFlow uses several hundred MiB more.
    assert litert_peak < keras_peak / 2


def test_quick_run_csv_rows(quick_run):
    out, _ = quick_run
    table = pd.read_csv(run_folder(out) / "results.csv")
    assert len(table) == len(VARIANTS) * len(BATCH_SIZES)
    assert set(table["model"]) == set(VARIANTS)


def test_quick_run_report_table(quick_run):
    out, _ = quick_run
    report = (run_folder(out) / "report.md").read_text()
    assert "## Comparison" in report
    for name in VARIANTS:
        assert f"| {name} " in report


def test_quick_run_suite_saved(quick_run):
    out, _ = quick_run
    suite = json.loads((run_folder(out) / "suite.json").read_text())
    assert suite["quick"] is True
    assert suite["batch_sizes"] == BATCH_SIZES


def test_retime_times_both_runs(quick_run):
    out, _ = quick_run
    folder = run_folder(out)
    # --report-only: this test checks the re-timing, not whether the machine
    # stayed equally fast between the two runs' processes.
    completed = run_bench("compare", str(folder), str(folder), "--retime", "--processes", "2", "--report-only")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Latency re-timed on this machine in 2 rounds" in completed.stdout
    for role in ("baseline", "new"):
        retimed = RunResult.load(folder / "retime" / f"{role}.json")
        for model in retimed.models:
            assert model.status == "ok", (role, model.name, model.failure)
            assert len(model.load_times_s) == 2
            for entry in model.latency:
                assert len(entry.processes) == 2
                assert entry.count == sum(process.calls for process in entry.processes)
    # The stored results stay as they were.
    assert RunResult.load(folder).model("baseline").latency[0].samples_s != \
        RunResult.load(folder / "retime" / "new.json").model("baseline").latency[0].samples_s


def _slowed_copy(folder, target, model_name, factor):
    """Copy a run folder, with ``model_name``'s stored calls made ``factor`` times slower."""
    shutil.copytree(folder, target, ignore=shutil.ignore_patterns("retime", "compare.md"))
    run = RunResult.load(target)
    model = run.model(model_name)
    slowed = []
    for entry in model.latency:
        timings = entry.process_timings()
        for timing in timings:
            timing["samples_s"] = [value * factor for value in timing["samples_s"]]
        slowed.append(LatencyResult.from_processes(entry.batch_size, entry.call_path, timings))
    model.latency = slowed
    run.save(target / "results.json")
    return target


def test_confirm_clears_stored_slowdown(quick_run, tmp_path):
    out, _ = quick_run
    folder = run_folder(out)
    # The new run's stored LiteRT calls are 30% slower, but its artifact is the
    # same file: the stored comparison regresses, and re-timing both clears it.
    new = _slowed_copy(folder, tmp_path / "new", "tflite-float32", 1.3)
    stored = run_bench("compare", str(folder), str(new))
    assert stored.returncode == 1, stored.stdout[-3000:]

    confirmed = run_bench("compare", str(folder), str(new), "--confirm", "--processes", "2")
    assert confirmed.returncode == 0, confirmed.stdout[-3000:] + confirmed.stderr[-3000:]
    assert "their models were re-timed again in 2 rounds. Each round served tflite-float32 of both runs" \
        in confirmed.stdout
    assert "which 0 of 2 did" in confirmed.stdout
    assert "not confirmed by re-timing" in confirmed.stdout
    checked = RunResult.load(new / "retime" / "confirm-new.json")
    assert len(checked.model("tflite-float32").latency[0].processes) == 2
    # Models without a regressed row keep their stored latency.
    assert checked.model("baseline").latency[0].samples_s == RunResult.load(new).model("baseline").latency[0].samples_s
