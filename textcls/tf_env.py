"""The one place where TensorFlow is imported.

tensorflow-model-optimization 0.8.1 works only with Keras 2 (the ``tf_keras``
package): under Keras 3 pruning raises and clustering returns None. Setting
``TF_USE_LEGACY_KERAS=1`` before the first TensorFlow import makes
``tf.keras`` resolve to ``tf_keras`` too, so every module gets the same Keras.
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
# Level 2 hides TensorFlow's info and warning lines (oneDNN notices, the CUDA
# probe on machines without a GPU) but keeps errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["tf", "keras"]
