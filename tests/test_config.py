"""Suite configuration: defaults, quick mode, validation and config files."""

from __future__ import annotations

import json

import pytest

from bench.config import (
    QUICK_BASELINE_PARAMS,
    QUICK_LIMIT,
    SuiteConfig,
    field_names,
    load_config_file,
    make_config,
    ordered_with_dependencies,
)
from bench.errors import BenchError
from textcls.variants import VARIANTS

# --- defaults and derived values ------------------------------------------------------


def test_defaults_valid():
    config = SuiteConfig()

    assert config.variants[0] == "baseline"
    assert sorted(config.variants) == sorted(VARIANTS)


def test_defaults_batch_sizes():
    assert SuiteConfig().batch_sizes == [1, 32]


def test_default_params_are_variant_defaults():
    assert SuiteConfig().params_for("pruned") == VARIANTS["pruned"].defaults


def test_variant_params_override_defaults():
    config = SuiteConfig(variant_params={"pruned": {"target_sparsity": 0.5}})

    assert config.params_for("pruned")["target_sparsity"] == 0.5
    assert config.params_for("pruned")["fine_tune_epochs"] == VARIANTS["pruned"].defaults["fine_tune_epochs"]


def test_int_accepted_for_float_param():
    config = SuiteConfig(variant_params={"baseline": {"learning_rate": 1}})

    assert config.params_for("baseline")["learning_rate"] == 1


def test_quick_shortens_baseline_training():
    config = SuiteConfig(quick=True)

    assert config.params_for("baseline")["max_epochs"] == QUICK_BASELINE_PARAMS["max_epochs"]


def test_quick_user_param_wins():
    config = SuiteConfig(quick=True, variant_params={"baseline": {"max_epochs": 3}})

    assert config.params_for("baseline")["max_epochs"] == 3


def test_quick_leaves_other_variants():
    assert SuiteConfig(quick=True).params_for("pruned") == VARIANTS["pruned"].defaults


def test_quick_shortens_default_timing():
    config = make_config({"quick": True})
    assert config.timing_values() == {"warmup_calls": 3, "min_calls": 20, "min_duration_s": 0.2, "max_calls": 100_000}
    assert config.processes == 2


def test_quick_keeps_explicit_timing():
    # Even a value equal to the default counts: a CI job may ask for full timing on quick data.
    config = make_config({"quick": True, "min_duration_s": 1.0, "processes": 10})
    assert config.min_duration_s == 1.0
    assert config.processes == 10
    assert config.min_calls == 20


def test_quick_limit():
    assert SuiteConfig(quick=True).effective_limit() == QUICK_LIMIT


def test_quick_user_limit_wins():
    assert SuiteConfig(quick=True, limit=100).effective_limit() == 100


def test_full_run_no_limit():
    assert SuiteConfig().effective_limit() is None


def test_timeout_defaults_by_stage():
    config = SuiteConfig(build_timeout_s=100.0, measure_timeout_s=50.0)

    assert config.timeout_for("pruned", "build") == 100.0
    assert config.timeout_for("pruned", "measure") == 50.0


def test_timeout_per_variant():
    config = SuiteConfig(timeouts_s={"qat": 7})

    assert config.timeout_for("qat", "build") == 7.0
    assert config.timeout_for("qat", "measure") == 7.0
    assert config.timeout_for("xla", "build") == 3600.0


def test_to_dict_round_trip():
    config = SuiteConfig(batch_sizes=[4], variants=["xla"], variant_params={"baseline": {"max_epochs": 2}})

    assert make_config(config.to_dict()) == config


# --- variant order ------------------------------------------------------------------------


def test_order_pulls_dependency():
    assert ordered_with_dependencies(["pruned-int8"]) == ["baseline", "pruned", "pruned-int8"]


def test_order_dependency_before_dependent():
    assert ordered_with_dependencies(["pruned-int8", "pruned"]) == ["baseline", "pruned", "pruned-int8"]


def test_order_baseline_first():
    assert ordered_with_dependencies(["xla", "baseline"]) == ["baseline", "xla"]


def test_order_removes_repeats():
    assert ordered_with_dependencies(["xla", "xla"]) == ["baseline", "xla"]


def test_config_orders_variants():
    assert SuiteConfig(variants=["pruned-int8"]).variants == ["baseline", "pruned", "pruned-int8"]


# --- invalid values -------------------------------------------------------------------------

