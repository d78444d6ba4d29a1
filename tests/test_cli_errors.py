"""Bad input fails fast: one message naming the value, exit code 2, no traceback."""

from __future__ import annotations

import os

import pytest

from tests.clirun import run_bench

GOOD_ROWS = "".join(f"review number {i} is {'great' if i % 2 else 'awful'},{i % 2}\n" for i in range(120))


def _write(folder, name, content, mode="w"):
    path = folder / name
    if mode == "wb":
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return str(path)


# Each case: (id, function(tmp_path) -> argument list, text the message must contain).
CASES = [
    ("unknown subcommand", lambda d: ["frobnicate"], "invalid choice: 'frobnicate'"),
    ("unknown option", lambda d: ["run", "--batchsize", "4"], "--batchsize"),
    ("zero batch size", lambda d: ["run", "--batch-sizes", "0"], "batch size 0"),
    ("negative batch size", lambda d: ["run", "--batch-sizes", "1,-4"], "batch size -4"),
    ("batch size not a number", lambda d: ["run", "--batch-sizes", "one"], "'one'"),
    ("zero run count", lambda d: ["run", "--min-calls", "0"], "min_calls 0"),
    ("process count not whole", lambda d: ["run", "--processes", "2.5"], "'2.5' is not a whole number"),
    ("compare process count not whole", lambda d: ["compare", "a", "b", "--confirm", "--processes", "x"], "'x' is not a whole number"),
    ("negative duration", lambda d: ["run", "--min-duration-s", "-1"], "min_duration_s -1"),
    ("sparsity out of range", lambda d: ["run", "--set", "pruned.target_sparsity=1.5"], "target_sparsity=1.5"),
    ("unknown variant parameter", lambda d: ["run", "--set", "pruned.sparsity=0.5"], "'target_sparsity'"),
    ("malformed setting", lambda d: ["run", "--set", "pruned=0.5"], "VARIANT.PARAMETER=VALUE"),
    ("unknown variant", lambda d: ["run", "--variants", "baseline,prunned"], "Did you mean 'pruned'"),
    ("unknown skipped variant", lambda d: ["run", "--skip", "xlaa"], "'xlaa'"),
    ("unknown device", lambda d: ["run", "--device", "tpu"], "'tpu'"),
    ("zero threads", lambda d: ["run", "--threads", "0"], "threads 0"),
    ("config missing", lambda d: ["run", "--config", str(d / "absent.toml")], "absent.toml not found"),
    ("config invalid syntax", lambda d: ["run", "--config", _write(d, "bad.toml", "batch_sizes = [1,\n")], "not valid TOML"),
    ("config unknown key", lambda d: ["run", "--config", _write(d, "key.toml", "batch_size = [1]\n")], "did you mean 'batch_sizes'"),
    ("config wrong type", lambda d: ["run", "--config", _write(d, "type.toml", "min_calls = \"many\"\n")], "min_calls must be int"),
    ("config not a table", lambda d: ["run", "--config", _write(d, "list.json", "[1, 2]")], "must be a table"),
    ("config unreadable", lambda d: ["run", "--config", _write(d, "latin.toml", b"seed = 1 # \xe9\n", "wb")], "cannot read"),
    ("data missing", lambda d: ["run", "--data", str(d / "absent.csv")], "absent.csv"),
    ("data empty", lambda d: ["run", "--data", _write(d, "empty.csv", "")], "is empty"),
    ("data not utf-8", lambda d: ["run", "--data", _write(d, "latin.csv", b"text,label\ncaf\xe9 ok,1\n", "wb")], "line 2"),
    ("data missing text column", lambda d: ["run", "--data", _write(d, "cols.csv", "body,label\n" + GOOD_ROWS)], "no column 'text'"),
    ("data missing label column", lambda d: ["run", "--data", _write(d, "cols.csv", "text,label\n" + GOOD_ROWS), "--label-column", "stars"], "no column 'stars'"),
    ("data one class", lambda d: ["run", "--data", _write(d, "one.csv", "text,label\n" + "".join(f"t{i},1\n" for i in range(80)))], "found 1"),
    ("data three classes", lambda d: ["run", "--data", _write(d, "three.csv", "text,label\n" + "".join(f"t{i},{i % 3}\n" for i in range(90)))], "found 3"),
    ("data unmappable labels", lambda d: ["run", "--data", _write(d, "odd.csv", "text,label\n" + "".join(f"t{i},{'up' if i % 2 else 'down'}\n" for i in range(80)))], "'down', 'up'"),
    ("data empty text", lambda d: ["run", "--data", _write(d, "blank.csv", "text,label\n" + GOOD_ROWS + ",1\n")], "empty 'text'"),
    ("data too small", lambda d: ["run", "--data", _write(d, "small.csv", "text,label\na,1\nb,0\nc,1\n")], "at least 50"),
    ("data unknown suffix", lambda d: ["run", "--data", _write(d, "data.xlsx", "x")], "'.xlsx'"),
    ("resume not a run", lambda d: ["run", "--resume", str(d)], "not a run folder"),
    ("output not writable", lambda d: ["run", "--variants", "baseline", "--out", _write(d, "file.txt", "x") + "/runs"], "choose a writable folder"),
    ("compare missing baseline", lambda d: ["compare", str(d / "none.json"), str(d / "new.json")], "none.json"),
    ("report missing results", lambda d: ["report", str(d)], "not found"),
]


@pytest.mark.parametrize("arguments, expected", [(case[1], case[2]) for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_rejected(tmp_path, arguments, expected):
    completed = run_bench(*arguments(tmp_path), timeout=300)
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert expected in completed.stderr
    assert "Traceback" not in completed.stderr
    # Nothing is measured before the input is known to be good.
    assert not any(path.name == "results.json" for path in tmp_path.rglob("*"))


@pytest.mark.skipif(os.environ.get("CUDA_VISIBLE_DEVICES") is None and os.path.exists("/dev/nvidia0"), reason="a GPU is present")
def test_gpu_requested_without_gpu(tmp_path):
    completed = run_bench("run", "--device", "gpu", "--out", str(tmp_path), timeout=300)
    assert completed.returncode == 2, completed.stderr
    assert "finds no GPU" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_debug_shows_traceback(tmp_path):
    completed = run_bench("--debug", "run", "--config", str(tmp_path / "absent.toml"))
    assert completed.returncode != 0
    assert "Traceback" in completed.stderr


def test_resume_warns_about_ignored_options(tmp_path):
    completed = run_bench("run", "--resume", str(tmp_path), "--processes", "5", "--skip", "xla")
    # The folder is not a run folder, so the resume itself fails after the warning.
    assert completed.returncode == 2, completed.stderr
    assert "ignoring --processes, --skip" in completed.stderr
