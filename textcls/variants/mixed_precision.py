"""The baseline rebuilt under a Keras mixed precision policy.

The embedding and the GRU compute in float16 or bfloat16 and keep float32
variables. The output Dense layer stays float32, as ``build_model``
declares it, so the sigmoid is computed in float32. The baseline's weights
are copied unchanged, and an optional short fine-tune adapts them to the
reduced precision.
"""

from __future__ import annotations

import collections
import logging
import time

from textcls.metrics import classification_metrics
from textcls.model import ModelConfig, build_model, compile_for_training, fit, predict_probabilities
from textcls.serving.keras_runtime import load_model
from textcls.tf_env import keras, tf
from textcls.variants.base import Artifact, BuildContext
from textcls.variants.wrapping import find_layers

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"

# Ops whose dtype attribute shows where the serving graph computes.
COUNTED_OPS = ("MatMul", "BiasAdd", "Sigmoid", "Tanh")


def build_float16(ctx: BuildContext, params: dict) -> Artifact:
    return build_with_policy(ctx, params, "mixed_float16")


def build_bfloat16(ctx: BuildContext, params: dict) -> Artifact:
    return build_with_policy(ctx, params, "mixed_bfloat16")


def config_of(model: keras.Model) -> ModelConfig:
    """Read the ModelConfig of a model with the baseline's architecture."""
    layers = find_layers(model)
    return ModelConfig(
        vocab_size=layers.embedding.input_dim,
        seq_len=model.input_shape[1],
        embedding_dim=layers.embedding.output_dim,
        gru_units=layers.recurrent.forward_layer.units,
    )


def rebuild_with_policy(baseline: keras.Model, policy_name: str) -> keras.Model:
    """Build the baseline's architecture under ``policy_name`` with its weights."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy_name)
    try:
        model = build_model(config_of(baseline))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    model.set_weights(baseline.get_weights())
    return model


def layer_dtypes(model: keras.Model) -> dict[str, dict[str, str]]:
    """Return the policy, compute dtype and actual output dtype of each layer."""
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    probe = keras.Model(model.inputs, [layer.output for layer in layers])
    sample = tf.zeros([1, model.input_shape[1]], tf.int32) + 2
    outputs = probe(sample, training=False)
    return {
        layer.name: {
            "policy": layer.dtype_policy.name,
            "compute_dtype": layer.compute_dtype,
            "variable_dtype": layer.variable_dtype,
            "output_dtype": output.dtype.name,
        }
        for layer, output in zip(layers, outputs)
    }


def serving_op_dtypes(model: keras.Model, batch_size: int) -> dict[str, int]:
    """Count the serving graph's math ops by dtype, including loop bodies.

    The keys read ``"MatMul:bfloat16"``. The GRU's step runs in functions
    of the graph's library, which are counted too. The library also
    contains implementations that never run on CPU, so these are counts of
    ops in the graph, not of executed ops.
    """
    signature = [tf.TensorSpec([batch_size, model.input_shape[1]], tf.int32)]
    serve = tf.function(lambda token_ids: model(token_ids, training=False), input_signature=signature)
    graph_def = serve.get_concrete_function().graph.as_graph_def()
    nodes = list(graph_def.node)
    for function in graph_def.library.function:
        nodes.extend(function.node_def)
    counts = collections.Counter(
        f"{node.op}:{tf.dtypes.as_dtype(node.attr['T'].type).name}"
        for node in nodes
        if node.op in COUNTED_OPS
    )
    return dict(sorted(counts.items()))


def build_with_policy(ctx: BuildContext, params: dict, policy_name: str) -> Artifact:
    splits = ctx.load_splits()
    baseline = load_model(ctx.baseline_path)
    model = rebuild_with_policy(baseline, policy_name)
    reduced_dtype = keras.mixed_precision.Policy(policy_name).compute_dtype

    epochs = min(1, params["fine_tune_epochs"]) if ctx.quick else params["fine_tune_epochs"]
    fine_tune_s = 0.0
    if epochs:
        # Under mixed_float16, compile wraps the optimizer in a
        # LossScaleOptimizer because the model was built under that policy.
        compile_for_training(model, params["learning_rate"])
        started = time.perf_counter()
        fit(model, splits, max_epochs=epochs, patience=1, batch_size=params["train_batch_size"], seed=ctx.seed)
        fine_tune_s = time.perf_counter() - started
        # A compiled model saves its optimizer state too; the served model
        # needs only the weights.
        model = rebuild_with_policy(model, policy_name)

    dtypes = layer_dtypes(model)
    recurrent = find_layers(model).recurrent
    if dtypes[recurrent.name]["output_dtype"] != reduced_dtype:
        raise RuntimeError(
            f"layer {recurrent.name!r} outputs {dtypes[recurrent.name]['output_dtype']} under "
            f"policy {policy_name}, expected {reduced_dtype}; the policy was not applied"
        )
    validation = classification_metrics(splits.y_val, predict_probabilities(model, splits.x_val))
    log.info("%s: validation accuracy %.4f, layer dtypes %s", policy_name, validation["accuracy"], dtypes)

    model.save(ctx.out_dir / MODEL_FILE)
    return Artifact(
        runtime="keras",
        model_file=MODEL_FILE,
        details={
            "policy": policy_name,
            "layers": dtypes,
            "serving_graph_ops": serving_op_dtypes(model, min(ctx.batch_sizes)),
            "fine_tune_epochs": epochs,
            "fine_tune_s": round(fine_tune_s, 3),
            "validation_accuracy": round(validation["accuracy"], 4),
        },
        notes=[
            "Variables stay float32, so the file is as large as the baseline's weights.",
        ],
    )
