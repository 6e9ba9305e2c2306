"""Stage 1 for `source tensorflow "model.pb"`: a frozen TensorFlow GraphDef.

ATC compiles a frozen .pb directly (`--framework=3`), so gancc always emits those commands,
with the .pb copied into the build folder. When TensorFlow and tf2onnx are installed (the
optional extra: `pip install -e '.[tf]'`), the graph is also converted to ONNX at the spec's
opset, so simplification, rewrites, diffs and CPU validation apply; TensorFlow itself runs
the frozen graph as the validation reference. Without them, the build writes the atc
commands only and says why nothing was validated.

tf2onnx names tensors `<op>:0`; the converted graph's inputs and outputs are renamed to the
spec's names (`x1`, `Identity`), which are also the names atc's --input_shape uses.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import onnx

from gancc.errors import GanccError, SpecError, did_you_mean
from gancc.spec.model import ModelSpec, TensorFlowSource

INSTALL_HINT = "install the optional extra: pip install -e '.[tf]' (tensorflow-cpu, tf2onnx)"


def converter_missing() -> str | None:
    """Why the TF -> ONNX path is unavailable here, or None when it is available."""
    import importlib.util

    if os.environ.get("GANCC_NO_TF"):   # lets tests (and users) exercise the atc-only path
        return "GANCC_NO_TF is set"
    missing = [m for m in ("tensorflow", "tf2onnx") if importlib.util.find_spec(m) is None]
    return f"{' and '.join(missing)} not installed" if missing else None


def _import_tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")   # no banner on every build
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # nor the oneDNN one; plain kernels
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


def require_graph_file(path: Path, span) -> None:
    """The .pb is there: the build and `gancc check` (gancc/checks.py) both ask here, so
    they say the same. Nothing falls back on a missing graph: atc needs it too."""
    if not path.is_file():
        raise SpecError(f"TensorFlow graph not found: {path}", span,
                        "the path is relative to the spec file's folder")


def read_graph_def(path: Path, span):
    tf = _import_tf()
    require_graph_file(path, span)
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except Exception as err:  # protobuf's DecodeError and friends
        raise GanccError(f"{path}: cannot read as a frozen TensorFlow GraphDef: {err}",
                         "write it with convert_variables_to_constants_v2(...).graph.as_graph_def()"
                         ".SerializeToString()") from None
    if any(n.op in ("VariableV2", "VarHandleOp") for n in graph_def.node):
        raise GanccError(f"{path}: the graph still holds variables: it is not frozen",
                         "freeze it with convert_variables_to_constants_v2 first")
    return graph_def


def _check_names(model: ModelSpec, graph_def, path: Path) -> None:
    placeholders = [n.name for n in graph_def.node if n.op == "Placeholder"]
    nodes = {n.name for n in graph_def.node}
    for inp in model.inputs:
        if inp.name not in placeholders:
            raise SpecError(f"input '{inp.name}' is not a placeholder of {path.name}", inp.span,
                            did_you_mean(inp.name, placeholders) or
                            f"the graph's placeholders: {', '.join(placeholders)}")
    for out in model.outputs:
        if out.name not in nodes:
            raise SpecError(f"output '{out.name}' is not a node of {path.name}", out.span,
                            did_you_mean(out.name, nodes) or "name the output node, e.g. Identity")


class TensorFlowReference:
    """Runs the frozen graph with TensorFlow: the validation reference for a TF source."""

    reference_kind = "tensorflow"

    def __init__(self, graph_def, inputs: list[str], outputs: list[str]):
        tf = _import_tf()
        self._tf = tf

        def _imported():
            tf.compat.v1.import_graph_def(graph_def, name="")

        wrapped = tf.compat.v1.wrap_function(_imported, [])
        graph = wrapped.graph
        self._inputs = inputs
        self._outputs = outputs
        self._fn = wrapped.prune([graph.get_tensor_by_name(f"{n}:0") for n in inputs],
                                 [graph.get_tensor_by_name(f"{n}:0") for n in outputs])

    def run_reference(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = self._fn(*[self._tf.constant(feeds[n]) for n in self._inputs])
        if not isinstance(result, (list, tuple)):
            result = [result]
        return {name: np.asarray(t.numpy()) for name, t in zip(self._outputs, result)}


def _rename(model: onnx.ModelProto, mapping: dict[str, str]) -> None:
    graph = model.graph
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in mapping:
                node.input[i] = mapping[name]
        for i, name in enumerate(node.output):
            if name in mapping:
                node.output[i] = mapping[name]
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.name in mapping:
            value.name = mapping[value.name]


def convert(model: ModelSpec, graph_def) -> onnx.ModelProto:
    _import_tf()
    import tf2onnx
    inputs = [f"{i.name}:0" for i in model.inputs]
    outputs = [f"{o.name}:0" for o in model.outputs]
    try:
        converted, _ = tf2onnx.convert.from_graph_def(graph_def, input_names=inputs,
                                                      output_names=outputs, opset=model.opset)
    except Exception as err:  # tf2onnx raises whatever its handlers raise
        raise GanccError(f"model '{model.name}': tf2onnx could not convert the graph: "
                         f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
                         "the atc commands for the .pb are still valid; build with --no-validate "
                         "or report the op tf2onnx names") from None
    _rename(converted, {f"{n}:0": n for n in model.input_names + model.output_names})
    return converted


def load_tensorflow(model: ModelSpec):
    """The LoadedSource for a TF graph: ONNX + TF reference when the converter is installed."""
    from gancc.stages.source import LoadedSource

    source = model.source
    assert isinstance(source, TensorFlowSource)
    require_graph_file(source.path, source.span)
    why = converter_missing()
    if why is not None:
        return LoadedSource(None, None, None, reference=None, note=why)
    graph_def = read_graph_def(source.path, source.span)
    _check_names(model, graph_def, source.path)
    converted = convert(model, graph_def)
    reference = TensorFlowReference(graph_def, model.input_names, model.output_names)
    return LoadedSource(None, converted, None, reference=reference)


def copy_graph(model: ModelSpec, folder: Path) -> str:
    """Copy the .pb into the build folder (atc.sh runs from there); returns its name."""
    source = model.source
    assert isinstance(source, TensorFlowSource)
    target = folder / source.path.name
    shutil.copyfile(source.path, target)
    return target.name
