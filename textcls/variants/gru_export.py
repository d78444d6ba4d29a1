"""The baseline's inference written out step by step for TFLite conversion.

Keras converts ``Bidirectional(GRU)`` either to two WHILE loops or, with
``unroll=True``, to an unrolled graph in which every step masks padding with
SELECT_V2. XNNPACK (the CPU delegate of LiteRT 2.3) takes neither WHILE nor
SELECT_V2, so the unrolled graph runs as about 70 delegate partitions with
the interpreter in between. The function built here computes the same
outputs from the same weights with operators that XNNPACK takes:

- the input projections of all time steps are one matrix product per
  direction, before the recurrence;
- a padded step keeps the state by arithmetic, ``h += m * (h_new - h)``
  with ``m`` 0 or 1, instead of SELECT_V2;
- the gates use separate kernels, so no step needs SPLIT_V, which XNNPACK
  does not take either.

Two layouts of the recurrence are offered. ``paired`` steps both directions
together: the state is ``[h_forward, h_backward]`` and each recurrent kernel
is block-diagonal, which halves the operator count and doubles the
multiply-adds of the recurrent products. ``separate`` steps each direction
on its own. The first suits small batches, where per-operator overhead
dominates, the second large ones.

Supported: Embedding (``mask_zero=True``) -> Bidirectional(GRU) with merge
mode ``concat``, ``reset_after=True``, tanh and sigmoid activations, biases,
no returned sequences -> Dense(1, sigmoid). Anything else raises ValueError.
"""

from __future__ import annotations

import numpy as np

from textcls.tf_env import keras, tf
from textcls.variants.wrapping import find_layers

LAYOUTS = ("paired", "separate")


def check_supported(model: keras.Model) -> None:
    """Raise ValueError naming the setting when ``model`` is outside what this module computes."""
    layers = find_layers(model)
    problems = []
    if not layers.embedding.mask_zero:
        problems.append("Embedding.mask_zero is False")
    if layers.recurrent.merge_mode != "concat":
        problems.append(f"Bidirectional.merge_mode is {layers.recurrent.merge_mode!r}")
    for direction in (layers.recurrent.forward_layer, layers.recurrent.backward_layer):
        config = direction.get_config()
        if not isinstance(direction, keras.layers.GRU):
            problems.append(f"{direction.name} is a {type(direction).__name__}, not a GRU")
            continue
        expected = {
            "reset_after": True,
            "activation": "tanh",
            "recurrent_activation": "sigmoid",
            "use_bias": True,
            "return_sequences": False,
            "return_state": False,
            "stateful": False,
        }
        for key, value in expected.items():
            if config.get(key) != value:
                problems.append(f"{direction.name}.{key} is {config.get(key)!r}, expected {value!r}")
    classifier = layers.classifier.get_config()
    if classifier["activation"] != "sigmoid" or classifier["units"] != 1 or not classifier["use_bias"]:
        problems.append("the output Dense layer is not Dense(1, sigmoid) with a bias")
    if problems:
        raise ValueError(
            f"model {model.name!r} cannot be written out as an explicit GRU graph: "
            + "; ".join(problems)
        )


def _gates(matrix: np.ndarray, units: int) -> list[np.ndarray]:
    """Split the last axis of a Keras GRU weight into its z, r and h parts."""
    return [matrix[..., gate * units : (gate + 1) * units] for gate in range(3)]


