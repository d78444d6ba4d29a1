"""Train the baseline model; every other variant starts from its saved file."""

from __future__ import annotations

import logging
import time

from textcls.metrics import classification_metrics
from textcls.model import (
    ModelConfig,
    build_model,
    compile_for_training,
    fit,
    predict_probabilities,
    save_for_serving,
)
from textcls.variants.base import Artifact, BuildContext

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"


def build(ctx: BuildContext, params: dict) -> Artifact:
    splits = ctx.load_splits()
    config = ModelConfig(
        vocab_size=ctx.vocab_size,
        seq_len=ctx.seq_len,
        embedding_dim=params["embedding_dim"],
        gru_units=params["gru_units"],
    )
    model = build_model(config)
    compile_for_training(model, params["learning_rate"])
    log.info(
        "training the baseline on %d texts (validation %d), at most %d epochs",
        len(splits.x_train), len(splits.x_val), params["max_epochs"],
    )
    started = time.perf_counter()
    history = fit(
        model,
        splits,
        max_epochs=params["max_epochs"],
        patience=params["patience"],
        batch_size=params["train_batch_size"],
        seed=ctx.seed,
    )
    training_s = time.perf_counter() - started
    validation = classification_metrics(splits.y_val, predict_probabilities(model, splits.x_val))
    log.info("trained %d epochs in %.1f s, validation accuracy %.4f",
             len(history["loss"]), training_s, validation["accuracy"])

    save_for_serving(model, ctx.out_dir / MODEL_FILE)
    return Artifact(
        runtime="keras",
        model_file=MODEL_FILE,
        details={
            "epochs_trained": len(history["loss"]),
            "training_s": round(training_s, 3),
            "validation_accuracy": round(validation["accuracy"], 4),
            "parameters": int(model.count_params()),
        },
    )
