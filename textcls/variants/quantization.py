"""Post-training quantization to .tflite files served by LiteRT.

Each variant writes one fixed-shape file per measured batch size (see
``textcls.variants.tflite`` for why). ``model_file`` is the file for the
smallest batch size, so the reported model size is that file's.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from textcls.metrics import classification_metrics
from textcls.serving import load_predictor
from textcls.variants.base import Artifact, BuildContext, Splits
from textcls.variants.tflite import ConversionFailed, ConversionRequest, convert_in_subprocess, describe_tflite

log = logging.getLogger(__name__)


def tflite_file_name(batch_size: int) -> str:
    return f"model_b{batch_size}.tflite"


def build_float32(ctx: BuildContext, params: dict) -> Artifact:
    return convert_variant(ctx, ctx.baseline_path, "float32", params)


def build_dynamic_int8(ctx: BuildContext, params: dict) -> Artifact:
    return convert_variant(ctx, ctx.baseline_path, "dynamic-int8", params)


def build_float16(ctx: BuildContext, params: dict) -> Artifact:
    return convert_variant(ctx, ctx.baseline_path, "float16", params)


def build_full_int8(ctx: BuildContext, params: dict) -> Artifact:
    return convert_variant(ctx, ctx.baseline_path, "int8", params)


def convert_variant(ctx: BuildContext, model_path: Path, mode: str, params: dict) -> Artifact:
    """Convert ``model_path`` for every batch size of ``ctx`` and describe the result.

    ``params`` may set ``gru_graph``, ``paired_max_batch``, ``per_channel``,
    ``strip_tensor_names`` and, for mode ``int8``,
    ``representative_samples``. In mode ``int8`` with the ``while-loop``
    graph, the unrolled GRU is converted instead when the converter crashes,
    as TF 2.21's does.
    """
    splits = ctx.load_splits()
    batch_sizes = sorted(set(ctx.batch_sizes))
    gru_graph = params.get("gru_graph", "while-loop")
    details: dict = {"conversion_mode": mode, "source_model": Path(model_path).name}
    notes: list[str] = []

    with tempfile.TemporaryDirectory(prefix="representative-") as scratch:
        representative_path = None
        if mode == "int8":
            representative_path = Path(scratch) / "representative.npy"
            samples = representative_sample(splits, params["representative_samples"], ctx.seed)
            np.save(representative_path, samples)

        def request(graph: str) -> ConversionRequest:
            return ConversionRequest(
                model_path=str(model_path),
                output_paths={size: str(ctx.out_dir / tflite_file_name(size)) for size in batch_sizes},
                seq_len=ctx.seq_len,
                mode=mode,
                gru_graph=graph,
                paired_max_batch=params.get("paired_max_batch", 1),
                per_channel=params.get("per_channel", True),
                strip_tensor_names=params.get("strip_tensor_names", True),
                representative_path=str(representative_path) if representative_path else None,
            )

        started = time.perf_counter()
        try:
            settings = convert_in_subprocess(request(gru_graph))
        except ConversionFailed as error:
            # Only the full-integer calibrator is known to crash on the loop.
            if mode != "int8" or gru_graph != "while-loop" or error.signal_name is None:
                raise
            log.warning("%s; converting the unrolled GRU instead", error)
            details["while_loop_conversion_error"] = str(error)
            notes.append(
                f"Full-integer conversion of the GRU's while loop crashed ({error.signal_name}); "
                "the GRU was unrolled (same weights) for every batch size."
            )
            settings = convert_in_subprocess(request("unrolled"))
        details["conversion_s"] = round(time.perf_counter() - started, 3)

    files_by_batch = {batch_size: tflite_file_name(batch_size) for batch_size in batch_sizes}
    model_file = files_by_batch[batch_sizes[0]]
    details["converter_settings"] = settings
    details["tflite"] = describe_tflite(ctx.out_dir / model_file)
    details["file_bytes_by_batch"] = {
        batch_size: (ctx.out_dir / name).stat().st_size for batch_size, name in files_by_batch.items()
    }
    details.update(evaluate_litert(ctx.out_dir / files_by_batch[batch_sizes[-1]], batch_sizes[-1], splits, ctx.seq_len))
    log.info("%s: %s weights, validation accuracy %.4f", mode,
             details["tflite"]["weight_types"], details["validation_accuracy"])
    return Artifact(
        runtime="litert",
        model_file=model_file,
        files_by_batch=files_by_batch,
        details=details,
        notes=notes,
    )


def representative_sample(splits: Splits, samples: int, seed: int) -> np.ndarray:
    """Draw ``samples`` training texts (all of them if fewer) for calibration."""
    rng = np.random.default_rng(seed)
    count = min(samples, len(splits.x_train))
    chosen = rng.choice(len(splits.x_train), size=count, replace=False)
    return splits.x_train[np.sort(chosen)].astype(np.int32)


def predict_litert(model_path: Path, batch_size: int, token_ids: np.ndarray, seq_len: int) -> np.ndarray:
    """Predict all rows with a fixed-batch .tflite file, padding the last batch."""
    predictor = load_predictor("litert", model_path, batch_size, seq_len, threads=None)
    outputs = []
    for start in range(0, len(token_ids), batch_size):
        batch = token_ids[start : start + batch_size]
        rows = len(batch)
        if rows < batch_size:
            batch = np.concatenate([batch, np.zeros((batch_size - rows, seq_len), batch.dtype)])
        outputs.append(predictor(batch.astype(np.int32))[:rows])
    return np.concatenate(outputs)


def evaluate_litert(model_path: Path, batch_size: int, splits: Splits, seq_len: int) -> dict:
    """Return the validation accuracy of a .tflite file, as a check of the conversion."""
    probabilities = predict_litert(model_path, batch_size, splits.x_val, seq_len)
    metrics = classification_metrics(splits.y_val, probabilities)
    return {"validation_accuracy": round(metrics["accuracy"], 4)}
