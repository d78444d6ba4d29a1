"""Rebuild the baseline around tfmot wrappers without losing the padding mask.

tfmot's layer wrappers (``PruneLowMagnitude``, ``ClusterWeights`` in tfmot
0.8.1) do not implement ``compute_mask``. Wrapping the ``Embedding`` layer
therefore drops the mask that ``mask_zero=True`` produces, and the GRU then
reads padding as tokens: on the baseline this moved predicted probabilities
by up to 0.8. ``tfmot.sparsity.keras.prune_low_magnitude(model)`` and
``tfmot.clustering.keras.cluster_weights(model)`` applied to the whole model
have this defect. The training graph built here computes the mask from the
token ids and passes it to the recurrent layer explicitly. After training,
the weights go back into a model with the baseline's own architecture, which
is what the variant saves.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np

from textcls.model import ProgressLog
from textcls.tf_env import keras, tf
from textcls.variants.base import Splits

log = logging.getLogger(__name__)

PADDING_ID = 0


@dataclass(frozen=True)
class ClassifierLayers:
    """The three layers with weights of the baseline, in call order."""

    embedding: keras.layers.Embedding
    recurrent: keras.layers.Bidirectional
    classifier: keras.layers.Dense


def find_layers(model: keras.Model) -> ClassifierLayers:
    """Find the Embedding, Bidirectional and Dense layers of a baseline-shaped model.

    Raises ValueError when the model does not have exactly one of each,
    because the rebuild below assumes the baseline's layer chain.
    """
    found = {}
    for kind in (keras.layers.Embedding, keras.layers.Bidirectional, keras.layers.Dense):
        matches = [layer for layer in model.layers if isinstance(layer, kind)]
        if len(matches) != 1:
            names = [layer.name for layer in model.layers]
            raise ValueError(
                f"expected one {kind.__name__} layer in model {model.name!r}, found "
                f"{len(matches)} among {names}; the variant builders support only the "
                "baseline's Embedding -> Bidirectional -> Dense chain"
            )
        found[kind] = matches[0]
    return ClassifierLayers(
        embedding=found[keras.layers.Embedding],
        recurrent=found[keras.layers.Bidirectional],
        classifier=found[keras.layers.Dense],
    )


def copy_layer(layer: keras.layers.Layer, input_shape, layer_class=None) -> keras.layers.Layer:
    """Return a new built layer with the config and weights of ``layer``.

    ``layer_class`` replaces the layer's own class, for example to turn a
    ``Bidirectional`` into a ``PrunableBidirectional``. The copy is built
    before it returns because tfmot's clustering wrapper computes its
    centroids from the weights that the layer holds when it is wrapped.
    """
    cls = layer_class or layer.__class__
    copy = cls.from_config(layer.get_config())
    copy.build(input_shape)
    copy.set_weights(layer.get_weights())
    return copy


def build_training_model(
    model: keras.Model,
    wrap: Callable[[keras.layers.Layer], keras.layers.Layer],
    recurrent_class=None,
) -> keras.Model:
    """Build a copy of ``model`` with ``wrap`` applied to each layer with weights.

    The padding mask is computed from the token ids and passed to the
    recurrent layer as ``mask=``, so it survives wrappers that drop it. The
    copy shares no variables with ``model``. It is meant for fine-tuning
    only and is never saved, because its mask is a TensorFlow op layer.
    """
    layers = find_layers(model)
    seq_len = model.input_shape[1]
    embedding_dim = layers.embedding.output_dim

    token_ids = keras.Input(shape=(seq_len,), dtype="int32", name=model.input_names[0])
    embedding = copy_layer(layers.embedding, (None, seq_len))
    recurrent = copy_layer(layers.recurrent, (None, seq_len, embedding_dim), recurrent_class)
    classifier = copy_layer(layers.classifier, recurrent.compute_output_shape((None, seq_len, embedding_dim)))

    embedded = wrap(embedding)(token_ids)
    mask = tf.not_equal(token_ids, PADDING_ID)
    encoded = wrap(recurrent)(embedded, mask=mask)
    outputs = wrap(classifier)(encoded)
    return keras.Model(token_ids, outputs, name=f"{model.name}_training")


def build_serving_model(
    baseline: keras.Model, trained: keras.Model, recurrent_class=None
) -> keras.Model:
    """Return a model with the baseline's architecture and the weights of ``trained``.

    ``trained`` is a training model from :func:`build_training_model` after
    tfmot's ``strip_*`` function removed its wrappers, so its layers carry
    the baseline's layer names. ``recurrent_class`` replaces the
    ``Bidirectional`` class as in :func:`build_training_model`.
    """

    def clone_layer(layer):
        if recurrent_class is not None and isinstance(layer, keras.layers.Bidirectional):
            return recurrent_class.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    serving = keras.models.clone_model(baseline, clone_function=clone_layer)
    trained_by_name = {layer.name: layer for layer in trained.layers}
    for layer in serving.layers:
        if not layer.weights:
            continue
        source = trained_by_name.get(layer.name)
        if source is None:
            raise ValueError(
                f"layer {layer.name!r} not found in the trained model; "
                f"it has {sorted(trained_by_name)}"
            )
        layer.set_weights(source.get_weights())
    return serving


def kernel_sparsity(model: keras.Model) -> dict[str, float]:
    """Return the fraction of exact zeros in every kernel and embedding matrix.

    Biases are left out because neither pruning nor the reports treat them.
    """
    sparsity = {}
    for weight in model.weights:
        name = weight.name.split(":")[0]
        if not name.endswith(("kernel", "embeddings")):
            continue
        values = weight.numpy()
        sparsity[name] = round(float(np.mean(values == 0)), 4)
    return sparsity


def fine_tune(
    model: keras.Model,
    splits: Splits,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    callbacks: list | None = None,
) -> dict:
    """Train ``model`` for exactly ``epochs`` epochs and return the Keras history.

    Unlike ``textcls.model.fit`` there is no early stopping: restoring the
    best epoch's weights would also restore an earlier pruning mask or
    clustering state, below the schedule's target.
    """
    keras.utils.set_random_seed(seed)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        splits.x_train,
        splits.y_train,
        validation_data=(splits.x_val, splits.y_val),
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=0,
        callbacks=[ProgressLog(), *(callbacks or [])],
    )
    return history.history
