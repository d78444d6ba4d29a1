"""The RunResult record and its JSON file."""

from __future__ import annotations

import json

import pytest

from bench.results import (
    RESULTS_FILE,
    SCHEMA_VERSION,
    LatencyResult,
    ModelResult,
    ResultsError,
    RunResult,
)
from tests.factories import make_failed, make_model, make_run, make_unsupported


@pytest.fixture
def run() -> RunResult:
    return make_run([make_model("baseline"), make_failed("tflite-int8"), make_unsupported("qat")])


# --- LatencyResult ----------------------------------------------------------------


def test_latency_from_samples_statistics():
    entry = LatencyResult.from_samples(
        batch_size=32, call_path="serve(x)", first_call_s=1.5, warmup_s=[0.01], samples_s=[0.001, 0.002, 0.003, 0.004]
    )

    assert entry.count == 4
    assert entry.p50_ms == pytest.approx(2.5)
    assert entry.p90_ms == pytest.approx(3.7)
    assert entry.mean_ms == pytest.approx(2.5)


def test_latency_from_samples_throughput():
    entry = LatencyResult.from_samples(
        batch_size=32, call_path="serve(x)", first_call_s=1.5, warmup_s=[], samples_s=[0.004, 0.004]
    )

    assert entry.throughput_per_s == pytest.approx(8000.0)


def test_latency_keeps_raw_values_apart():
    entry = LatencyResult.from_samples(
        batch_size=1, call_path="serve(x)", first_call_s=1.5, warmup_s=[0.5, 0.5], samples_s=[0.001, 0.003]
    )

    assert entry.first_call_s == 1.5
    assert entry.warmup_s == [0.5, 0.5]
    assert entry.samples_s == [0.001, 0.003]
    assert entry.max_ms == pytest.approx(3.0)


def test_latency_pools_processes():
    entry = LatencyResult.from_processes(8, "serve(x)", [
        {"first_call_s": 1.0, "warmup_s": [0.1], "samples_s": [0.001, 0.002]},
        {"first_call_s": 3.0, "warmup_s": [0.2], "samples_s": [0.003]},
        {"first_call_s": 2.0, "warmup_s": [0.3], "samples_s": [0.004, 0.005, 0.006]},
    ])

    assert entry.samples_s == [0.001, 0.002, 0.003, 0.004, 0.005, 0.006]
    assert entry.p50_ms == pytest.approx(3.5)
    assert [process.calls for process in entry.processes] == [2, 1, 3]
    assert entry.first_call_s == 2.0  # the median process, not the first
    assert entry.warmup_s == [0.1, 0.2, 0.3]


def test_add_process_matches_pooling():
    first = {"first_call_s": 1.0, "warmup_s": [0.1, 0.1], "samples_s": [0.001, 0.002]}
    second = {"first_call_s": 2.0, "warmup_s": [0.2, 0.2], "samples_s": [0.004]}

    grown = LatencyResult.from_processes(1, "serve(x)", [first]).add_process(second)

    assert grown == LatencyResult.from_processes(1, "serve(x)", [first, second])
    assert grown.process_timings() == [first, second]


def test_version_1_latency_one_process():
    entry = LatencyResult.from_samples(1, "serve(x)", 1.0, [0.1], [0.001, 0.002])
    entry.processes = []  # as a version 1 file loads

    assert entry.process_timings() == [{"first_call_s": 1.0, "warmup_s": [0.1], "samples_s": [0.001, 0.002]}]
    assert len(entry.add_process({"first_call_s": 1.0, "warmup_s": [0.1], "samples_s": [0.003]}).processes) == 2


def test_load_version_1_file(tmp_path, run):
    payload = run.to_dict()
    payload["schema_version"] = 1
    for model in payload["models"]:
        model.pop("load_times_s")
        for entry in model["latency"]:
            entry.pop("processes")
    (tmp_path / RESULTS_FILE).write_text(json.dumps(payload))

    loaded = RunResult.load(tmp_path)

    baseline = loaded.model("baseline")
    assert baseline.latency[0].processes == []
    assert baseline.processes_measured == 1
    assert loaded.model("tflite-int8").processes_measured == 0


def test_latency_from_no_samples_raises():
    with pytest.raises(ValueError):
        LatencyResult.from_samples(batch_size=1, call_path="serve(x)", first_call_s=1.0, warmup_s=[], samples_s=[])


# --- ModelResult --------------------------------------------------------------------


def test_model_unknown_status_raises():
    with pytest.raises(ValueError, match="'done'"):
        ModelResult(name="baseline", family="baseline", status="done")


def test_model_ok_property(run):
    assert run.model("baseline").ok
    assert not run.model("tflite-int8").ok
    assert not run.model("qat").ok


def test_model_latency_for():
    model = make_model("baseline", p50_ms={1: 4.0, 32: 20.0})

    assert model.latency_for(32).p50_ms == pytest.approx(20.0)
    assert model.latency_for(8) is None


# --- RunResult -----------------------------------------------------------------------


def test_run_model_lookup(run):
    assert run.model("qat").status == "unsupported"
    assert run.model("xla") is None


