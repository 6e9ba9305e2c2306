"""The graph core: an indexed, mutable view of an ONNX ModelProto.

Rewrites work on `Graph`, which builds its producer and consumer indexes once, answers
"who makes / who reads this tensor" and "is this a constant" in O(1), and batches node
removals and insertions until `commit()`, which rebuilds the node list in one linear pass.
That keeps a rewrite linear in graph size: no rescans and no topological sort per match.

A Graph made by the rewrite engine for one pass run (`Graph(model, author=rewrite name)`)
is that pass's context:
- every node created or edited through it (add_node, set_attr, remove_attr, set_input,
  set_output, set_op_type, rename_node) is tagged with the rewrite's name in the node's
  `metadata_props` under PROVENANCE_KEY, so a later failure (ATC, a verifier) can be traced
  back to the rewrite that made the node; rewiring a tensor's readers (replace_uses) does
  not tag them, since they compute what they computed before;
- `memo(key, factory)` keeps what a rewrite derives from the graph (a shape table, the
  constants it made) for the rest of the pass; commit() empties it with the indexes;
- initializers are handed out read-only: `initializer()` gives a FrozenTensor view and
  `const_value()` read-only arrays, and writing through either raises ReadOnlyError. A
  weight changes only by adding a new initializer (add_initializer) and rewiring readers.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, TypeVar

import numpy as np
import onnx
from google.protobuf.message import Message
from onnx import helper, numpy_helper

from gancc.errors import GanccError

PROVENANCE_KEY = "gancc.rewrite"

T = TypeVar("T")


class ReadOnlyError(GanccError):
    """A write to an initializer the graph handed out read-only."""


# TensorProto methods that change the message; a FrozenTensor refuses them.
_MUTATORS = frozenset({"CopyFrom", "MergeFrom", "MergeFromString", "ParseFromString", "Clear",
                       "ClearField", "ClearExtension", "SetInParent", "DiscardUnknownFields",
                       "Extensions", "add", "append", "extend"})


class FrozenTensor:
    """A read-only view of an initializer (any protobuf message): fields read as usual
    (repeated fields as tuples, sub-messages as frozen views); setting a field or calling a
    mutator (CopyFrom, ClearField, ...) raises ReadOnlyError. The view shares the proto's
    storage, so handing one out copies no weight. `numpy_helper.to_array` accepts it."""

    __slots__ = ("_proto",)

    def __init__(self, proto: Message):
        object.__setattr__(self, "_proto", proto)

    def __getattr__(self, name: str) -> Any:
        if name in _MUTATORS:
            raise ReadOnlyError(f"initializer '{self._name()}' is read-only: {name}() would "
                                "change it in place",
                                "add a new initializer (Graph.add_initializer) and rewire the "
                                "readers (Graph.set_input)")
        return _frozen(getattr(self._proto, name))

    def __setattr__(self, name: str, value: Any) -> None:
        raise ReadOnlyError(f"initializer '{self._name()}' is read-only: setting its {name} "
                            "would change it in place",
                            "add a new initializer (Graph.add_initializer) and rewire the "
                            "readers (Graph.set_input)")

    def __eq__(self, other: object) -> bool:
        other = other._proto if isinstance(other, FrozenTensor) else other
        return self._proto == other

    __hash__ = None  # type: ignore[assignment]   # like the proto it views

    def _name(self) -> str:
        return getattr(self._proto, "name", "") or type(self._proto).__name__

    def copy(self) -> onnx.TensorProto:
        """A mutable copy (of every byte: for small tensors, or under a new name)."""
        out = type(self._proto)()
        out.CopyFrom(self._proto)
        return out


def _frozen(value: Any) -> Any:
    if isinstance(value, Message):
        return FrozenTensor(value)
    if isinstance(value, (str, bytes, int, float, bool)) or value is None or callable(value):
        return value
    try:                                   # a repeated field: a snapshot, not the container
        return tuple(_frozen(v) for v in value)
    except TypeError:
        return value


class Graph:
    def __init__(self, model: onnx.ModelProto, author: str | None = None,
                 on_raw_access: Callable[[], None] | None = None):
        self._model = model
        self._graph = model.graph
        # The rewrite whose pass this Graph serves: nodes created or edited through it are
        # tagged with this name. None (a Graph made outside the engine) tags nothing.
        self.author = author
        # Called once, the first time a user of this Graph reaches past its API for the
        # ModelProto (`.model`, `.graph`): the only way to the initializers other than the
        # read-only views. The engine takes its initializer fingerprints then (WeightGuard).
        self._on_raw_access = on_raw_access
        self.nodes_added = 0
        self.nodes_removed = 0
        self._reset()

    @property
    def model(self) -> onnx.ModelProto:
        """The ModelProto itself (read what the API does not offer; edit nodes through the
        API, so they are tagged, and never an existing initializer)."""
        self._raw_access()
        return self._model

    @property
    def graph(self) -> onnx.GraphProto:
        """The GraphProto itself (see `model`)."""
        self._raw_access()
        return self._graph

    def _raw_access(self) -> None:
        if self._on_raw_access is not None:
            callback, self._on_raw_access = self._on_raw_access, None
            callback()

    def opset(self, domain: str = "") -> int | None:
        """The opset the model imports for `domain` ("" and "ai.onnx" are the same)."""
        domains = ("", "ai.onnx") if domain in ("", "ai.onnx") else (domain,)
        return next((o.version for o in self._model.opset_import if o.domain in domains), None)

    def _reset(self) -> None:
        """(Re)build the per-pass state over the model's node list as it is now: indexes,
        pending edits and the memo. Called on construction and by commit()."""
        # Holding every node keeps its Python wrapper alive, so id(node) is stable for the
        # life of this Graph (removals and insertions are keyed by it).
        self._node_list = list(self._graph.node)
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
        self._graph_outputs = {o.name for o in self._graph.output}
        self._graph_inputs = {i.name for i in self._graph.input}
        self._removed: set[int] = set()
        self._insert_before: dict[int, list[onnx.NodeProto]] = {}
        self._appended: list[onnx.NodeProto] = []
        self._taken: set[str] | None = None
        self._counter = itertools.count()
        self._tagged: set[int] = set()          # id(node) already tagged with `author`
        self._memo: dict[str, Any] = {}

    def memo(self, key: str, factory: Callable[[], T]) -> T:
        """What `factory()` returns, computed once per pass: the per-pass context of a
        rewrite (a shape table, the constants it made, ...). Keys are shared by every user
        of this Graph: prefix them with the module, e.g. "gancc.rewrites.shapes". commit()
        empties the memo, as what it held describes the node list from before."""
        if key not in self._memo:
            self._memo[key] = factory()
        return self._memo[key]

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
            self._initializer_index = {t.name: t for t in self._graph.initializer}
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

    def initializer(self, tensor: str) -> FrozenTensor | None:
        """A read-only view of initializer `tensor` (or None): a rewrite never changes an
        existing initializer in place, the pass manager keeps them by reference to undo a
        pass (docs/rewrites.md)."""
        tensor_proto = self._initializers.get(tensor)
        return FrozenTensor(tensor_proto) if tensor_proto is not None else None

    def elem_type(self, tensor: str) -> int | None:
        """The element type (onnx.TensorProto.FLOAT, ...) the graph declares for `tensor`: a
        graph input or output, an initializer, or shape inference's value_info; None when
        it is not declared (e.g. a tensor a rewrite made in this pass)."""
        if self._elem_type_index is None:
            from gancc.graph.types import elem_types

            self._elem_type_index = elem_types(self._graph)
        return self._elem_type_index.get(tensor)

    def const_value(self, tensor: str) -> np.ndarray | None:
        """The value of a tensor that is an initializer or a Constant node's output, as a
        read-only array (writing into it raises ValueError: "read-only")."""
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
                    value = numpy_helper.to_array(a.t)
                    value.flags.writeable = False
                    return value
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

    def set_attr(self, node: onnx.NodeProto, name: str, value: Any) -> None:
        self._edited(node)
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

    def set_op_type(self, node: onnx.NodeProto, op_type: str, domain: str | None = None) -> None:
        """Make `node` another op (its attributes and inputs stay: the caller fits them)."""
        self._edited(node)
        node.op_type = op_type
        if domain is not None:
            node.domain = domain

    def rename_node(self, node: onnx.NodeProto, hint: str) -> str:
        """Give `node` a new name, `hint` or, when that is taken, one made from it."""
        self._edited(node)
        node.name = self.unique_name(hint)
        return node.name

    def remove_attr(self, node: onnx.NodeProto, name: str) -> None:
        self._edited(node)
        for i, a in enumerate(node.attribute):
            if a.name == name:
                del node.attribute[i]
                return

    # edits ------------------------------------------------------------------------------
    def unique_name(self, hint: str) -> str:
        """A node/tensor name not used anywhere in the graph yet."""
        if self._taken is None:
            self._taken = {n.name for n in self._graph.node} | set(self._producer) \
                | set(self._consumers) | set(self._initializers) | self._graph_inputs
        name = hint
        while name in self._taken:
            name = f"{hint}_{next(self._counter)}"
        self._taken.add(name)
        return name

    def add_initializer(self, array: np.ndarray, hint: str) -> str:
        name = self.unique_name(hint)
        tensor = numpy_helper.from_array(np.asarray(array), name)
        self._graph.initializer.append(tensor)
        if self._initializer_index is not None:
            self._initializer_index[name] = self._graph.initializer[-1]
        return name

    def add_node(self, op_type: str, inputs: list[str], outputs: list[str], *,
                 before: onnx.NodeProto | None = None, name: str | None = None,
                 tag: str | None = None, **attrs: Any) -> onnx.NodeProto:
        """Create a node; it is placed before `before` (or at the end) on commit()."""
        node = helper.make_node(op_type, inputs, outputs, name=self.unique_name(name or op_type),
                                **attrs)
        if tag:
            self.tag(node, tag)
        self._edited(node)
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
        self._edited(node)
        self._rewire(node, index, tensor)

    def _rewire(self, node: onnx.NodeProto, index: int, tensor: str) -> None:
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
        self._edited(node)
        node.output[index] = tensor
        if self._producer_index is not None and tensor:
            self._producer_index[tensor] = node
        if self._taken is not None:
            self._taken.add(tensor)

    def replace_uses(self, old: str, new: str) -> None:
        """Every reader of tensor `old` reads `new` instead (graph outputs excluded). The
        readers are not tagged: they compute what they did, from a tensor of equal value."""
        for node in self.consumers(old):
            for i, name in enumerate(node.input):
                if name == old:
                    self._rewire(node, i, new)

    def _edited(self, node: onnx.NodeProto) -> None:
        """Provenance, recorded by the graph for the engine: tag `node` with the author."""
        if self.author and id(node) not in self._tagged:
            self._tagged.add(id(node))
            self.tag(node, self.author)

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
        """Apply the pending removals and insertions to the ModelProto, in one pass, and
        empty the memo."""
        if not (self._removed or self._insert_before or self._appended):
            self._memo.clear()
            return
        order: list[onnx.NodeProto] = []
        for node in self._graph.node:
            order.extend(self._insert_before.get(id(node), ()))
            if id(node) not in self._removed:
                order.append(node)
        order.extend(n for n in self._appended if id(n) not in self._removed)
        kept = [n for n in order if id(n) not in self._removed]
        del self._graph.node[:]
        self._graph.node.extend(kept)
        self._drop_unused_initializers()
        # graph.node now holds copies: rebuild the indexes over the new objects, and forget
        # what the memo derived from the node list from before
        self._reset()

    def _drop_unused_initializers(self) -> None:
        used = _names_read(self._graph)
        used |= {o.name for o in self._graph.output}
        drop = [i for i, t in enumerate(self._graph.initializer) if t.name not in used]
        if len(drop) <= 64:
            # delete in place: rebuilding the list would copy every kept tensor (the weights)
            for i in reversed(drop):
                del self._graph.initializer[i]
        else:
            keep = [t for t in self._graph.initializer if t.name in used]
            del self._graph.initializer[:]
            self._graph.initializer.extend(keep)


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
