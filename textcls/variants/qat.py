"""Quantization-aware training (QAT) with tfmot: unsupported for this model.

tfmot 0.8.1's default 8-bit scheme cannot be applied to the baseline:

- ``quantize_model`` puts a fake-quantization layer on the model input,
  and that op accepts only floats, so the int32 token ids are rejected.
- ``Bidirectional`` is not in its registry, and its GRU cell entries are
  commented out in the registry's source as not yet verified. The Embedding
  entry is commented out too.

Only the output Dense layer (65 of about 170,000 weights) is supported.
QAT of that layer alone would leave the embedding and the GRU to
post-training quantization, which ``tflite-int8`` and
``tflite-dynamic-int8`` already measure, so this builder does not build it.
It probes tfmot on the actual baseline and raises ``VariantUnsupported``
with tfmot's own error messages, so the report shows the current reason.
"""

from __future__ import annotations

import logging
import re

import tensorflow_model_optimization as tfmot

from textcls.serving.keras_runtime import load_model
from textcls.tf_env import keras
from textcls.variants.base import Artifact, BuildContext, VariantUnsupported
from textcls.variants.wrapping import find_layers

log = logging.getLogger(__name__)


def _cause(error: Exception) -> str:
    """Return the line of an error message that states its cause.

    Errors raised inside a Keras layer call wrap the cause (a line such as
    ``TypeError: ...``) in a traceback and a list of call arguments.
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    causes = [line for line in lines if re.match(r"^[A-Za-z_.]*(Error|Exception): ", line)]
    if causes:
        text = causes[-1]
    else:
        text = f"{type(error).__name__}: {lines[0] if lines else ''}"
    return text.rstrip(".")


def _fresh_copy(model: keras.Model) -> keras.Model:
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def probe_qat_support(baseline: keras.Model) -> list[str]:
    """Try tfmot's QAT on the whole model and on the recurrent layer; return the errors.

    An empty list means tfmot accepted both.
    """
    quantize = tfmot.quantization.keras
    errors = []

    try:
        quantize.quantize_model(_fresh_copy(baseline))
    except (TypeError, ValueError, RuntimeError) as error:
        errors.append(f"quantize_model(whole model) failed with {_cause(error)}")

    recurrent_name = find_layers(baseline).recurrent.name

    def annotate_recurrent(layer):
        copy = layer.__class__.from_config(layer.get_config())
        return quantize.quantize_annotate_layer(copy) if layer.name == recurrent_name else copy

    try:
        annotated = keras.models.clone_model(baseline, clone_function=annotate_recurrent)
        quantize.quantize_apply(annotated)
    except (TypeError, ValueError, RuntimeError) as error:
        errors.append(f"quantize_apply with the {recurrent_name!r} layer annotated failed with {_cause(error)}")
    return errors


def build(ctx: BuildContext, params: dict) -> Artifact:
    baseline = load_model(ctx.baseline_path)
    errors = probe_qat_support(baseline)
    layers = find_layers(baseline)
    dense_weights = layers.classifier.count_params()
    total_weights = baseline.count_params()
    if errors:
        raise VariantUnsupported(
            f"tensorflow-model-optimization {tfmot.__version__} cannot apply quantization-aware "
            f"training to this model: {'; '.join(errors)}. Of its layers only the output Dense "
            f"({dense_weights} of {total_weights} weights) is supported; QAT of that layer alone "
            "would leave the embedding and the GRU to post-training quantization, which "
            "tflite-int8 and tflite-dynamic-int8 measure."
        )
    # NOTE: reached only with a tfmot release that quantizes the model's
    # int32 input and Bidirectional(GRU); fine-tuning and conversion for
    # that case are not written.
    raise VariantUnsupported(
        f"tensorflow-model-optimization {tfmot.__version__} accepted this model for QAT, but "
        "this builder implements no QAT fine-tuning and conversion yet"
    )