def test_put_model_replaces_by_name(run):
    replacement = make_model("tflite-int8", accuracy=0.7)
    run.put_model(replacement)

    assert [model.name for model in run.models] == ["baseline", "qat", "tflite-int8"]
    assert run.model("tflite-int8") is replacement


def test_put_model_adds_new(run):
    run.put_model(make_model("xla"))

    assert len(run.models) == 4


def test_save_load_round_trip(tmp_path, run):
    path = tmp_path / RESULTS_FILE
    run.save(path)

    assert RunResult.load(path) == run


def test_round_trip_nested_types(tmp_path, run):
    run.save(tmp_path / RESULTS_FILE)
    loaded = RunResult.load(tmp_path / RESULTS_FILE)
    baseline = loaded.model("baseline")

    assert type(loaded.environment).__name__ == "Environment"
    assert type(baseline.latency[0]) is LatencyResult
    assert type(baseline.size).__name__ == "SizeResult"
    assert loaded.model("tflite-int8").failure.log_file == "logs/tflite-int8.log"


def test_round_trip_infinite_throughput(tmp_path):
    model = make_model("baseline", p50_ms={1: 0.0})
    run = make_run([model])
    run.save(tmp_path / RESULTS_FILE)

    assert RunResult.load(tmp_path / RESULTS_FILE).model("baseline").latency[0].throughput_per_s == float("inf")


def test_round_trip_without_data(tmp_path):
    run = make_run(data=None, finished_at=None)
    run.save(tmp_path / RESULTS_FILE)

    assert RunResult.load(tmp_path / RESULTS_FILE) == run


def test_save_writes_schema_version(tmp_path, run):
    run.save(tmp_path / RESULTS_FILE)

    assert json.loads((tmp_path / RESULTS_FILE).read_text())["schema_version"] == SCHEMA_VERSION


def test_save_leaves_no_temporary_file(tmp_path, run):
    run.save(tmp_path / RESULTS_FILE)

    assert sorted(path.name for path in tmp_path.iterdir()) == [RESULTS_FILE]


def test_save_replaces_existing_file(tmp_path, run):
    path = tmp_path / RESULTS_FILE
    path.write_text("old contents")
    run.save(path)

    assert RunResult.load(path) == run


def test_load_folder_reads_results_file(tmp_path, run):
    run.save(tmp_path / RESULTS_FILE)

    assert RunResult.load(tmp_path) == run


# --- invalid files --------------------------------------------------------------------


def saved_payload(tmp_path, run) -> dict:
    run.save(tmp_path / RESULTS_FILE)
    return json.loads((tmp_path / RESULTS_FILE).read_text())


def write_payload(tmp_path, payload) -> None:
    (tmp_path / RESULTS_FILE).write_text(json.dumps(payload))


def test_load_missing_file_raises(tmp_path):
    with pytest.raises(ResultsError, match="not found"):
        RunResult.load(tmp_path / "absent.json")


def test_load_folder_without_results_raises(tmp_path):
    with pytest.raises(ResultsError, match=RESULTS_FILE):
        RunResult.load(tmp_path)


@pytest.mark.parametrize("version", [0, SCHEMA_VERSION + 1, None, "1"])
def test_load_unknown_schema_version_raises(tmp_path, run, version):
    payload = saved_payload(tmp_path, run)
    payload["schema_version"] = version
    write_payload(tmp_path, payload)

    with pytest.raises(ResultsError, match="schema version"):
        RunResult.load(tmp_path)


def test_load_unknown_top_field_raises(tmp_path, run):
    payload = saved_payload(tmp_path, run)
    payload["colour"] = "blue"
    write_payload(tmp_path, payload)

    with pytest.raises(ResultsError, match="colour"):
        RunResult.load(tmp_path)


def test_load_unknown_nested_field_raises(tmp_path, run):
    payload = saved_payload(tmp_path, run)
    payload["models"][0]["latency"][0]["p95_ms"] = 1.0
    write_payload(tmp_path, payload)

    with pytest.raises(ResultsError, match="p95_ms"):
        RunResult.load(tmp_path)


def test_load_missing_field_raises(tmp_path, run):
    payload = saved_payload(tmp_path, run)
    del payload["environment"]["cpu_model"]
    write_payload(tmp_path, payload)

    with pytest.raises(ResultsError, match="cpu_model"):
        RunResult.load(tmp_path)


def test_load_invalid_status_raises(tmp_path, run):
    payload = saved_payload(tmp_path, run)
    payload["models"][0]["status"] = "done"
    write_payload(tmp_path, payload)

    with pytest.raises(ResultsError, match="'done'"):
        RunResult.load(tmp_path)


def test_load_wrong_nested_type_raises(tmp_path, run):
    payload = saved_payload(tmp_path, run)
    payload["environment"] = "a string"
    write_payload(tmp_path, payload)

    with pytest.raises(ResultsError, match="Environment"):
        RunResult.load(tmp_path)


def test_load_invalid_json_raises(tmp_path):
    (tmp_path / RESULTS_FILE).write_text('{"run_id": ')

    with pytest.raises(ResultsError, match="cannot read"):
        RunResult.load(tmp_path)


def test_load_json_array_raises(tmp_path):
    (tmp_path / RESULTS_FILE).write_text("[]")

    with pytest.raises(ResultsError, match="results object"):
        RunResult.load(tmp_path)