# (settings, texts the message must contain)
INVALID_SETTINGS = [
    pytest.param({"batch_sizes": [0]}, ["batch size 0"], id="batch-size-zero"),
    pytest.param({"batch_sizes": [1, -1]}, ["batch size -1"], id="batch-size-negative"),
    pytest.param({"batch_sizes": [1, 32, 1]}, ["[1, 32, 1]", "repeats"], id="batch-size-repeated"),
    pytest.param({"batch_sizes": []}, ["batch_sizes is empty"], id="batch-sizes-empty"),
    pytest.param({"batch_sizes": [1.5]}, ["batch_sizes", "[1.5]"], id="batch-size-float"),
    pytest.param({"batch_sizes": [True]}, ["batch_sizes", "[True]"], id="batch-size-bool"),
    pytest.param({"variants": ["prunned"]}, ["'prunned'", "Did you mean 'pruned'?"], id="unknown-variant"),
    pytest.param({"variants": []}, ["no variants"], id="no-variants"),
    pytest.param({"variants": [1]}, ["variants", "[1]"], id="variant-not-name"),
    pytest.param({"variants": "baseline"}, ["variants must be list[str]", "'baseline'"], id="variants-string"),
    pytest.param(
        {"variant_params": {"pruned": {"target_sparsty": 0.5}}},
        ["'target_sparsty'", "Did you mean 'target_sparsity'?"],
        id="unknown-param",
    ),
    pytest.param(
        {"variant_params": {"prunde": {"target_sparsity": 0.5}}}, ["'prunde'", "Did you mean 'pruned'?"],
        id="params-of-unknown-variant",
    ),
    pytest.param(
        {"variant_params": {"pruned": {"target_sparsity": 1.5}}}, ["pruned.target_sparsity=1.5", "out of range"],
        id="param-above-range",
    ),
    pytest.param(
        {"variant_params": {"baseline": {"patience": -1}}}, ["baseline.patience=-1", "out of range"],
        id="param-below-range",
    ),
    pytest.param(
        {"variant_params": {"baseline": {"max_epochs": 2.5}}}, ["baseline.max_epochs", "2.5"], id="param-float-for-int"
    ),
    pytest.param(
        {"variant_params": {"baseline": {"max_epochs": "5"}}}, ["baseline.max_epochs", "'5'"], id="param-str-for-int"
    ),
    pytest.param(
        {"variant_params": {"baseline": {"max_epochs": True}}}, ["baseline.max_epochs", "True"], id="param-bool-for-int"
    ),
    pytest.param({"variant_params": {"pruned": 0.9}}, ["variant_params.pruned", "0.9"], id="params-not-table"),
    pytest.param({"min_calls": "5"}, ["min_calls", "'5'", "str"], id="str-for-int"),
    pytest.param({"seed": 1.5}, ["seed", "1.5"], id="float-for-int"),
    pytest.param({"quick": 1}, ["quick must be bool", "1"], id="int-for-bool"),
    pytest.param({"min_duration_s": True}, ["min_duration_s", "True"], id="bool-for-float"),
    pytest.param({"limit": "10"}, ["limit must be int or absent", "'10'"], id="str-for-optional-int"),
    pytest.param({"data": None}, ["data must be str", "None"], id="none-for-str"),
    pytest.param({"compare": []}, ["compare must be dict[str, Any]", "[]"], id="list-for-dict"),
    pytest.param({"device": "tpu"}, ["'tpu'", "cpu, gpu"], id="unknown-device"),
    pytest.param({"build_timeout_s": 0}, ["build_timeout_s 0"], id="build-timeout-zero"),
    pytest.param({"measure_timeout_s": -5.0}, ["measure_timeout_s -5.0"], id="measure-timeout-negative"),
    pytest.param({"timeouts_s": {"qat": 0}}, ["timeouts_s.qat = 0"], id="variant-timeout-zero"),
    pytest.param({"timeouts_s": {"qat": "long"}}, ["timeouts_s.qat = 'long'"], id="variant-timeout-str"),
    pytest.param({"timeouts_s": {"qta": 10}}, ["'qta'", "Did you mean 'qat'?"], id="timeout-unknown-variant"),
    pytest.param({"min_calls": 20, "max_calls": 10}, ["max_calls 10", "min_calls 20"], id="max-below-min-calls"),
    pytest.param({"min_calls": 0}, ["min_calls 0"], id="min-calls-zero"),
    pytest.param({"warmup_calls": -1}, ["warmup_calls -1"], id="warmup-negative"),
    pytest.param({"min_duration_s": -0.1}, ["min_duration_s -0.1"], id="duration-negative"),
    pytest.param({"threads": 0}, ["threads 0"], id="threads-zero"),
    pytest.param({"limit": 0}, ["limit 0"], id="limit-zero"),
    pytest.param({"vocab_size": 2}, ["vocab_size 2", "at least 3"], id="vocab-size-two"),
    pytest.param({"seq_len": 0}, ["seq_len 0"], id="seq-len-zero"),
]


