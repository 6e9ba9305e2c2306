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
        # Holding every node keeps its Python wrapper alive, so id(node) is stable for the
        # life of this Graph (removals and insertions are keyed by it).
        self._node_list = list(self.graph.node)
        # The producer/consumer and initializer indexes are built once, on first use (a
        # rewrite that only reads attributes never pays for them). Consumers are kept per
        # tensor as {id(node): node}, so rewiring one reader is O(1) even for a tensor read
        # by thousands of nodes.
        self._producer_index: dict[str, onnx.NodeProto] | None = None
        self._consumer_index: dict[str, dict[int, onnx.NodeProto]] | None = None
        self._initializer_index: dict[str, onnx.TensorProto] | None = None
        self._elem_type_index: dict[str, int] | None = None
        # Initializer values, converted once per pass: many nodes share one constant (every
        # Pad of an onnxsim'd graph reads the same `pads`). Valid because rewrites never
        # change an existing initializer in place (docs/rewrites.md).
        self._const_cache: dict[str, np.ndarray] = {}
        self._graph_outputs = {o.name for o in self.graph.output}
        self._graph_inputs = {i.name for i in self.graph.input}
        self._removed: set[int] = set()
        self._insert_before: dict[int, list[onnx.NodeProto]] = {}
        self._appended: list[onnx.NodeProto] = []
        self._taken: set[str] | None = None
        self._counter = itertools.count()
        self.nodes_added = 0
        self.nodes_removed = 0

    # indexes --------------------------------------------------------------------------
    @property
    def _producer(self) -> dict[str, onnx.NodeProto]:
        if self._producer_index is None:
            self._build_indexes()
        return self._producer_index  # type: ignore[return-value]

    @property
    def _consumers(self) -> dict[str, dict[int, onnx.NodeProto]]:
        if self._consumer_index is None:
            self._build_indexes()
        return self._consumer_index  # type: ignore[return-value]

    @property
    def _initializers(self) -> dict[str, onnx.TensorProto]:
        if self._initializer_index is None:
            self._initializer_index = {t.name: t for t in self.graph.initializer}
        return self._initializer_index

    def _build_indexes(self) -> None:
        self._producer_index, self._consumer_index = {}, {}
        for node in self._node_list:
            self._index(node)
        for pending in self._insert_before.values():
            for node in pending:
                self._index(node)
        for node in self._appended:
            self._index(node)

    def _index(self, node: onnx.NodeProto) -> None:
        if self._producer_index is None or self._consumer_index is None:
            return                     # not built yet: the build will include this node
        producer, consumers = self._producer_index, self._consumer_index
        for out in node.output:
            if out:
                producer[out] = node
        for inp in node.input:
            if inp:
                readers = consumers.get(inp)
                if readers is None:
                    consumers[inp] = {id(node): node}
                else:
                    readers[id(node)] = node

    # queries --------------------------------------------------------------------------
    def nodes(self, op_type: str | None = None) -> list[onnx.NodeProto]:
        """A snapshot of the live nodes (optionally of one op type), in graph order."""
        removed = self._removed
        if op_type is None:
            return [n for n in self._node_list if id(n) not in removed]
        return [n for n in self._node_list if n.op_type == op_type and id(n) not in removed]

    def producer(self, tensor: str) -> onnx.NodeProto | None:
        node = self._producer.get(tensor)
        return None if node is None or id(node) in self._removed else node

    def consumers(self, tensor: str) -> list[onnx.NodeProto]:
        """The live nodes reading `tensor` (each once, even if it reads it twice)."""
        readers = self._consumers.get(tensor)
        return [n for n in readers.values() if id(n) not in self._removed] if readers else []

    def is_graph_output(self, tensor: str) -> bool:
        return tensor in self._graph_outputs

    def is_graph_input(self, tensor: str) -> bool:
        return tensor in self._graph_inputs

    def initializer(self, tensor: str) -> onnx.TensorProto | None:
        return self._initializers.get(tensor)

    def elem_type(self, tensor: str) -> int | None:
        """The element type (onnx.TensorProto.FLOAT, ...) the graph declares for `tensor`: a
        graph input or output, an initializer, or shape inference's value_info; None when
        it is not declared (e.g. a tensor a rewrite made in this pass)."""
        if self._elem_type_index is None:
            types = {t.name: t.data_type for t in self.graph.initializer}
            for value in (*self.graph.value_info, *self.graph.input, *self.graph.output):
                if value.type.tensor_type.elem_type:
                    types[value.name] = value.type.tensor_type.elem_type
            self._elem_type_index = types
        return self._elem_type_index.get(tensor)

    def const_value(self, tensor: str) -> np.ndarray | None:
        """The value of a tensor that is an initializer or a Constant node's output."""
        if tensor in self._initializers:
            value = self._const_cache.get(tensor)
            if value is None:
                value = numpy_helper.to_array(self._initializers[tensor])
                value.flags.writeable = False     # shared between callers: read only
                self._const_cache[tensor] = value
            return value
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
        # A string or int replacing one of its kind is written in place: no new message, no
        # shifting of the repeated field (this is the common case, e.g. Pad's `mode`).
        kind = onnx.AttributeProto.STRING if isinstance(value, str) else \
            onnx.AttributeProto.INT if isinstance(value, int) and not isinstance(value, bool) else None
        for i, a in enumerate(node.attribute):
            if a.name == name:
                if kind == onnx.AttributeProto.STRING and a.type == kind:
                    a.s = value.encode()
                    return
                if kind == onnx.AttributeProto.INT and a.type == kind:
                    a.i = value
                    return
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
        if self._initializer_index is not None:
            self._initializer_index[name] = self.graph.initializer[-1]
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
        node.input[index] = tensor
        if self._consumer_index is None:
            return                     # built later from the nodes as they are then
        readers = self._consumer_index.get(old)
        if old and readers and old not in node.input:     # by identity, not proto equality
            readers.pop(id(node), None)
        if tensor:
            self._consumer_index.setdefault(tensor, {})[id(node)] = node

    def set_output(self, node: onnx.NodeProto, index: int, tensor: str) -> None:
        """Make output `index` of `node` write `tensor`, keeping the producer index right."""
        node.output[index] = tensor
        if self._producer_index is not None and tensor:
            self._producer_index[tensor] = node
        if self._taken is not None:
            self._taken.add(tensor)

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
        used = _names_read(self.graph)
        used |= {o.name for o in self.graph.output}
        drop = [i for i, t in enumerate(self.graph.initializer) if t.name not in used]
        if len(drop) <= 64:
            # delete in place: rebuilding the list would copy every kept tensor (the weights)
            for i in reversed(drop):
                del self.graph.initializer[i]
        else:
            keep = [t for t in self.graph.initializer if t.name in used]
            del self.graph.initializer[:]
            self.graph.initializer.extend(keep)


def _names_read(graph: onnx.GraphProto) -> set[str]:
    """Every tensor name a node reads, including nodes in If/Loop/Scan bodies, which may
    read the outer graph's initializers without listing them as inputs."""
    used: set[str] = set()
    for node in graph.node:
        used.update(node.input)
        for a in node.attribute:
            for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                used |= _names_read(sub)
    return used


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
