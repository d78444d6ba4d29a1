"""The registry of variants the harness can build.

Each entry names its builder as ``module:function``, so listing and
validating variants never imports TensorFlow. The build worker imports the
builder module. A builder has the signature
``build(ctx: BuildContext, params: dict) -> Artifact``.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from textcls.variants.base import Artifact, BuildContext, VariantUnsupported

__all__ = [
    "Artifact",
    "BuildContext",
    "VariantSpec",
    "VariantUnsupported",
    "VARIANTS",
    "get_variant",
    "resolve_params",
]


@dataclass(frozen=True)
class VariantSpec:
    name: str
    family: str
    description: str
    builder: str  # "module:function"
    defaults: dict[str, Any] = field(default_factory=dict)
    # Inclusive (minimum, maximum) for numeric parameters.
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    # Variants built from another variant's artifact instead of the baseline.
    depends_on: tuple[str, ...] = ()

    def load_builder(self) -> Callable[[BuildContext, dict], Artifact]:
        module_name, function_name = self.builder.split(":")
        return getattr(importlib.import_module(module_name), function_name)


# Conversion parameters shared by the combination variants. "conversion" is
# "smallest" (try dynamic-range and full-integer int8, keep the smaller gzip
# size), "dynamic-int8" or "int8". "gru_graph" is "while-loop", "unrolled" or
# "explicit" (see textcls.variants.tflite); with "while-loop", full-integer
# int8 falls back to "unrolled" if the converter crashes.
_INT8_CONVERSION_DEFAULTS = {
    "conversion": "smallest",
    "gru_graph": "while-loop",
    "paired_max_batch": 1,
    "max_accuracy_drop": 0.01,
    "representative_samples": 200,
    "per_channel": False,
    "strip_tensor_names": True,
}
_INT8_CONVERSION_RANGES = {
    "max_accuracy_drop": (0.0, 1.0),
    "representative_samples": (1, 100000),
    "paired_max_batch": (0, 65536),
}

_CLUSTERING_DEFAULTS = {
    "clusters": 16,
    "fine_tune_epochs": 2,
    "learning_rate": 0.0001,
    "train_batch_size": 64,
}
_CLUSTERING_RANGES = {
    "clusters": (2, 65536),
    "fine_tune_epochs": (0, 100),
    "learning_rate": (1e-7, 1.0),
    "train_batch_size": (1, 65536),
}

_SPECS = [
    VariantSpec(
        "baseline",
        "baseline",
        "Embedding -> Bidirectional(GRU) -> Dense(sigmoid), served by tf.function",
        "textcls.variants.baseline:build",
        defaults={
            "embedding_dim": 16,
            "gru_units": 32,
            "max_epochs": 15,
            "patience": 2,
            "train_batch_size": 64,
            "learning_rate": 0.001,
        },
        ranges={
            "embedding_dim": (1, 4096),
            "gru_units": (1, 4096),
            "max_epochs": (1, 1000),
            "patience": (0, 1000),
            "train_batch_size": (1, 65536),
            "learning_rate": (1e-7, 1.0),
        },
    ),
    VariantSpec(
        "xla",
        "xla",
        "the baseline served by tf.function(jit_compile=True)",
        "textcls.variants.xla:build",
    ),
    VariantSpec(
        "pruned",
        "pruning",
        "magnitude pruning of every kernel, fine-tuned, then stripped",
        "textcls.variants.pruning:build",
        defaults={
            "target_sparsity": 0.8,
            "fine_tune_epochs": 3,
            "learning_rate": 0.0003,
            "train_batch_size": 64,
        },
        ranges={
            "target_sparsity": (0.0, 0.99),
            "fine_tune_epochs": (1, 100),
            "learning_rate": (1e-7, 1.0),
            "train_batch_size": (1, 65536),
        },
    ),
    VariantSpec(
        "mixed-float16",
        "mixed-precision",
        "mixed_float16 policy, output layer in float32",
        "textcls.variants.mixed_precision:build_float16",
        defaults={"fine_tune_epochs": 0, "learning_rate": 0.0001, "train_batch_size": 64},
        ranges={
            "fine_tune_epochs": (0, 100),
            "learning_rate": (1e-7, 1.0),
            "train_batch_size": (1, 65536),
        },
    ),
    VariantSpec(
        "mixed-bfloat16",
        "mixed-precision",
        "mixed_bfloat16 policy, output layer in float32",
        "textcls.variants.mixed_precision:build_bfloat16",
        defaults={"fine_tune_epochs": 0, "learning_rate": 0.0001, "train_batch_size": 64},
        ranges={
            "fine_tune_epochs": (0, 100),
            "learning_rate": (1e-7, 1.0),
            "train_batch_size": (1, 65536),
        },
    ),
    VariantSpec(
        "tflite-float32",
        "quantization",
        "TFLite conversion without quantization, served by LiteRT",
        "textcls.variants.quantization:build_float32",
        defaults={"gru_graph": "while-loop", "strip_tensor_names": True},
    ),
    VariantSpec(
        "tflite-dynamic-int8",
        "quantization",
        "dynamic-range int8 weights, served by LiteRT",
        "textcls.variants.quantization:build_dynamic_int8",
        defaults={"gru_graph": "while-loop", "per_channel": True, "strip_tensor_names": True},
    ),
    VariantSpec(
        "tflite-float16",
        "quantization",
        "float16 weights, served by LiteRT",
        "textcls.variants.quantization:build_float16",
        defaults={"gru_graph": "while-loop", "strip_tensor_names": True},
    ),
    VariantSpec(
        "tflite-int8",
        "quantization",
        "full-integer int8 with a representative data set, served by LiteRT",
        "textcls.variants.quantization:build_full_int8",
        defaults={
            "representative_samples": 200,
            "gru_graph": "while-loop",
            "per_channel": False,
            "strip_tensor_names": True,
        },
        ranges={"representative_samples": (1, 100000)},
    ),
    VariantSpec(
        "tflite-int8-explicit",
        "quantization",
        "full-integer int8 of the GRU written out for XNNPACK (no loop), served by LiteRT",
        "textcls.variants.quantization:build_full_int8",
        defaults={
            "representative_samples": 200,
            "gru_graph": "explicit",
            "paired_max_batch": 1,
            "per_channel": False,
            "strip_tensor_names": True,
        },
        ranges={"representative_samples": (1, 100000), "paired_max_batch": (0, 65536)},
    ),
    VariantSpec(
        "pruned-int8",
        "combination",
        "the pruned model converted to int8 (the smaller gzip of dynamic-range and full-integer), served by LiteRT",
        "textcls.variants.combinations:build_pruned_int8",
        defaults=dict(_INT8_CONVERSION_DEFAULTS),
        ranges=dict(_INT8_CONVERSION_RANGES),
        depends_on=("pruned",),
    ),
    VariantSpec(
        "clustered-int8",
        "combination",
        "weight clustering of every kernel, fine-tuned, then int8 as pruned-int8, served by LiteRT",
        "textcls.variants.combinations:build_clustered_int8",
        defaults={**_CLUSTERING_DEFAULTS, **_INT8_CONVERSION_DEFAULTS},
        ranges={**_CLUSTERING_RANGES, **_INT8_CONVERSION_RANGES},
    ),
    VariantSpec(
        "pruned-clustered-int8",
        "combination",
        "sparsity-preserving clustering of the pruned model, fine-tuned, then int8 as pruned-int8, served by LiteRT",
        "textcls.variants.combinations:build_pruned_clustered_int8",
        defaults={**_CLUSTERING_DEFAULTS, **_INT8_CONVERSION_DEFAULTS},
        ranges={**_CLUSTERING_RANGES, **_INT8_CONVERSION_RANGES},
        depends_on=("pruned",),
    ),
    VariantSpec(
        "qat",
        "quantization",
        "quantization-aware training (unsupported by tfmot 0.8.1 for this model; the build reports why)",
        "textcls.variants.qat:build",
    ),
]

VARIANTS: dict[str, VariantSpec] = {spec.name: spec for spec in _SPECS}


def get_variant(name: str) -> VariantSpec:
    """Return the spec of ``name``, or raise ValueError naming the closest match."""
    try:
        return VARIANTS[name]
    except KeyError:
        close = difflib.get_close_matches(name, VARIANTS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"unknown variant {name!r}.{hint} Known variants: {', '.join(VARIANTS)}."
        ) from None


def resolve_params(spec: VariantSpec, overrides: dict[str, Any]) -> dict[str, Any]:
    """Merge ``overrides`` into the spec's defaults, checking names, types and ranges."""
    params = dict(spec.defaults)
    for key, value in overrides.items():
        if key not in spec.defaults:
            close = difflib.get_close_matches(key, spec.defaults, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            known = ", ".join(spec.defaults) or "none"
            raise ValueError(
                f"unknown parameter {key!r} for variant {spec.name!r}.{hint} "
                f"Its parameters: {known}."
            )
        default = spec.defaults[key]
        if isinstance(default, bool) or not isinstance(value, (int, float)) or isinstance(value, bool):
            if type(value) is not type(default):
                raise ValueError(
                    f"parameter {spec.name}.{key} must be {type(default).__name__}, "
                    f"got {value!r} ({type(value).__name__})"
                )
        elif isinstance(default, int) and not isinstance(value, int):
            raise ValueError(
                f"parameter {spec.name}.{key} must be a whole number, got {value!r}"
            )
        if key in spec.ranges:
            low, high = spec.ranges[key]
            if not low <= value <= high:
                raise ValueError(
                    f"parameter {spec.name}.{key}={value!r} is out of range; "
                    f"use a value from {low:g} to {high:g}"
                )
        params[key] = value
    return params
