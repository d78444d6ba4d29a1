"""The baseline model served through ``tf.function(jit_compile=True)``.

The artifact is the baseline file itself; only the serving call differs
(runtime ``keras-xla``). XLA compiles the function on its first call for
each input shape, so the compile time appears in the harness as the first
call of each batch size, kept apart from steady-state latency.
"""

from __future__ import annotations

import logging
import os
import shutil
import time

import numpy as np

from textcls.serving import load_predictor
from textcls.variants.base import Artifact, BuildContext

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"


def build(ctx: BuildContext, params: dict) -> Artifact:
    target = ctx.out_dir / MODEL_FILE
    try:
        # A hard link costs no space; it fails across file systems.
        os.link(ctx.baseline_path, target)
        link_kind = "hard link"
    except OSError:
        shutil.copy2(ctx.baseline_path, target)
        link_kind = "copy"

    # Compile once here so that a model XLA cannot compile fails the build,
    # not every measurement.
    batch_size = min(ctx.batch_sizes)
    predictor = load_predictor("keras-xla", target, batch_size, ctx.seq_len, threads=None)
    token_ids = ctx.load_splits().x_val[:batch_size]
    started = time.perf_counter()
    probabilities = predictor(np.ascontiguousarray(token_ids, dtype=np.int32))
    first_call_s = time.perf_counter() - started
    if not np.all(np.isfinite(probabilities)):
        raise ValueError(f"the XLA-compiled baseline returned non-finite outputs: {probabilities}")
    log.info("XLA compiled the baseline for batch %d; first call %.2f s", batch_size, first_call_s)

    return Artifact(
        runtime="keras-xla",
        model_file=MODEL_FILE,
        details={
            "artifact": f"the baseline's {MODEL_FILE} ({link_kind})",
            "serving_call": "tf.function(jit_compile=True) with a fixed input signature per batch size",
            "build_check_first_call_s": round(first_call_s, 3),
        },
        notes=[
            "XLA compiles on the first call of each batch size; that compile time is "
            "reported as the first-call time, not in steady-state latency.",
        ],
    )
