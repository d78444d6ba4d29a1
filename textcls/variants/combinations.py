"""Pruning and weight clustering followed by int8 conversion, served by LiteRT.

Zeros (pruning) and a few distinct values per tensor (clustering) do not
make a float32 file smaller, but they survive int8 quantization as runs
and repeats of int8 codes, which gzip compresses well. These variants
therefore give the smallest gzip sizes. Each tries dynamic-range and
full-integer int8 (see ``textcls.variants.quantization``) and keeps the
one with the smaller gzip size among those whose validation accuracy stays
within ``max_accuracy_drop`` of the Keras model they were converted from.
"""

from __future__ import annotations

import dataclasses
import gzip
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import tensorflow_model_optimization as tfmot

from textcls.metrics import classification_metrics
from textcls.model import predict_probabilities
from textcls.serving.keras_runtime import load_model
from textcls.tf_env import keras
from textcls.variants.base import Artifact, BuildContext, Splits
from textcls.variants.quantization import convert_variant
from textcls.variants.tflite import ConversionFailed
from textcls.variants.wrapping import (
    build_serving_model,
    build_training_model,
    fine_tune,
    kernel_sparsity,
)

log = logging.getLogger(__name__)

CONVERSION_CHOICES = ("smallest", "dynamic-int8", "int8")

# A layer is clustered only if each kernel has at least this many nonzero
# values per cluster.
MIN_VALUES_PER_CLUSTER = 4
CANDIDATES_FOLDER = "candidates"
SOURCE_MODEL_FILE = "source.keras"


def build_pruned_int8(ctx: BuildContext, params: dict) -> Artifact:
    """Convert the ``pruned`` variant's model to int8."""
    pruned_path = dependency_model(ctx, "pruned")
    return convert_to_smallest_int8(ctx, pruned_path, params, extra_details={"source_variant": "pruned"})


def build_clustered_int8(ctx: BuildContext, params: dict) -> Artifact:
    """Cluster the baseline's kernels, fine-tune, strip and convert to int8."""
    baseline = load_model(ctx.baseline_path)
    return cluster_and_convert(ctx, baseline, params, preserve_sparsity=False, source_variant="baseline")


def build_pruned_clustered_int8(ctx: BuildContext, params: dict) -> Artifact:
    """Cluster the ``pruned`` variant's kernels keeping their zeros, then convert to int8."""
    pruned = load_model(dependency_model(ctx, "pruned"))
    return cluster_and_convert(ctx, pruned, params, preserve_sparsity=True, source_variant="pruned")


def dependency_model(ctx: BuildContext, name: str) -> Path:
    """Return the model file of the dependency ``name``'s artifact."""
    folder = ctx.dependency_dirs.get(name)
    if folder is None:
        raise ValueError(
            f"the artifact folder of variant {name!r} is missing from the build context "
            f"(it has {sorted(ctx.dependency_dirs) or 'none'}); build {name!r} first"
        )
    artifact = Artifact.load(Path(folder))
    if artifact.runtime not in ("keras", "keras-xla"):
        raise ValueError(f"variant {name!r} has runtime {artifact.runtime!r}; a Keras model is needed")
    return Path(folder) / artifact.model_file


def cluster_and_convert(
    ctx: BuildContext, source: keras.Model, params: dict, *, preserve_sparsity: bool, source_variant: str
) -> Artifact:
    splits = ctx.load_splits()
    epochs = min(1, params["fine_tune_epochs"]) if ctx.quick else params["fine_tune_epochs"]
    started = time.perf_counter()
    clustered, unclustered_layers = cluster_model(
        source,
        splits,
        clusters=params["clusters"],
        preserve_sparsity=preserve_sparsity,
        epochs=epochs,
        batch_size=params["train_batch_size"],
        learning_rate=params["learning_rate"],
        seed=ctx.seed,
    )
    fine_tune_s = time.perf_counter() - started

    # The converter reads a saved file; this one also lets a reader inspect
    # the clustered float model.
    source_path = ctx.out_dir / SOURCE_MODEL_FILE
    clustered.save(source_path)
    details = {
        "source_variant": source_variant,
        "clusters": params["clusters"],
        "preserve_sparsity": preserve_sparsity,
        "fine_tune_epochs": epochs,
        "fine_tune_s": round(fine_tune_s, 3),
        "unclustered_layers": unclustered_layers,
        "distinct_values": distinct_values(clustered),
        "kernel_sparsity": kernel_sparsity(clustered),
    }
    return convert_to_smallest_int8(ctx, source_path, params, extra_details=details)


