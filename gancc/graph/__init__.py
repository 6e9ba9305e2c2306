"""The graph core: an indexed, mutable view of an ONNX ModelProto.

Rewrites work on `Graph`, which builds its producer and consumer indexes once, answers
"who makes / who reads this tensor" and "is this a constant" in O(1), and batches node
removals and insertions until `commit()`, which rebuilds the node list in one linear pass.
That keeps a rewrite linear in graph size: no rescans and no topological sort per match.

Nodes that a rewrite creates or changes are tagged with the rewrite's name in the node's
`metadata_props` under PROVENANCE_KEY, so a later failure (ATC, a verifier) can be traced
back to the rewrite that made the node.
"""

from __future__ import annotations

import itertools
from typing import Any, Iterable

import numpy as np
import onnx
from onnx import helper, numpy_helper

PROVENANCE_KEY = "gancc.rewrite"


class Graph:
    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.graph = model.graph
        self._producer: dict[str, onnx.NodeProto] = {}
        self._consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in self.graph.node:
            self._index(node)
        self._initializers = {t.name: t for t in self.graph.initializer}
        self._graph_outputs = {o.name for o in self.graph.output}
        self._graph_inputs = {i.name for i in self.graph.input}
        self._removed: set[int] = set()
        self._insert_before: dict[int, list[onnx.NodeProto]] = {}
        self._appended: list[onnx.NodeProto] = []
        self._taken: set[str] | None = None
        self._counter = itertools.count()
        self.nodes_added = 0
        self.nodes_removed = 0

    # queries --------------------------------------------------------------------------
    def _index(self, node: onnx.NodeProto) -> None:
        for out in node.output:
            if out:
                self._producer[out] = node
        for inp in node.input:
            if inp:
                self._consumers.setdefault(inp, []).append(node)

    def nodes(self, op_type: str | None = None) -> list[onnx.NodeProto]:
        """A snapshot of the live nodes (optionally of one op type), in graph order."""
        return [n for n in self.graph.node
                if (op_type is None or n.op_type == op_type) and id(n) not in self._removed]

    def producer(self, tensor: str) -> onnx.NodeProto | None:
        node = self._producer.get(tensor)
        return None if node is None or id(node) in self._removed else node

    def consumers(self, tensor: str) -> list[onnx.NodeProto]:
        return [n for n in self._consumers.get(tensor, ()) if id(n) not in self._removed]

    def is_graph_output(self, tensor: str) -> bool:
        return tensor in self._graph_outputs

    def is_graph_input(self, tensor: str) -> bool:
        return tensor in self._graph_inputs

    def initializer(self, tensor: str) -> onnx.TensorProto | None:
        return self._initializers.get(tensor)

    def const_value(self, tensor: str) -> np.ndarray | None:
        """The value of a tensor that is an initializer or a Constant node's output."""
        if tensor in self._initializers:
            return numpy_helper.to_array(self._initializers[tensor])
        node = self.producer(tensor)
        if node is not None and node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    return numpy_helper.to_array(a.t)
        return None

    def is_removed(self, node: onnx.NodeProto) -> bool:
        return id(node) in self._removed

    # attributes -----------------------------------------------------------------------
    @staticmethod
    def attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
        for a in node.attribute:
            if a.name == name:
                value = helper.get_attribute_value(a)
                return value.decode() if isinstance(value, bytes) else value
        return default

    @staticmethod
    def set_attr(node: onnx.NodeProto, name: str, value: Any) -> None:
        for i, a in enumerate(node.attribute):
            if a.name == name:
                del node.attribute[i]
                break
        node.attribute.append(helper.make_attribute(name, value))

    @staticmethod
    def remove_attr(node: onnx.NodeProto, name: str) -> None:
        for i, a in enumerate(node.attribute):
            if a.name == name:
                del node.attribute[i]
                return

    # edits ------------------------------------------------------------------------------
    def unique_name(self, hint: str) -> str:
        """A node/tensor name not used anywhere in the graph yet."""
        if self._taken is None:
            self._taken = {n.name for n in self.graph.node} | set(self._producer) \
                | set(self._consumers) | set(self._initializers) | self._graph_inputs
        name = hint
        while name in self._taken:
            name = f"{hint}_{next(self._counter)}"
        self._taken.add(name)
        return name

    def add_initializer(self, array: np.ndarray, hint: str) -> str:
        name = self.unique_name(hint)
        tensor = numpy_helper.from_array(np.asarray(array), name)
        self.graph.initializer.append(tensor)
        self._initializers[name] = tensor
        return name

    def add_node(self, op_type: str, inputs: list[str], outputs: list[str], *,
                 before: onnx.NodeProto | None = None, name: str | None = None,
                 tag: str | None = None, **attrs: Any) -> onnx.NodeProto:
        """Create a node; it is placed before `before` (or at the end) on commit()."""
        node = helper.make_node(op_type, inputs, outputs, name=self.unique_name(name or op_type),
                                **attrs)
        if tag:
            self.tag(node, tag)
        if before is None:
            self._appended.append(node)
        else:
            self._insert_before.setdefault(id(before), []).append(node)
        self._index(node)
        self.nodes_added += 1
        return node

    def remove_node(self, node: onnx.NodeProto) -> None:
        if id(node) not in self._removed:
            self._removed.add(id(node))
            self.nodes_removed += 1

    def set_input(self, node: onnx.NodeProto, index: int, tensor: str) -> None:
        """Make input `index` of `node` read `tensor`, keeping the consumer index right."""
        old = node.input[index]
        if old and node in self._consumers.get(old, []):
            self._consumers[old].remove(node)
        node.input[index] = tensor
        self._consumers.setdefault(tensor, []).append(node)

    def replace_uses(self, old: str, new: str) -> None:
        """Every reader of tensor `old` reads `new` instead (graph outputs excluded)."""
        for node in self.consumers(old):
            for i, name in enumerate(node.input):
                if name == old:
                    self.set_input(node, i, new)

    @staticmethod
    def tag(node: onnx.NodeProto, rewrite: str) -> None:
        """Record that `rewrite` created or changed this node (comma-joined if several)."""
        for entry in node.metadata_props:
            if entry.key == PROVENANCE_KEY:
                names = entry.value.split(",")
                if rewrite not in names:
                    entry.value = ",".join(names + [rewrite])
                return
        node.metadata_props.add(key=PROVENANCE_KEY, value=rewrite)

    def commit(self) -> None:
        """Apply the pending removals and insertions to the ModelProto, in one pass."""
        if not (self._removed or self._insert_before or self._appended):
            return
        order: list[onnx.NodeProto] = []
        for node in self.graph.node:
            order.extend(self._insert_before.get(id(node), ()))
            if id(node) not in self._removed:
                order.append(node)
        order.extend(n for n in self._appended if id(n) not in self._removed)
        kept = [n for n in order if id(n) not in self._removed]
        del self.graph.node[:]
        self.graph.node.extend(kept)
        self._drop_unused_initializers()
        # graph.node now holds copies: rebuild the indexes over the new objects.
        self.__init__(self.model)

    def _drop_unused_initializers(self) -> None:
        used = {name for node in self.graph.node for name in node.input}
        used |= {o.name for o in self.graph.output}
        keep = [t for t in self.graph.initializer if t.name in used]
        if len(keep) != len(self.graph.initializer):
            del self.graph.initializer[:]
            self.graph.initializer.extend(keep)


def provenance(node: onnx.NodeProto) -> list[str]:
    """The rewrites that created or changed this node, oldest first."""
    for entry in node.metadata_props:
        if entry.key == PROVENANCE_KEY:
            return entry.value.split(",")
    return []


def lift_constants(model: onnx.ModelProto) -> int:
    """Turn every tensor-valued Constant node into an initializer. Returns how many.

    onnxsim leaves shared constants (e.g. the `pads` of Pad) as Constant nodes; ATC and the
    rewrites want them as initializers.
    """
    graph = model.graph
    keep, lifted = [], 0
    for node in graph.node:
        value = next((a for a in node.attribute if a.name == "value"), None) \
            if node.op_type == "Constant" and not node.domain else None
        if value is None or len(node.attribute) != 1:
            keep.append(node)
            continue
        tensor = onnx.TensorProto()
        tensor.CopyFrom(value.t)
        tensor.name = node.output[0]
        graph.initializer.append(tensor)
        lifted += 1
    if lifted:
        del graph.node[:]
        graph.node.extend(keep)
    return lifted


def op_histogram(model: onnx.ModelProto) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))


def tensor_names(values: Iterable[onnx.ValueInfoProto]) -> list[str]:
    return [v.name for v in values]
