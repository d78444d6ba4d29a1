"""Load a built artifact for serving, by its runtime.

This package imports TensorFlow only for the Keras runtimes: a LiteRT
artifact is served without it, as it would be deployed.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol

import numpy as np

_RUNTIME_MODULES = {
    "keras": "textcls.serving.keras_runtime",
    "keras-xla": "textcls.serving.keras_runtime",
    "litert": "textcls.serving.litert_runtime",
}


class Predictor(Protocol):
    """A serving call for one fixed batch size.

    ``call_path`` describes in words which call is made, for the report.
    Calling it with int32 token ids of shape [batch_size, seq_len] returns
    float32 probabilities of the positive class, shape [batch_size].
    """

    call_path: str

    def __call__(self, token_ids: np.ndarray) -> np.ndarray: ...


def load_predictor(
    runtime: str, model_path: Path, batch_size: int, seq_len: int, threads: int | None
) -> Predictor:
    """Load ``model_path`` and prepare its serving call for ``batch_size``.

    ``threads`` caps the runtime's thread pool; None keeps its default.
    The first call may still trace or compile; the caller times it apart.
    """
    try:
        module_name = _RUNTIME_MODULES[runtime]
    except KeyError:
        raise ValueError(
            f"unknown runtime {runtime!r}; expected one of {', '.join(_RUNTIME_MODULES)}"
        ) from None
    module = importlib.import_module(module_name)
    return module.load(runtime, Path(model_path), batch_size, seq_len, threads)