def cluster_model(
    source: keras.Model,
    splits: Splits,
    *,
    clusters: int,
    preserve_sparsity: bool,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
) -> tuple[keras.Model, dict[str, str]]:
    """Cluster every kernel of a copy of ``source``, fine-tune it and strip the wrappers.

    ``source`` itself is not changed. With ``preserve_sparsity`` the zeros
    of a pruned model stay zeros and are not counted among the clusters.
    Returns the clustered model and the layers left unclustered, with the
    reason.
    """
    # tfmot's clustering registry matches exact classes, so a pruned model's
    # PrunableBidirectional is clustered as a plain Bidirectional.
    recurrent_class = keras.layers.Bidirectional

    skipped = {}

    def wrap(layer):
        nonzero = min_nonzero_kernel_values(layer)
        if nonzero < MIN_VALUES_PER_CLUSTER * clusters:
            # tfmot's k-means++ initialization fails when a tensor has fewer
            # values than clusters. With preserve_sparsity it splits the
            # clusters between negative and positive values, so each sign
            # needs enough values too. Such a small layer stays unclustered.
            skipped[layer.name] = f"{nonzero} nonzero kernel values for {clusters} clusters"
            return layer
        return tfmot.clustering.keras.cluster_weights(
            layer,
            number_of_clusters=clusters,
            cluster_centroids_init=tfmot.clustering.keras.CentroidInitialization.KMEANS_PLUS_PLUS,
            preserve_sparsity=preserve_sparsity,
        )

    training_model = build_training_model(source, wrap, recurrent_class=recurrent_class)
    if epochs:
        fine_tune(
            training_model,
            splits,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
        )
    stripped = tfmot.clustering.keras.strip_clustering(training_model)
    return build_serving_model(source, stripped, recurrent_class=recurrent_class), skipped


def min_nonzero_kernel_values(layer: keras.layers.Layer) -> int:
    """Return the smallest count of nonzero values among the layer's kernels."""
    counts = [
        int(np.count_nonzero(weight.numpy()))
        for weight in layer.weights
        if weight.name.split(":")[0].endswith(("kernel", "embeddings"))
    ]
    return min(counts, default=0)


def distinct_values(model: keras.Model) -> dict[str, int]:
    """Count the distinct values of every kernel and embedding matrix."""
    counts = {}
    for weight in model.weights:
        name = weight.name.split(":")[0]
        if name.endswith(("kernel", "embeddings")):
            counts[name] = int(len(set(weight.numpy().ravel().tolist())))
    return counts


def gzip_size(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9))


def convert_to_smallest_int8(ctx: BuildContext, model_path: Path, params: dict, extra_details: dict) -> Artifact:
    """Convert ``model_path`` to dynamic-range and full-integer int8 and keep the better file.

    Each candidate is built in its own folder under ``candidates/``. The
    chosen one's files move into the artifact folder and the folder is
    removed. ``params["conversion"]`` may force one mode.
    """
    choice = params.get("conversion", "smallest")
    if choice not in CONVERSION_CHOICES:
        raise ValueError(
            f"conversion={choice!r} is not supported; use one of {', '.join(CONVERSION_CHOICES)}"
        )
    modes = ["dynamic-int8", "int8"] if choice == "smallest" else [choice]
    splits = ctx.load_splits()
    source_accuracy = classification_metrics(
        splits.y_val, predict_probabilities(load_model(model_path), splits.x_val)
    )["accuracy"]
    max_drop = params.get("max_accuracy_drop", 0.01)

    candidates = {}
    for mode in modes:
        folder = ctx.out_dir / CANDIDATES_FOLDER / mode
        folder.mkdir(parents=True)
        candidate_ctx = dataclasses.replace(ctx, out_dir=folder)
        try:
            artifact = convert_variant(candidate_ctx, model_path, mode, params)
        except ConversionFailed as error:
            log.warning("%s conversion failed: %s", mode, error)
            candidates[mode] = {"error": str(error)}
            continue
        drop = source_accuracy - artifact.details["validation_accuracy"]
        candidates[mode] = {
            "artifact": artifact,
            "gzip_bytes": gzip_size(folder / artifact.model_file),
            "file_bytes": (folder / artifact.model_file).stat().st_size,
            "validation_accuracy": artifact.details["validation_accuracy"],
            "accurate_enough": drop <= max_drop,
        }

    usable = {mode: c for mode, c in candidates.items() if "artifact" in c and c["accurate_enough"]}
    if not usable:
        summary = {mode: {k: v for k, v in c.items() if k != "artifact"} for mode, c in candidates.items()}
        raise RuntimeError(
            f"no int8 conversion of {model_path.name} converted with validation accuracy within "
            f"{max_drop:g} of the source model's {source_accuracy:.4f}: {summary}"
        )
    chosen_mode = min(usable, key=lambda mode: (usable[mode]["gzip_bytes"], mode))
    chosen = usable[chosen_mode]["artifact"]

    chosen_folder = ctx.out_dir / CANDIDATES_FOLDER / chosen_mode
    for name in set(chosen.files_by_batch.values()) | {chosen.model_file}:
        shutil.move(str(chosen_folder / name), str(ctx.out_dir / name))
    shutil.rmtree(ctx.out_dir / CANDIDATES_FOLDER)

    chosen.details = {
        **extra_details,
        **chosen.details,
        "source_validation_accuracy": round(source_accuracy, 4),
        "chosen_conversion": chosen_mode,
        "candidates": {
            mode: {key: value for key, value in candidate.items() if key != "artifact"}
            for mode, candidate in candidates.items()
        },
    }
    log.info("chose %s for %s: %s", chosen_mode, model_path.name, chosen.details["candidates"])
    return chosen
