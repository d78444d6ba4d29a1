"""Convert a saved Keras model to fixed-shape .tflite files in a child process.

Facts about TensorFlow 2.21 and ai-edge-litert 2.3.0 that shape this module,
checked on the baseline (Embedding with mask_zero -> Bidirectional(GRU)):

- A GRU with a dynamic batch dimension converts only with Select TF ops,
  which neither LiteRT nor ``tf.lite.Interpreter`` can run. A concrete
  function with a fixed ``[batch, seq_len]`` input converts to builtin ops.
  XNNPACK cannot reshape such a GRU to another batch size, so every measured
  batch size gets its own file.
- Full-integer conversion calibrates the float model in a TFLite
  interpreter, and with the GRU's WHILE loop the process dies with SIGSEGV
  inside the calibrator (``calibrator._feed_tensors``). Each conversion
  therefore runs in a child process (``python -m textcls.variants.tflite
  REQUEST``), so that a crash becomes a :class:`ConversionFailed` naming the
  signal. An unrolled GRU (``unroll=True``, same weights) and the explicit
  graph have no loop and convert.
- An unrolled GRU has about 1,100 operators and 1,600 tensors at sequence
  length 34 instead of about 15 operators plus two loop bodies. The weights
  are stored once, but every tensor carries its name, about 230 KB of the
  760 KB full-int8 file. Every tensor also has its own copy of its
  quantization parameters. With per-channel weight scales, each of the 134
  int32 bias tensors repeats 96 scales and 96 zero points (about 150 KB).
  Stripping the names (``strip_tensor_names``) and per-tensor weight scales
  (``per_channel`` off) bring that file to about 360 KB. The rest is the
  operator and tensor tables of the unrolled graph.

``gru_graph`` selects what is converted: ``while-loop`` (the Keras model as
it is), ``unrolled`` (the Keras model with ``unroll=True``) or ``explicit``
(the same computation written out for XNNPACK, see
``textcls.variants.gru_export``).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MODES = ("float32", "dynamic-int8", "float16", "int8")
GRU_GRAPHS = ("while-loop", "unrolled", "explicit")

# Conversions of the baseline took under 20 s each on 2 cores (TF 2.21).
# This bound only stops a hung converter.
DEFAULT_TIMEOUT_S = 900.0

# Constant tensors listed by size in describe_tflite: the embedding and the
# four GRU kernels of the baseline.
LARGEST_WEIGHTS_LISTED = 5

# Lines of the child's stderr kept in an error message.
STDERR_TAIL_LINES = 15


class ConversionFailed(RuntimeError):
    """A conversion child process raised, crashed or timed out.

    ``signal_name`` is set (for example ``"SIGSEGV"``) when the child was
    killed by a signal, which is how converter crashes show.
    """

    def __init__(self, message: str, signal_name: str | None = None):
        super().__init__(message)
        self.signal_name = signal_name


@dataclass(frozen=True)
class ConversionRequest:
    """A .keras file to convert to one .tflite file per batch size, with one setting."""

    model_path: str
    output_paths: dict[int, str]  # batch size -> .tflite path to write
    seq_len: int
    mode: str  # one of MODES
    gru_graph: str = "while-loop"  # one of GRU_GRAPHS
    # With gru_graph "explicit": batch sizes up to this one use the paired
    # layout of textcls.variants.gru_export, larger ones the separate layout.
    paired_max_batch: int = 1
    per_channel: bool = True  # per-channel weight scales (the converter's default)
    strip_tensor_names: bool = True
    # .npy file of int32 token ids [n, seq_len]; required for mode "int8".
    representative_path: str | None = None

    def __post_init__(self) -> None:
        if not self.output_paths:
            raise ValueError("output_paths is empty; give at least one batch size and file")
        if self.mode not in MODES:
            raise ValueError(f"unknown conversion mode {self.mode!r}; expected one of {', '.join(MODES)}")
        if self.gru_graph not in GRU_GRAPHS:
            raise ValueError(f"unknown gru_graph {self.gru_graph!r}; expected one of {', '.join(GRU_GRAPHS)}")
        if self.mode == "int8" and not self.representative_path:
            raise ValueError("mode 'int8' needs representative_path, a .npy file of token ids")


def convert_in_subprocess(request: ConversionRequest, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict:
    """Run a conversion in a fresh Python process and return its converter settings.

    One process converts every batch size of the request, because importing
    TensorFlow takes a few seconds of each conversion.

    Raises ConversionFailed when the child exits with an error, is killed
    by a signal (the converter's SIGSEGV) or runs longer than ``timeout_s``.
    """
    package_root = Path(__file__).resolve().parents[2]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(package_root), env.get("PYTHONPATH")]))

    with tempfile.TemporaryDirectory(prefix="tflite-conversion-") as folder:
        request_path = Path(folder) / "request.json"
        result_path = Path(folder) / "result.json"
        request_path.write_text(json.dumps(asdict(request)))
        command = [sys.executable, "-m", __name__, str(request_path), str(result_path)]
        description = (
            f"{request.mode}, batch sizes {', '.join(map(str, sorted(request.output_paths)))}, "
            f"GRU graph {request.gru_graph}"
        )
        log.info("converting %s to .tflite (%s)", Path(request.model_path).name, description)
        try:
            completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise ConversionFailed(f"TFLite conversion ({description}) timed out after {timeout_s:g} s") from None

        if completed.returncode < 0:
            signal_name = signal.Signals(-completed.returncode).name
            raise ConversionFailed(
                f"TFLite converter crashed with {signal_name} ({description})", signal_name=signal_name
            )
        if completed.returncode != 0 or not result_path.is_file():
            tail = "\n".join(completed.stderr.strip().splitlines()[-STDERR_TAIL_LINES:])
            raise ConversionFailed(
                f"TFLite conversion ({description}) failed with exit code {completed.returncode}:\n{tail}"
            )
        return json.loads(result_path.read_text())


def rebuild_unrolled(model):
    """Return a copy of ``model`` whose recurrent layers have ``unroll=True``.

    The copy has the same weights and computes the same function. Works on
    models whose recurrent layers are configured inline, as in the
    baseline's ``Bidirectional(GRU)``.
    """
    from textcls.tf_env import keras

    config = model.get_config()
    changed = _set_unroll(config)
    if not changed:
        raise ValueError(f"model {model.name!r} has no recurrent layer to unroll")
    unrolled = keras.Model.from_config(config)
    unrolled.set_weights(model.get_weights())
    return unrolled


def _set_unroll(config) -> int:
    """Set ``unroll`` in every nested recurrent layer config; return how many."""
    changed = 0
    if isinstance(config, dict):
        if config.get("class_name") in ("GRU", "LSTM", "SimpleRNN") and isinstance(config.get("config"), dict):
            config["config"]["unroll"] = True
            changed += 1
        for value in config.values():
            changed += _set_unroll(value)
    elif isinstance(config, list):
        for value in config:
            changed += _set_unroll(value)
    return changed


def representative_batches(token_ids: np.ndarray, batch_size: int):
    """Yield ``token_ids`` in batches of exactly ``batch_size`` rows.

    The converted function has a fixed batch dimension, so the last batch
    wraps around to the first rows instead of being short.
    """
    batches = -(-len(token_ids) // batch_size)
    padded = np.resize(token_ids, (batches * batch_size, token_ids.shape[1]))
    for start in range(0, len(padded), batch_size):
        yield [padded[start : start + batch_size].astype(np.int32)]


def _convert(request: ConversionRequest) -> dict:
    """Run the TFLite converter in this process for every batch size; return the settings."""
    from textcls.serving.keras_runtime import load_model

    model = load_model(Path(request.model_path))
    if request.gru_graph == "unrolled":
        model = rebuild_unrolled(model)
    token_ids = np.load(request.representative_path) if request.mode == "int8" else None
    settings = {}
    for batch_size, output_path in sorted(request.output_paths.items()):
        content, settings = _convert_one(model, request, batch_size, token_ids)
        Path(output_path).write_bytes(content)
    return settings


def _convert_one(model, request: ConversionRequest, batch_size: int, token_ids) -> tuple[bytes, dict]:
    from textcls.tf_env import tf

    settings = {
        "source": "concrete function with fixed input [batch, seq_len] int32",
        "gru_graph": request.gru_graph,
    }
    if request.gru_graph == "explicit":
        from textcls.variants.gru_export import build_serving_function

        layout = "paired" if batch_size <= request.paired_max_batch else "separate"
        serve = build_serving_function(model, batch_size, layout)
        settings["explicit_layout"] = layout
    else:
        signature = [tf.TensorSpec([batch_size, request.seq_len], tf.int32, name="token_ids")]
        serve = tf.function(lambda token_ids: model(token_ids, training=False), input_signature=signature)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], model)
    # Select TF ops would need the TensorFlow runtime, which LiteRT lacks.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    # Converting the graph directly instead of through a temporary
    # SavedModel took 1 s instead of 17 s for the baseline's while loop
    # (TF 2.21, 2 cores), with the same operators and accuracy.
    converter.experimental_lower_to_saved_model = False
    settings["experimental_lower_to_saved_model"] = False
    settings["supported_ops"] = "TFLITE_BUILTINS"

    if request.mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        settings["optimizations"] = "DEFAULT"
    if request.mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
        settings["supported_types"] = "float16"
    if request.mode == "int8":
        converter.representative_dataset = lambda: representative_batches(token_ids, batch_size)
        settings["representative_samples"] = int(len(token_ids))
    if request.mode in ("dynamic-int8", "int8"):
        if not request.per_channel:
            # Private converter flag in TF 2.21; one scale per weight tensor.
            converter._experimental_disable_per_channel = True
        settings["weight_scales"] = "per channel" if request.per_channel else "per tensor"

    content = bytes(converter.convert())
    if request.strip_tensor_names:
        content = strip_tensor_names(content)
    settings["strip_tensor_names"] = request.strip_tensor_names
    return content, settings


def strip_tensor_names(content: bytes) -> bytes:
    """Remove tensor and subgraph names and signature definitions from a .tflite model.

    Serving by input and output index (as ``textcls.serving.litert_runtime``
    does) does not need them.
    """
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    flatbuffer_utils.strip_strings(model)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def describe_tflite(path: Path) -> dict:
    """Summarize a .tflite file: operators, tensors and the types of its constant tensors.

    Constant tensors are those backed by a non-empty buffer, that is the
    weights, biases and other constants. ``weight_types`` maps each type
    name to the count of such tensors and the bytes of their distinct
    buffers (tensors of an unrolled loop share buffers).
    """
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(path)
    weight_types: dict[str, dict[str, int]] = {}
    largest = {}
    operators = Counter()
    tensors = 0
    for subgraph in model.subgraphs:
        tensors += len(subgraph.tensors)
        for tensor in subgraph.tensors:
            data = model.buffers[tensor.buffer].data
            if data is None or len(data) == 0:
                continue
            type_name = flatbuffer_utils.type_to_name(tensor.type).lower()
            entry = weight_types.setdefault(type_name, {"tensors": 0, "bytes": 0})
            entry["tensors"] += 1
            if tensor.buffer not in largest:
                entry["bytes"] += len(data)
                largest[tensor.buffer] = (len(data), type_name, [int(d) for d in tensor.shape])
        for operator in subgraph.operators:
            code = model.operatorCodes[operator.opcodeIndex]
            operators[_builtin_name(max(code.builtinCode, code.deprecatedBuiltinCode))] += 1
    largest = sorted(largest.values(), reverse=True)
    main_graph = model.subgraphs[0]
    return {
        "file_bytes": path.stat().st_size,
        "subgraphs": len(model.subgraphs),
        "operators": sum(operators.values()),
        "tensors": tensors,
        "operator_counts": dict(operators.most_common()),
        "weight_types": weight_types,
        "largest_weights": [
            {"type": type_name, "shape": shape, "bytes": size} for size, type_name, shape in largest[:LARGEST_WEIGHTS_LISTED]
        ],
        "input_types": [flatbuffer_utils.type_to_name(main_graph.tensors[i].type).lower() for i in main_graph.inputs],
        "output_types": [flatbuffer_utils.type_to_name(main_graph.tensors[i].type).lower() for i in main_graph.outputs],
    }


def _builtin_name(code: int) -> str:
    from ai_edge_litert import schema_py_generated as schema

    for name, value in vars(schema.BuiltinOperator).items():
        if value == code and not name.startswith("_"):
            return name
    return f"BUILTIN_{code}"


def main(argv: list[str]) -> int:
    """Child process entry: convert the request in argv[1], write settings to argv[2]."""
    if len(argv) != 3:
        print(f"usage: python -m {__name__} REQUEST_JSON RESULT_JSON", file=sys.stderr)
        return 2
    fields = json.loads(Path(argv[1]).read_text())
    # JSON object keys are strings; batch sizes are ints.
    fields["output_paths"] = {int(size): path for size, path in fields["output_paths"].items()}
    request = ConversionRequest(**fields)
    settings = _convert(request)
    Path(argv[2]).write_text(json.dumps(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
