"""The worker process: builds one variant, or serves and measures one artifact.

Run as ``python -m bench.worker SPEC_JSON``. The spec names the stage
("build" or "measure"), its inputs and ``result_path``, where the worker
writes its JSON result. Logs go to standard error, which the parent streams
to the console and to the variant's log file. A crash, a signal or a hang
here costs the parent one variant, never the run.

For fault-injection tests, ``BENCH_FAULT_INJECTION`` may hold entries
``VARIANT:STAGE:KIND`` separated by commas, KIND being ``raise``, ``abort``
(SIGABRT, as a segfaulting converter would die) or ``hang`` (sleep forever).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from bench.memory import PeakRssSampler, current_rss_bytes
from bench.timing import TimingPlan, time_calls

log = logging.getLogger("bench.worker")

FAULT_ENV = "BENCH_FAULT_INJECTION"
# Distinct timing inputs per batch size: enough that caches do not see one
# input only, few enough to stay in memory for any batch size.
MAX_TIMING_BATCHES = 32


def _inject_fault(variant: str, stage: str) -> None:
    for entry in filter(None, os.environ.get(FAULT_ENV, "").split(",")):
        target, target_stage, kind = entry.split(":")
        if target != variant or target_stage != stage:
            continue
        log.warning("injecting fault %r into %s %s", kind, stage, variant)
        if kind == "raise":
            raise RuntimeError(f"injected fault in {stage} of {variant}")
        if kind == "abort":
            os.abort()
        if kind == "hang":
            while True:
                time.sleep(3600)
        raise ValueError(f"unknown fault kind {kind!r} in {FAULT_ENV}")


def run_build(spec: dict) -> dict:
    from textcls.variants import VariantUnsupported, get_variant
    from textcls.variants.base import BuildContext

    context = spec["context"]
    ctx = BuildContext(
        out_dir=Path(context["out_dir"]),
        splits_path=Path(context["splits_path"]),
        baseline_path=Path(context["baseline_path"]),
        vocab_size=context["vocab_size"],
        seq_len=context["seq_len"],
        batch_sizes=tuple(context["batch_sizes"]),
        seed=context["seed"],
        quick=context["quick"],
        dependency_dirs={name: Path(path) for name, path in context["dependency_dirs"].items()},
    )
    spec_variant = get_variant(spec["variant"])
    builder = spec_variant.load_builder()
    ctx.out_dir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    try:
        artifact = builder(ctx, spec["params"])
    except VariantUnsupported as reason:
        return {"status": "unsupported", "reason": str(reason), "build_time_s": time.perf_counter() - started}
    build_time_s = time.perf_counter() - started
    artifact.save(ctx.out_dir)
    log.info("built %s in %.1f s", spec["variant"], build_time_s)
    return {"status": "ok", "build_time_s": build_time_s}


def timing_batches(token_ids: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Split ``token_ids`` into full batches, tiling the data when it is too short."""
    needed = batch_size * min(MAX_TIMING_BATCHES, max(1, len(token_ids) // batch_size))
    repeats = -(-needed // len(token_ids))
    data = np.ascontiguousarray(np.tile(token_ids, (repeats, 1))[:needed])
    return [data[start : start + batch_size] for start in range(0, needed, batch_size)]


def _predict_all(predictor, token_ids: np.ndarray, batch_size: int) -> np.ndarray:
    """Predict every row with a fixed-batch predictor, zero-padding the last batch."""
    outputs = []
    for start in range(0, len(token_ids), batch_size):
        batch = token_ids[start : start + batch_size]
        rows = len(batch)
        if rows < batch_size:
            batch = np.concatenate([batch, np.zeros((batch_size - rows, batch.shape[1]), batch.dtype)])
        outputs.append(np.asarray(predictor(np.ascontiguousarray(batch))).reshape(-1)[:rows])
    return np.concatenate(outputs)


def run_measure(spec: dict) -> dict:
    from textcls.metrics import classification_metrics
    from textcls.variants.base import Artifact, Splits

    artifact_dir = Path(spec["artifact_dir"])
    artifact = Artifact.load(artifact_dir)
    splits = Splits.load(Path(spec["splits_path"]))
    batch_sizes = list(spec["batch_sizes"])
    plan = TimingPlan(**spec["timing"])
    threads = spec["threads"]
    seq_len = spec["seq_len"]

    # Import the runtime before the first RSS reading, so that the load
    # increase is the model's own and not TensorFlow's (about 600 MB).
    from textcls.serving import load_predictor

    if artifact.runtime.startswith("keras"):
        import textcls.serving.keras_runtime  # noqa: F401
    else:
        import textcls.serving.litert_runtime  # noqa: F401

    result: dict = {"runtime": artifact.runtime, "latency": []}
    with PeakRssSampler() as sampler:
        rss_before = current_rss_bytes()
        predictors = {}
        started = time.perf_counter()
        first = batch_sizes[0]
        predictors[first] = load_predictor(
            artifact.runtime, artifact_dir / artifact.file_for_batch(first), first, seq_len, threads
        )
        result["load_time_s"] = time.perf_counter() - started
        rss_after = current_rss_bytes()
        log.info("loaded %s in %.2f s", artifact_dir.name, result["load_time_s"])

        for batch_size in batch_sizes[1:]:
            predictors[batch_size] = load_predictor(
                artifact.runtime, artifact_dir / artifact.file_for_batch(batch_size), batch_size, seq_len, threads
            )

        for batch_size in batch_sizes:
            predictor = predictors[batch_size]
            timed = time_calls(predictor, timing_batches(splits.x_test, batch_size), plan)
            result["latency"].append(
                {
                    "batch_size": batch_size,
                    "call_path": predictor.call_path,
                    "first_call_s": timed.first_call_s,
                    "warmup_s": timed.warmup_s,
                    "samples_s": timed.samples_s,
                }
            )
            median_ms = 1000 * float(np.median(timed.samples_s))
            log.info("batch %d: %d calls, median %.3f ms", batch_size, len(timed.samples_s), median_ms)

        # Accuracy after timing, so that evaluation does not warm the timed
        # call. The runner's later timing processes skip it: it does not change.
        if spec.get("evaluate", True):
            largest = max(batch_sizes)
            probabilities = _predict_all(predictors[largest], splits.x_test, largest)
            result["accuracy"] = classification_metrics(splits.y_test, probabilities)
            log.info("test accuracy %.4f", result["accuracy"]["accuracy"])

    result["memory"] = {
        "rss_before_load_bytes": rss_before,
        "rss_after_load_bytes": rss_after,
        "load_increase_bytes": rss_after - rss_before,
        "peak_rss_bytes": sampler.peak_bytes,
        "gpu_peak_bytes": _gpu_peak_bytes() if spec["device"] == "gpu" else None,
    }
    return result


def _gpu_peak_bytes():
    if "tensorflow" not in sys.modules:
        return None
    from textcls.tf_env import tf

    if not tf.config.list_physical_devices("GPU"):
        return None
    return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    if len(argv) != 1:
        print("usage: python -m bench.worker SPEC_JSON", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[0]).read_text())
    result_path = Path(spec["result_path"])
    try:
        # Fault injection names the runner's later timing-only processes "timing".
        timing_only = spec["stage"] == "measure" and not spec.get("evaluate", True)
        _inject_fault(spec["variant"], "timing" if timing_only else spec["stage"])
        if spec["stage"] == "build":
            result = run_build(spec)
        else:
            result = run_measure(spec)
    except Exception as error:  # noqa: BLE001 - reported to the parent, which records it
        text = traceback.format_exc()
        log.error("%s failed: %s: %s\n%s", spec["stage"], type(error).__name__, error, text)
        result_path.write_text(json.dumps({"status": "error", "error": f"{type(error).__name__}: {error}", "traceback": text}))
        return 1
    result_path.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
