"""Magnitude pruning of every kernel, fine-tuned from the trained baseline.

The embedding matrix, the input and recurrent kernels of both GRU
directions and the classifier kernel are pruned to the target sparsity with
tfmot's polynomial schedule. The wrappers are then stripped and the model is
saved in the baseline's architecture, with ``PrunableBidirectional`` in
place of ``Bidirectional``. The saved kernels are dense float32 arrays with
zeros, so the file shrinks only under compression (the report's gzip size)
or after an int8 conversion that keeps the zeros (``pruned-int8``).
"""

from __future__ import annotations

import logging
import math
import time

import tensorflow_model_optimization as tfmot

from textcls.layers import PrunableBidirectional
from textcls.metrics import classification_metrics
from textcls.model import predict_probabilities
from textcls.serving.keras_runtime import load_model
from textcls.tf_env import keras
from textcls.variants.base import Artifact, BuildContext, Splits
from textcls.variants.wrapping import (
    build_serving_model,
    build_training_model,
    fine_tune,
    kernel_sparsity,
)

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"

# Pruning masks are updated about this many times on the way to the target.
MASK_UPDATES = 20

# Makes isinstance(layer, PrunableLayer) true, as tfmot's own registry checks.
tfmot.sparsity.keras.PrunableLayer.register(PrunableBidirectional)


def pruning_schedule(
    target_sparsity: float, epochs: int, steps_per_epoch: int
) -> tfmot.sparsity.keras.PolynomialDecay:
    """Return a schedule that reaches ``target_sparsity`` before training ends.

    With two or more epochs the target is reached at the end of the
    second-to-last epoch, so the last epoch recovers accuracy at the final
    sparsity. With one epoch it is reached after two thirds of it.
    """
    total_steps = epochs * steps_per_epoch
    if epochs >= 2:
        end_step = (epochs - 1) * steps_per_epoch
    else:
        end_step = max(1, (2 * total_steps) // 3)
    frequency = max(1, end_step // MASK_UPDATES)
    # The last mask update happens at a multiple of the frequency, so the
    # end step is rounded down to one: otherwise the target is never set.
    end_step = max(frequency, frequency * (end_step // frequency))
    return tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0,
        final_sparsity=target_sparsity,
        begin_step=0,
        end_step=end_step,
        frequency=frequency,
    )


def prune_model(
    baseline: keras.Model,
    splits: Splits,
    *,
    target_sparsity: float,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
) -> tuple[keras.Model, dict]:
    """Prune and fine-tune a copy of ``baseline``; return it and the schedule facts.

    The returned model has the baseline's architecture with
    ``PrunableBidirectional`` and no tfmot wrappers.
    """
    steps_per_epoch = math.ceil(len(splits.x_train) / batch_size)
    schedule = pruning_schedule(target_sparsity, epochs, steps_per_epoch)

    def wrap(layer):
        return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)

    training_model = build_training_model(baseline, wrap, recurrent_class=PrunableBidirectional)
    history = fine_tune(
        training_model,
        splits,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
    )
    stripped = tfmot.sparsity.keras.strip_pruning(training_model)
    pruned = build_serving_model(baseline, stripped, recurrent_class=PrunableBidirectional)
    facts = {
        "schedule": {
            "kind": "PolynomialDecay",
            "initial_sparsity": 0.0,
            "final_sparsity": target_sparsity,
            "end_step": schedule.end_step,
            "frequency": schedule.frequency,
            "steps_per_epoch": steps_per_epoch,
        },
        "fine_tune_epochs": epochs,
        "final_val_accuracy": round(float(history["val_accuracy"][-1]), 4),
    }
    return pruned, facts


def build(ctx: BuildContext, params: dict) -> Artifact:
    splits = ctx.load_splits()
    baseline = load_model(ctx.baseline_path)
    epochs = 1 if ctx.quick else params["fine_tune_epochs"]

    started = time.perf_counter()
    pruned, facts = prune_model(
        baseline,
        splits,
        target_sparsity=params["target_sparsity"],
        epochs=epochs,
        batch_size=params["train_batch_size"],
        learning_rate=params["learning_rate"],
        seed=ctx.seed,
    )
    fine_tune_s = time.perf_counter() - started

    sparsity = kernel_sparsity(pruned)
    validation = classification_metrics(splits.y_val, predict_probabilities(pruned, splits.x_val))
    log.info("pruned in %.1f s, validation accuracy %.4f, kernel sparsity %s",
             fine_tune_s, validation["accuracy"], sparsity)

    pruned.save(ctx.out_dir / MODEL_FILE)
    return Artifact(
        runtime="keras",
        model_file=MODEL_FILE,
        details={
            **facts,
            "learning_rate": params["learning_rate"],
            "fine_tune_s": round(fine_tune_s, 3),
            "validation_accuracy": round(validation["accuracy"], 4),
            "kernel_sparsity": sparsity,
        },
        notes=[
            "Zeros are stored as dense float32 values: the raw size equals the "
            "baseline's weights, and only the gzip size shows the pruning.",
        ],
    )