@pytest.mark.parametrize(("settings", "expected"), INVALID_SETTINGS)
def test_invalid_setting_raises(settings, expected):
    with pytest.raises(BenchError) as caught:
        SuiteConfig(**settings)

    for text in expected:
        assert text in str(caught.value)


def test_make_config_unknown_key_raises():
    with pytest.raises(BenchError, match="did you mean 'batch_sizes'"):
        make_config({"batch_size": [1]})


def test_make_config_valid():
    assert make_config({"batch_sizes": [8], "variants": ["xla"]}).batch_sizes == [8]


# --- config files -------------------------------------------------------------------------------

SUITE_TOML = """\
data = "chinese-reviews"
batch_sizes = [1, 8]
variants = ["pruned-int8", "xla"]
quick = true
min_duration_s = 0.5

[variant_params.pruned]
target_sparsity = 0.5

[timeouts_s]
qat = 60
"""


def test_toml_file_values(tmp_path):
    path = tmp_path / "suite.toml"
    path.write_text(SUITE_TOML)
    values = load_config_file(path)

    assert values["batch_sizes"] == [1, 8]
    assert values["variant_params"] == {"pruned": {"target_sparsity": 0.5}}


def test_toml_file_builds_config(tmp_path):
    path = tmp_path / "suite.toml"
    path.write_text(SUITE_TOML)
    config = make_config(load_config_file(path))

    assert config.variants == ["baseline", "pruned", "pruned-int8", "xla"]
    assert config.params_for("pruned")["target_sparsity"] == 0.5
    assert config.timeout_for("qat", "build") == 60.0
    assert config.quick is True


def test_json_file_builds_config(tmp_path):
    path = tmp_path / "suite.json"
    path.write_text(json.dumps({"batch_sizes": [2], "variants": ["qat"], "device": "cpu", "limit": None}))
    config = make_config(load_config_file(path))

    assert config.batch_sizes == [2]
    assert config.variants == ["baseline", "qat"]


def test_json_suffix_case_insensitive(tmp_path):
    path = tmp_path / "suite.JSON"
    path.write_text('{"seed": 4}')

    assert load_config_file(path) == {"seed": 4}


def test_empty_toml_file_gives_defaults(tmp_path):
    path = tmp_path / "suite.toml"
    path.write_text("")

    assert make_config(load_config_file(path)) == SuiteConfig()


# (file name, content or None for no file or "<folder>", texts the message must contain)
INVALID_FILES = [
    pytest.param("absent.toml", None, ["absent.toml", "not found", "--config"], id="missing-file"),
    pytest.param("suites", "<folder>", ["suites", "is a folder"], id="folder"),
    pytest.param("broken.toml", "batch_sizes = [1\n", ["broken.toml", "not valid TOML"], id="invalid-toml"),
    pytest.param("broken.json", '{"seed": ', ["broken.json", "not valid JSON"], id="invalid-json"),
    pytest.param("list.json", "[1, 2]", ["list.json", "must be a table"], id="json-not-table"),
    pytest.param("latin1.toml", b'data = "caf\xe9"\n', ["latin1.toml", "cannot read"], id="not-utf8"),
    pytest.param(
        "typo.toml", "batch_sises = [1]\n", ["'batch_sises'", "did you mean 'batch_sizes'?", "Valid settings"],
        id="unknown-key-near",
    ),
    pytest.param("typo.json", '{"seeds": 1}', ["'seeds'", "did you mean 'seed'?"], id="unknown-key-json"),
    pytest.param("odd.toml", "zzzqqq = 1\n", ["'zzzqqq'", "odd.toml. Valid settings: data"], id="unknown-key-far"),
]


@pytest.mark.parametrize(("name", "content", "expected"), INVALID_FILES)
def test_invalid_config_file_raises(tmp_path, name, content, expected):
    path = tmp_path / name
    if content == "<folder>":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)

    with pytest.raises(BenchError) as caught:
        load_config_file(path)

    for text in expected:
        assert text in str(caught.value)


def test_unknown_key_message_lists_every_setting(tmp_path):
    path = tmp_path / "odd.toml"
    path.write_text("zzzqqq = 1\n")

    with pytest.raises(BenchError) as caught:
        load_config_file(path)

    for name in field_names():
        assert name in str(caught.value)
