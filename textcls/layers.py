"""Custom Keras layers that saved variants need at load time.

Every class here is registered as Keras-serializable under the ``textcls``
package, so ``keras.models.load_model`` finds it in safe mode once this
module is imported.
"""

from __future__ import annotations

from textcls.tf_env import keras


@keras.saving.register_keras_serializable(package="textcls")
class PrunableBidirectional(keras.layers.Bidirectional):
    """A ``Bidirectional`` RNN wrapper whose recurrent kernels tfmot can prune.

    tfmot 0.8.1 prunes GRU and LSTM layers but rejects ``Bidirectional``.
    Its ``PruneLowMagnitude`` wrapper accepts any layer that implements
    ``get_prunable_weights``, the one method of tfmot's ``PrunableLayer``
    interface. The interface is implemented here by that method alone,
    without importing tfmot, so that a serving worker loading a pruned model
    does not import it. ``textcls.variants.pruning`` registers this class as
    a virtual subclass of ``PrunableLayer``.

    The inner layers must be RNN layers whose cells have ``kernel`` and
    ``recurrent_kernel`` (GRU, LSTM, SimpleRNN). Biases are not pruned.
    """

    def get_prunable_weights(self):
        """Return the input and recurrent kernels of both directions."""
        weights = []
        for direction in (self.forward_layer, self.backward_layer):
            cell = direction.cell
            weights.append(cell.kernel)
            weights.append(cell.recurrent_kernel)
        return weights
