"""Serve a .tflite file with LiteRT (``ai-edge-litert``), without TensorFlow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter


class LiteRTPredictor:
    def __init__(self, model_path: Path, batch_size: int, seq_len: int, threads: int | None):
        if not model_path.is_file():
            raise FileNotFoundError(f"model file {model_path} not found; build the variant again with bench run")
        try:
            # XNNPACK is applied by default on CPU; num_threads=None keeps LiteRT's default.
            self._interpreter = Interpreter(model_path=str(model_path), num_threads=threads)
        except ValueError as error:
            raise ValueError(
                f"cannot load LiteRT model {model_path}: {error}; the file is truncated or not a "
                ".tflite model, so build the variant again with bench run"
            ) from error
        input_detail = self._interpreter.get_input_details()[0]
        shape = tuple(int(d) for d in input_detail["shape"])
        if shape != (batch_size, seq_len):
            # Models converted with a fixed shape cannot always be resized
            # (XNNPACK fails to reshape a GRU from batch 1 to 64), so a
            # mismatch is an error rather than a silent resize.
            if input_detail["shape_signature"][0] != -1 or shape[1] != seq_len:
                raise ValueError(
                    f"{model_path.name} has input shape {shape}, but batch size "
                    f"{batch_size} and sequence length {seq_len} were requested; "
                    "convert one model per batch size"
                )
            self._interpreter.resize_tensor_input(input_detail["index"], [batch_size, seq_len])
        self._interpreter.allocate_tensors()
        self._input_index = input_detail["index"]
        self._input_dtype = input_detail["dtype"]
        output_detail = self._interpreter.get_output_details()[0]
        self._output_index = output_detail["index"]
        # Full-integer models take and return quantized tensors.
        self._input_quant = input_detail.get("quantization", (0.0, 0))
        self._output_quant = output_detail.get("quantization", (0.0, 0))
        self._output_dtype = output_detail["dtype"]
        thread_text = "default threads" if threads is None else f"{threads} threads"
        self.call_path = (
            f"ai_edge_litert Interpreter.invoke, input [{batch_size}, {seq_len}] "
            f"{np.dtype(self._input_dtype).name}, {thread_text}"
        )

    def __call__(self, token_ids: np.ndarray) -> np.ndarray:
        if token_ids.dtype != self._input_dtype:
            token_ids = token_ids.astype(self._input_dtype)
        self._interpreter.set_tensor(self._input_index, token_ids)
        self._interpreter.invoke()
        output = self._interpreter.get_tensor(self._output_index)
        scale, zero_point = self._output_quant
        if np.issubdtype(self._output_dtype, np.integer) and scale:
            output = (output.astype(np.float32) - zero_point) * scale
        return output.reshape(-1).astype(np.float32)


def load(runtime: str, model_path: Path, batch_size: int, seq_len: int, threads: int | None):
    return LiteRTPredictor(model_path, batch_size, seq_len, threads)
