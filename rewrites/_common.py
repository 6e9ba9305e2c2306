"""Helpers shared by several rewrites: tensor shapes, int64 constants, option lists.
Not a rewrite: files whose names start with '_' are not loaded as rewrites.

What a helper derives from the graph lives in the pass's context, `graph.memo` (one Graph
per pass run, emptied by commit): nothing here outlives the pass it was computed for.
"""

from __future__ import annotations

import numpy as np
import onnx

from gancc.graph import Graph
from gancc.graph.types import value_dims
from gancc.graph.weightfree import weight_free_bytes

Dims = list  # list[int | str | None]: a known size, a symbolic name, or unknown


def _declared(graph: onnx.GraphProto) -> dict[str, Dims]:
    table: dict[str, Dims] = {}
    for value in list(graph.value_info) + list(graph.input) + list(graph.output):
        dims = value_dims(value)
        if dims is not None:
            table[value.name] = dims
    for t in graph.initializer:
        table[t.name] = list(t.dims)
    return table


class _ShapeTable:
    """The shapes of one pass: what the model declares, completed by shape inference (on
    the graph without its weights) the first time a tensor is missing."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.dims = _declared(graph.graph)
        self.inferred = False

    def get(self, tensor: str) -> Dims | None:
        if tensor not in self.dims and not self.inferred:
            self.inferred = True
            try:
                inferred = onnx.shape_inference.infer_shapes(weight_free_bytes(self.graph.model))
            except Exception:   # a graph inference cannot handle: the caller declines
                return None
            for name, dims in _declared(inferred.graph).items():
                self.dims.setdefault(name, dims)
        return self.dims.get(tensor)


def shape(graph: Graph, tensor: str) -> Dims | None:
    """The dims of `tensor` (ints where known), or None when even inference cannot say."""
    return graph.memo("gancc.rewrites.shapes", lambda: _ShapeTable(graph)).get(tensor)


def int64_constant(graph: Graph, values: list[int], hint: str) -> str:
    """The name of an int64 initializer holding `values`, made once per pass and value."""
    made: dict[tuple[int, ...], str] = graph.memo("gancc.rewrites.int64-constants", dict)
    key = tuple(values)
    if key not in made:
        made[key] = graph.add_initializer(np.array(values, np.int64),
                                          f"{hint}_{'_'.join(str(v) for v in values)}")
    return made[key]


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