def _block_diagonal(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    rows_f, cols_f = forward.shape
    rows_b, cols_b = backward.shape
    block = np.zeros((rows_f + rows_b, cols_f + cols_b), np.float32)
    block[:rows_f, :cols_f] = forward
    block[rows_f:, cols_f:] = backward
    return block


class _DirectionWeights:
    """One GRU direction's weights, per gate, with the biases folded where possible."""

    def __init__(self, cell):
        units = cell.units
        kernel = cell.kernel.numpy()
        recurrent = cell.recurrent_kernel.numpy()
        input_bias, recurrent_bias = cell.bias.numpy()
        self.input_kernels = _gates(kernel, units)
        self.recurrent_kernels = _gates(recurrent, units)
        input_biases = _gates(input_bias, units)
        recurrent_biases = _gates(recurrent_bias, units)
        # z and r add the two biases outside any product, so they fold into
        # the input projection. The h gate multiplies the recurrent bias by
        # r (reset_after=True), so that bias stays with the recurrent product.
        self.input_biases = [
            input_biases[0] + recurrent_biases[0],
            input_biases[1] + recurrent_biases[1],
            input_biases[2],
        ]
        self.candidate_recurrent_bias = recurrent_biases[2]


def build_serving_function(model: keras.Model, batch_size: int, layout: str = "paired"):
    """Return a tf.function computing ``model``'s probabilities for a fixed batch size.

    The input is int32 token ids of shape [batch_size, seq_len] and the
    output float32 probabilities of shape [batch_size, 1], as the Keras
    model's. Weights are captured as constants.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    check_supported(model)
    layers = find_layers(model)
    seq_len = model.input_shape[1]
    embedding = tf.constant(layers.embedding.embeddings.numpy())
    embedding_dim = int(embedding.shape[1])
    forward = _DirectionWeights(layers.recurrent.forward_layer.cell)
    backward = _DirectionWeights(layers.recurrent.backward_layer.cell)
    units = layers.recurrent.forward_layer.cell.units
    classifier_kernel, classifier_bias = (tf.constant(w) for w in layers.classifier.get_weights())
    signature = [tf.TensorSpec([batch_size, seq_len], tf.int32, name="token_ids")]

    def project(embedded, direction: _DirectionWeights, reverse: bool) -> list[tf.Tensor]:
        """Input projections per gate, [batch, seq_len, units] each, in processing order."""
        flat = tf.reshape(embedded, [batch_size * seq_len, embedding_dim])
        gates = []
        for kernel, bias in zip(direction.input_kernels, direction.input_biases):
            projected = tf.matmul(flat, tf.constant(kernel)) + tf.constant(bias)
            projected = tf.reshape(projected, [batch_size, seq_len, units])
            gates.append(tf.reverse(projected, axis=[1]) if reverse else projected)
        return gates

    def step(state, x_z, x_r, x_h, keep, kernels, candidate_bias):
        z = tf.sigmoid(x_z + tf.matmul(state, kernels[0]))
        r = tf.sigmoid(x_r + tf.matmul(state, kernels[1]))
        candidate = tf.tanh(x_h + r * (tf.matmul(state, kernels[2]) + candidate_bias))
        updated = candidate + z * (state - candidate)
        # keep is 1 for a token and 0 for padding, where the state must not change.
        return state + keep * (updated - state)

    if layout == "separate":

        def serve(token_ids):
            embedded = tf.gather(embedding, token_ids)
            mask = tf.cast(tf.not_equal(token_ids, 0), tf.float32)[:, :, None]
            finals = []
            for direction, reverse in ((forward, False), (backward, True)):
                x_z, x_r, x_h = (tf.unstack(gate, axis=1) for gate in project(embedded, direction, reverse))
                keep = tf.unstack(tf.reverse(mask, axis=[1]) if reverse else mask, axis=1)
                kernels = [tf.constant(k) for k in direction.recurrent_kernels]
                candidate_bias = tf.constant(direction.candidate_recurrent_bias)
                state = tf.zeros([batch_size, units])
                for t in range(seq_len):
                    state = step(state, x_z[t], x_r[t], x_h[t], keep[t], kernels, candidate_bias)
                finals.append(state)
            return tf.sigmoid(tf.matmul(tf.concat(finals, axis=1), classifier_kernel) + classifier_bias)

    else:
        kernels = [
            tf.constant(_block_diagonal(f, b))
            for f, b in zip(forward.recurrent_kernels, backward.recurrent_kernels)
        ]
        candidate_bias = tf.constant(
            np.concatenate([forward.candidate_recurrent_bias, backward.candidate_recurrent_bias])
        )

        def serve(token_ids):
            embedded = tf.gather(embedding, token_ids)
            mask = tf.cast(tf.not_equal(token_ids, 0), tf.float32)[:, :, None]
            forward_x = project(embedded, forward, reverse=False)
            backward_x = project(embedded, backward, reverse=True)
            # At step t the forward direction reads token t and the backward
            # direction token seq_len - 1 - t.
            x_z, x_r, x_h = (
                tf.unstack(tf.concat([forward_gate, backward_gate], axis=2), axis=1)
                for forward_gate, backward_gate in zip(forward_x, backward_x)
            )
            keep_both = tf.concat(
                [tf.tile(mask, [1, 1, units]), tf.tile(tf.reverse(mask, axis=[1]), [1, 1, units])], axis=2
            )
            keep = tf.unstack(keep_both, axis=1)
            state = tf.zeros([batch_size, 2 * units])
            for t in range(seq_len):
                state = step(state, x_z[t], x_r[t], x_h[t], keep[t], kernels, candidate_bias)
            # The state is [forward, backward], Bidirectional's concat order.
            return tf.sigmoid(tf.matmul(state, classifier_kernel) + classifier_bias)

    return tf.function(serve, input_signature=signature)
