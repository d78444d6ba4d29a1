"""Serve a native Keras model through a tf.function with a fixed input signature.

``model.predict`` costs 40-60 ms per call at batch 1 on a 2-core CPU against
about 1.2 ms for this tf.function, so it is never the measured call.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from textcls.tf_env import keras, tf
from textcls import layers as _custom_layers  # noqa: F401  registers custom layers for loading


def load_model(model_path: Path):
    """Load a native Keras model without running code stored in it (safe mode).

    Raises FileNotFoundError for a missing file and ValueError for a file
    that is not a loadable model, each naming the file.
    """
    path = Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} not found; build the variant again with bench run")
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not a valid .keras file (the format is a zip archive; this file is "
            "truncated or of another format); build the variant again with bench run"
        )
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"cannot load Keras model {path}: {error}") from error


class KerasPredictor:
    def __init__(self, model, batch_size: int, seq_len: int, jit_compile: bool):
        signature = [tf.TensorSpec([batch_size, seq_len], tf.int32, name="token_ids")]

        def serve(token_ids):
            return tf.reshape(tf.cast(model(token_ids, training=False), tf.float32), [-1])

        self._function = tf.function(serve, input_signature=signature, jit_compile=jit_compile)
        jit_text = ", jit_compile=True (XLA)" if jit_compile else ""
        self.call_path = (
            f"tf.function(model(x, training=False), input_signature=[{batch_size}, {seq_len}] int32"
            f"{jit_text})"
        )

    def __call__(self, token_ids: np.ndarray) -> np.ndarray:
        return self._function(token_ids).numpy()


_loaded: dict[Path, object] = {}


def load(runtime: str, model_path: Path, batch_size: int, seq_len: int, threads: int | None):
    if threads is not None and model_path not in _loaded and not _loaded:
        # Thread pools can be set only before TensorFlow runs its first op.
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    # One worker serves one model at several batch sizes: load it once.
    if model_path not in _loaded:
        _loaded[model_path] = load_model(model_path)
    return KerasPredictor(_loaded[model_path], batch_size, seq_len, jit_compile=runtime == "keras-xla")
