"""Saved models that are missing, truncated or not models fail with a clear error."""

from __future__ import annotations

import pytest

from textcls.serving import load_predictor


def test_missing_keras_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.keras not found"):
        load_predictor("keras", tmp_path / "absent.keras", batch_size=1, seq_len=8, threads=None)


@pytest.mark.parametrize("content", [b"", b"not a model at all", b"PK\x03\x04truncated"], ids=["empty", "text", "truncated zip"])
def test_broken_keras_model(tmp_path, content):
    path = tmp_path / "model.keras"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="model.keras"):
        load_predictor("keras", path, batch_size=1, seq_len=8, threads=None)


@pytest.mark.parametrize("content", [b"", b"not a flatbuffer"], ids=["empty", "text"])
def test_broken_tflite_model(tmp_path, content):
    path = tmp_path / "model.tflite"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="model.tflite"):
        load_predictor("litert", path, batch_size=1, seq_len=8, threads=None)


def test_missing_tflite_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.tflite not found"):
        load_predictor("litert", tmp_path / "absent.tflite", batch_size=1, seq_len=8, threads=None)


def test_unknown_runtime(tmp_path):
    with pytest.raises(ValueError, match="unknown runtime 'onnx'"):
        load_predictor("onnx", tmp_path / "model.onnx", batch_size=1, seq_len=8, threads=None)
