"""The baseline classifier: build, train with early stopping, predict."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from textcls.tf_env import keras, tf
from textcls.variants.base import Splits

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    seq_len: int
    embedding_dim: int = 16
    gru_units: int = 32


def build_model(config: ModelConfig) -> keras.Model:
    """Build Embedding -> Bidirectional(GRU) -> Dense(1, sigmoid).

    Token id 0 is padding and is masked, so the GRU skips it whichever end
    of the sequence it sits at.
    """
    inputs = keras.Input(shape=(config.seq_len,), dtype="int32", name="token_ids")
    x = keras.layers.Embedding(
        config.vocab_size, config.embedding_dim, mask_zero=True, name="embedding"
    )(inputs)
    x = keras.layers.Bidirectional(keras.layers.GRU(config.gru_units), name="bigru")(x)
    # float32 output keeps the sigmoid stable under mixed precision policies.
    outputs = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="classifier")(x)
    return keras.Model(inputs, outputs, name="bigru_classifier")


def compile_for_training(model: keras.Model, learning_rate: float) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )


class ProgressLog(keras.callbacks.Callback):
    """Log one line per epoch, because Keras' progress bar floods a log file."""

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        text = ", ".join(f"{key}={value:.4f}" for key, value in sorted(logs.items()))
        log.info("epoch %d: %s", epoch + 1, text)


def fit(
    model: keras.Model,
    splits: Splits,
    *,
    max_epochs: int,
    patience: int,
    batch_size: int,
    seed: int,
    callbacks: list | None = None,
) -> dict:
    """Train on the training split with early stopping on validation loss.

    Returns the Keras history (metric name -> list per epoch).
    """
    keras.utils.set_random_seed(seed)
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=patience, restore_best_weights=True
    )
    history = model.fit(
        splits.x_train,
        splits.y_train,
        validation_data=(splits.x_val, splits.y_val),
        epochs=max_epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=0,
        callbacks=[early_stopping, ProgressLog(), *(callbacks or [])],
    )
    return history.history


def save_for_serving(model: keras.Model, path) -> None:
    """Save ``model`` in the native Keras format without optimizer state.

    The .keras format stores a compiled model's optimizer variables (twice
    the weights for Adam); a serving artifact needs only the weights.
    """
    serving = keras.models.clone_model(model)
    serving.set_weights(model.get_weights())
    serving.save(path)


def predict_probabilities(model: keras.Model, token_ids: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Predict in bulk (for evaluation, not for latency measurement)."""
    serve = tf.function(lambda x: model(x, training=False))
    outputs = [
        np.asarray(serve(tf.constant(token_ids[start : start + batch_size]))).reshape(-1)
        for start in range(0, len(token_ids), batch_size)
    ]
    return np.concatenate(outputs).astype(np.float32)
