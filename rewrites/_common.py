"""Helpers shared by several rewrites: tensor shapes, provenance for graph-level rewrites,
option lists. Not a rewrite: files whose names start with '_' are not loaded as rewrites.
"""

from __future__ import annotations

import weakref

import numpy as np
import onnx
from onnx import helper

from gancc.graph import Graph

Dims = list  # list[int | str | None]: a known size, a symbolic name, or unknown

# One shape table per Graph (a Graph lives for one pass): built from what the model declares,
# and completed by shape inference the first time a tensor is missing from it.
_SHAPES: "weakref.WeakKeyDictionary[Graph, dict[str, Dims]]" = weakref.WeakKeyDictionary()
_INFERRED: "weakref.WeakSet[Graph]" = weakref.WeakSet()
# int64 constants made in one pass, by value, so that equal ones are one initializer
_CONSTANTS: "weakref.WeakKeyDictionary[Graph, dict[tuple[int, ...], str]]" = \
    weakref.WeakKeyDictionary()

# Float initializers larger than this are weights: shape inference needs their shapes only, so
# they are handed to it as graph inputs (no copy of the values).
_WEIGHT_MIN_ELEMENTS = 1024


def _dims(value: onnx.ValueInfoProto) -> Dims | None:
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in tensor.shape.dim]


def _declared(graph: onnx.GraphProto) -> dict[str, Dims]:
    table: dict[str, Dims] = {}
    for value in list(graph.value_info) + list(graph.input) + list(graph.output):
        dims = _dims(value)
        if dims is not None:
            table[value.name] = dims
    for t in graph.initializer:
        table[t.name] = list(t.dims)
    return table


def without_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    light = onnx.ModelProto()
    light.ir_version = model.ir_version
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    g = model.graph
    light.graph.name = g.name
    light.graph.node.extend(g.node)
    light.graph.input.extend(g.input)
    light.graph.output.extend(g.output)
    declared = {i.name for i in g.input}
    for t in g.initializer:
        if t.data_type == onnx.TensorProto.FLOAT and int(np.prod(t.dims)) > _WEIGHT_MIN_ELEMENTS:
            if t.name not in declared:
                light.graph.input.append(helper.make_tensor_value_info(t.name, t.data_type,
                                                                       list(t.dims)))
        else:
            light.graph.initializer.append(t)
    return light


def shape(graph: Graph, tensor: str) -> Dims | None:
    """The dims of `tensor` (ints where known), or None when even inference cannot say."""
    table = _SHAPES.get(graph)
    if table is None:
        table = _SHAPES[graph] = _declared(graph.graph)
    if tensor not in table and graph not in _INFERRED:
        _INFERRED.add(graph)
        try:
            inferred = onnx.shape_inference.infer_shapes(without_weights(graph.model))
        except Exception:   # a graph inference cannot handle: the caller declines
            return None
        for name, dims in _declared(inferred.graph).items():
            table.setdefault(name, dims)
    return table.get(tensor)


def node_keys(model: onnx.ModelProto) -> set[bytes]:
    """Every node of `model`, serialised without provenance, to tell changed nodes apart."""
    keys = set()
    for node in model.graph.node:
        plain = onnx.NodeProto()
        plain.CopyFrom(node)
        del plain.metadata_props[:]
        keys.add(plain.SerializeToString())
    return keys


def tag_new_nodes(model: onnx.ModelProto, before: set[bytes], rewrite: str) -> int:
    """Tag, with `rewrite`, every node of `model` not among `before` (node_keys); returns how
    many. Graph-level rewrites (a converter, onnxsim) rebuild the node list wholesale, so what
    they made is found by content."""
    made = 0
    for node in model.graph.node:
        plain = onnx.NodeProto()
        plain.CopyFrom(node)
        del plain.metadata_props[:]
        if plain.SerializeToString() not in before:
            Graph.tag(node, rewrite)
            made += 1
    return made


def parse_list(text: str, what: str) -> list[str]:
    """'a;b; c' -> ['a', 'b', 'c']; raises ValueError (an option error) on an empty item."""
    if not text.strip():
        return []
    items = [item.strip() for item in text.split(";")]
    if any(not item for item in items):
        raise ValueError(f"empty {what} in {text!r}; separate {what}s with ';'")
    return items


def reads(node: onnx.NodeProto) -> set[str]:
    """Every tensor name `node` reads: its inputs, and the outer values that the bodies of
    an If/Loop/Scan read without listing them (a body's own names included: harmless for
    liveness, where a name too many only keeps a node)."""
    names = set(node.input)
    for attr in node.attribute:
        for sub in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)):
            for inner in sub.node:
                names |= reads(inner)
    return names


def int64_constant(graph: Graph, values: list[int], hint: str) -> str:
    """The name of an int64 initializer holding `values`, made once per pass and value."""
    made = _CONSTANTS.setdefault(graph, {})
    key = tuple(values)
    if key not in made:
        made[key] = graph.add_initializer(np.array(values, np.int64),
                                          f"{hint}_{'_'.join(str(v) for v in values)}")
    return made[key]
