"""Custom Keras layers that saved variants need at load time.

Every class here is registered as Keras-serializable under the ``textcls``
package, so ``keras.models.load_model`` finds it in safe mode once this
module is imported.
"""
