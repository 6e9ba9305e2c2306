"""One graph, read out of protobuf once into plain lists, and hashed: the per-graph half of
the diff (gancc.diff.match pairs two of these).

Reading protobuf fields from Python is what makes naive graph code slow: each field read is
a C call that builds a Python object. So each node's fields are read once, in one tight loop,
and nothing is read that the matcher does not need for every node: provenance tags,
attribute values, initializer tensors and node protos are looked up by position only for
the few nodes a report shows (`Side.node`, `Side.const`). What the matcher needs is plain
lists of strings, ints and tuples, so a Side can also be built in another process and sent
back (gancc.diff.parallel).
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import NamedTuple

import onnx

from gancc.errors import GraphError
from gancc.graph.weightfree import tensor_bytes, tensor_digest

# An input source: ("n", producer index, output index) | ("c", const key) | ("i", position)
# | ("-",) for an omitted optional input | ("u", name) for a name nothing defines here.
Src = tuple
# A const key: hash((dtype, shape, hash of the bytes)); equal iff equal values. One int, not
# a nested tuple: hundreds of thousands of these sources are made, sent between processes
# and, once the diff is done, scanned by the garbage collector (once per level of nesting).
Key = int


class Const(NamedTuple):
    """An initializer (or Constant node's value) as the diff reports it."""

    name: str
    dtype: int
    shape: tuple
    key: Key
    tensor: onnx.TensorProto

    @property
    def digest(self) -> str:
        """A short printable content digest (computed only for what is reported)."""
        return tensor_digest(self.tensor)


def const_key(t: onnx.TensorProto) -> tuple[Key, int]:
    """What tensor `t` holds, as a hashable key, and its stored size in bytes."""
    dims = tuple(t.dims)
    dtype = t.data_type
    data = t.raw_data or tensor_bytes(t)    # external data not loaded: the proto itself
    return hash((dtype, dims, hash(data))), len(data)


@dataclass
class Side:
    """One graph, indexed for matching: nodes in topological order and their edges.

    Node i of the Side is node `positions[i]` of the graph (Constant nodes are constants,
    not nodes, and an unsorted graph is sorted). Everything per node is a plain list."""

    model: onnx.ModelProto
    label: str
    positions: list[int]                       # index in graph.node of each node
    names: list[str]
    op: list[str]                              # "domain::op" for a non-default domain
    sig: list[int]                             # hash of op type, output count, attributes
    srcs: list[tuple[Src, ...]]
    consumers: list[tuple[tuple[int, int, int], ...]]     # (node, slot, output index)
    out_pos: list[tuple[tuple[int, int], ...]]            # (output index, graph output position)
    inputs: list[str]                          # graph inputs that are not initializers
    outputs: list[str]
    constant_positions: list[int] = field(default_factory=list)  # Constant nodes read as consts
    init_bytes: int = 0
    remote: bool = False                       # indexed in a child process
    _hashes: tuple[list[int], list[int], list[int], list[int]] | None = field(
        default=None, repr=False)
    # where each constant is: initializer position, or ~position of its Constant node
    _const_at: dict[str, int] | None = field(default=None, repr=False)

    @property
    def size(self) -> int:
        return len(self.op)

    @property
    def constant_nodes(self) -> int:
        return len(self.constant_positions)

    def name(self, i: int) -> str:
        return self.names[i] or f"#{i}"

    def node(self, i: int) -> onnx.NodeProto:
        """The proto of node i (for the few nodes a report describes)."""
        return self.model.graph.node[self.positions[i]]

    def const(self, name: str) -> Const:
        """The constant `name` as a node reads it (for the few a report shows)."""
        graph = self.model.graph
        if self._const_at is None:         # a Side sent by another process: look them up
            self._const_at = {t.name: p for p, t in enumerate(graph.initializer)}
            for p in self.constant_positions:
                self._const_at[graph.node[p].output[0]] = ~p
        at = self._const_at[name]
        t = graph.initializer[at] if at >= 0 else graph.node[~at].attribute[0].t
        return Const(name, t.data_type, tuple(t.dims), const_key(t)[0], t)

    def hashes(self) -> tuple[list[int], list[int], list[int], list[int]]:
        """Strict forward, loose forward, strict backward, loose backward hash of every node
        (gancc.diff.match says what each means); computed once."""
        if self._hashes is None:
            self._hashes = node_hashes(self)
        return self._hashes


def index(model: onnx.ModelProto, label: str) -> Side:
    """Index `model` for matching; raises GraphError for a graph with a cycle."""
    graph = model.graph
    const_src, const_at, init_bytes = _read_initializers(graph)
    inputs = [v.name for v in graph.input if v.name not in const_src]
    outputs = [v.name for v in graph.output]
    nodes = _read_nodes(graph, const_src)
    linked = _link(nodes, const_src, inputs)
    if linked is None:              # not in topological order: sort, then link again
        order = _topological(nodes.ins, nodes.outs, label, nodes.names, nodes.ops)
        nodes = nodes.reordered(order)
        linked = _link(nodes, const_src, inputs, check_order=False)
    srcs, consumers, producer = linked
    for position in nodes.constant_positions:
        const_at[graph.node[position].output[0]] = ~position
    return Side(model, label, nodes.positions, nodes.names, nodes.ops, nodes.sigs, srcs,
                consumers, _output_positions(nodes.outs, outputs, producer), inputs, outputs,
                constant_positions=nodes.constant_positions, init_bytes=init_bytes,
                _const_at=const_at)


def _read_initializers(graph: onnx.GraphProto) -> tuple[dict[str, Src], dict[str, int], int]:
    """{name: ("c", key)} of the initializers, {name: position}, and their total stored
    size in bytes. The source tuple is made once per constant and shared by all the nodes
    that read it. (const_key inlined: this runs for every weight of the graph.)"""
    const_src: dict[str, Src] = {}
    const_at: dict[str, int] = {}
    total = 0
    for position, t in enumerate(graph.initializer):
        name = t.name
        dims = tuple(t.dims)
        dtype = t.data_type
        data = t.raw_data or tensor_bytes(t)
        const_src[name] = ("c", hash((dtype, dims, hash(data))))
        const_at[name] = position
        total += len(data)
    return const_src, const_at, total


@dataclass
class _Nodes:
    """The fields of each node, read once (parallel lists, one entry per node)."""

    positions: list[int]
    names: list[str]
    ops: list[str]
    sigs: list[int]
    ins: list[list[str]]
    outs: list[list[str]]
    constant_positions: list[int]

    def reordered(self, order: list[int]) -> _Nodes:
        return _Nodes(*([seq[k] for k in order] for seq in (
            self.positions, self.names, self.ops, self.sigs, self.ins, self.outs)),
            self.constant_positions)


def _read_nodes(graph: onnx.GraphProto, const_src: dict[str, Src]) -> _Nodes:
    """Read every node's fields once; Constant nodes go into `const_src` instead.

    A tight loop: every protobuf field read is a C call, so each is made once per node,
    the list appends are bound to locals, and attributes are taken as their serialized
    bytes (decoded only for the changed nodes a report shows)."""
    positions: list[int] = []
    names: list[str] = []
    ops: list[str] = []
    sigs: list[int] = []
    ins: list[list[str]] = []
    outs: list[list[str]] = []
    constants: list[int] = []
    add_pos, add_name, add_op = positions.append, names.append, ops.append
    add_in, add_out, add_sig = ins.append, outs.append, sigs.append
    for position, node in enumerate(graph.node):
        op = node.op_type
        attrs = node.attribute
        out = node.output[:]           # a plain list copy (faster than list() on upb)
        domain = node.domain
        if op == "Constant" and len(attrs) == 1 and attrs[0].name == "value" \
                and len(out) == 1 and not domain:
            # a Constant node is a constant: lifting it to an initializer is no change
            const_src[out[0]] = ("c", const_key(attrs[0].t)[0])
            constants.append(position)
            continue
        if domain:
            op = f"{domain}::{op}"
        add_pos(position)
        add_name(node.name)
        add_op(op)
        add_in(node.input[:])
        add_out(out)
        if attrs:
            # in name-independent order: exporters list attributes as they like
            attr_key = [x.SerializeToString() for x in attrs]
            if len(attr_key) > 1:
                attr_key.sort()
            add_sig(hash((op, len(out), tuple(attr_key))))
        else:
            add_sig(hash((op, len(out), ())))
    return _Nodes(positions, names, ops, sigs, ins, outs, constants)


def _link(nodes: _Nodes, const_src: dict[str, Src], inputs: list[str], check_order: bool = True
          ) -> tuple[list[tuple[Src, ...]], list[tuple[tuple[int, int, int], ...]],
                     dict[str, Src]] | None:
    """Each node's input sources, each node's consumers, and the source of each tensor a
    node writes (its last writer); None (with `check_order`) if some node reads the output
    of a node listed after it, or its own: then the graph needs sorting first (a node
    reading its own output stays so after sorting).

    The check rides along with the linking, so a sorted graph (as ONNX requires and
    exporters write) is walked once."""
    outs = nodes.outs
    # producer[name] is the ("n", node, output) source itself, shared by all its readers
    producer = {name: ("n", i, k) for i, out in enumerate(outs)
                for k, name in enumerate(out) if name}
    input_src = {name: ("i", p) for p, name in enumerate(inputs)}
    get_producer, get_const, get_input = producer.get, const_src.get, input_src.get
    consumers: list[list[tuple[int, int, int]]] = [[] for _ in outs]
    srcs: list[tuple[Src, ...]] = []
    add_row = srcs.append
    empty = ("-",)
    for i, row_names in enumerate(nodes.ins):
        row: list[Src] = []
        for slot, name in enumerate(row_names):
            src = get_producer(name)
            if src is not None:
                if src[1] >= i and check_order:
                    return None
                consumers[src[1]].append((i, slot, src[2]))
            elif not name:
                src = empty
            else:
                src = get_const(name) or get_input(name) or ("u", name)
            row.append(src)
        add_row(tuple(row))
    return srcs, [tuple(c) for c in consumers], producer


def _output_positions(outs: list[list[str]], outputs: list[str], producer: dict[str, Src]
                      ) -> list[tuple[tuple[int, int], ...]]:
    """Per node, (output index, graph output position) of each output that is a graph
    output. Only the few nodes that write one are looked at, found through `producer`
    unless some tensor name is written twice (or empty): then every node is."""
    positions: dict[str, list[int]] = defaultdict(list)
    for p, name in enumerate(outputs):
        positions[name].append(p)
    if len(producer) == sum(map(len, outs)):
        writers = {producer[name][1] for name in positions if name in producer}
    else:
        writers = {i for i, out in enumerate(outs) for name in out if name and name in positions}
    out_pos: list[tuple[tuple[int, int], ...]] = [()] * len(outs)
    for i in writers:
        out_pos[i] = tuple((k, p) for k, name in enumerate(outs[i]) for p in positions.get(name, ()))
    return out_pos


def _topological(ins: list[list[str]], outs: list[list[str]], label: str, names: list[str],
                 ops: list[str]) -> list[int]:
    """An order of the nodes in which every producer comes before its readers; raises
    GraphError for a cycle."""
    made = {}
    for i, out in enumerate(outs):
        for name in out:
            if name:
                made[name] = i
    waiting = [0] * len(ins)
    readers: dict[int, list[int]] = defaultdict(list)
    for i, row in enumerate(ins):
        for name in set(row):
            p = made.get(name)
            if p is not None and p != i:
                waiting[i] += 1
                readers[p].append(i)
    ready = deque(i for i in range(len(ins)) if waiting[i] == 0)
    order: list[int] = []
    while ready:
        i = ready.popleft()
        order.append(i)
        for r in readers.get(i, ()):
            waiting[r] -= 1
            if waiting[r] == 0:
                ready.append(r)
    if len(order) != len(ins):
        stuck = next(i for i in range(len(ins)) if waiting[i])
        raise GraphError("the graph has a cycle", node=names[stuck] or ops[stuck], model=label)
    return order


def node_hashes(side: Side) -> tuple[list[int], list[int], list[int], list[int]]:
    """Strict forward, loose forward, strict backward, loose backward hash of every node."""
    srcs, sig, op, consumers, out_pos = side.srcs, side.sig, side.op, side.consumers, side.out_pos
    n = len(srcs)
    fs, fl = [0] * n, [0] * n
    fixed: list[tuple] = [()] * n       # the non-node inputs (constants, graph inputs, none)
    for i in range(n):
        strict, loose = [], []
        row = srcs[i]
        for slot, src in enumerate(row):
            kind = src[0]
            if kind == "n":
                p = src[1]
                strict.append((fs[p], src[2]))
                loose.append((slot, fl[p], src[2]))
            else:
                strict.append(src)
                if kind == "i" or kind == "u":
                    loose.append((slot, src))
        if len(strict) != len(loose):       # (no inputs at all: () already)
            fixed[i] = tuple([s for s in row if s[0] != "n"])
        fs[i] = hash((sig[i], tuple(strict)))
        fl[i] = hash((op[i], tuple(loose)))
    bs, bl = [0] * n, [0] * n
    for i in range(n - 1, -1, -1):
        users = consumers[i]
        if len(users) == 1:
            c, slot, k = users[0]
            after_s = ((bs[c], slot, k),)
            after_l = ((bl[c], slot, k),)
        else:
            after_s = tuple(sorted([(bs[c], slot, k) for c, slot, k in users]))
            after_l = tuple(sorted([(bl[c], slot, k) for c, slot, k in users]))
        bs[i] = hash((sig[i], fixed[i], out_pos[i], after_s))
        bl[i] = hash((op[i], out_pos[i], after_l))
    return fs, fl, bs, bl
