"""Match the nodes of two ONNX graphs by structure, not by name.

Names are what an exporter makes up: a re-export, onnxsim, or a rewrite renames freely, and
a name-based diff (onnxsim --graph-diff) then reports every node as removed and re-added.
Here a node is identified by what it computes and where it sits:

1. Each node gets four hashes, computed in one topological sweep each way:
   - strict forward: op type, attributes, the strict forward hashes of its producers (with
     the output index and input slot), constant inputs by value digest, graph inputs by
     position. Equal hashes mean "same computation on the same data", whatever the names.
   - strict backward: op type, attributes, constants, and the strict backward hashes of its
     consumers (and its graph-output positions): "same use of the result".
   - loose forward / loose backward: the same without attributes and constant inputs, so a
     node whose attributes or weights changed still has its place in the graph.
2. Nodes are paired by equal hashes, strictest first: strict forward+backward, strict
   forward, strict backward, then the loose ones. A hash shared by the same number of
   nodes on both sides pairs them (equal names first, then in graph order); anything else
   waits for step 3.
3. Neighbour propagation: from every matched pair, an unmatched producer (same input slot)
   or an unmatched consumer (same output and slot) that is the only candidate on both sides
   is paired; same op type first, to a fixed point, then any op type.

Every step is linear in the graph size (dict grouping, one worklist), so two 100k-node
graphs match in about a second. Initializers and Constant nodes are both constants,
compared by value digest: renaming, reordering, de-duplicating or lifting them (Constant
node -> initializer) is invisible.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from typing import NamedTuple

import onnx

from gancc.errors import GraphError
from gancc.graph.text import tensor_bytes, tensor_digest

# An input source: ("n", producer index, output index) | ("c", const key) | ("i", position)
# | ("-",) for an omitted optional input | ("u", name) for a name nothing defines here.
Src = tuple


class Const(NamedTuple):
    """An initializer (or Constant node's value) as the diff sees it: what it holds.
    (A NamedTuple: a graph has tens of thousands of these, and they are built fast.)"""

    name: str
    dtype: int
    shape: tuple
    key: tuple                    # (dtype, shape, hash of the bytes): equal iff equal values
    tensor: onnx.TensorProto

    @property
    def digest(self) -> str:
        """A short printable content digest (computed only for what is reported)."""
        return tensor_digest(self.tensor)


_new_const = tuple.__new__


def _const(name: str, t: onnx.TensorProto) -> tuple[Const, int]:
    """The Const of tensor `t`, and its stored size in bytes."""
    dims = tuple(t.dims)
    dtype = t.data_type
    data = t.raw_data or tensor_bytes(t)    # external data not loaded: the proto itself
    # tuple.__new__ skips the NamedTuple's Python-level __new__ (one call per initializer)
    return _new_const(Const, (name, dtype, dims, (dtype, dims, hash(data)), t)), len(data)


@dataclass
class Side:
    """One graph, indexed for matching: nodes in topological order and their edges.

    Everything the matcher reads is copied out of the protobuf once (protobuf field access
    is what makes naive Python graph code slow), into plain lists indexed by node."""

    model: onnx.ModelProto
    label: str
    nodes: list[onnx.NodeProto]
    consts: dict[str, Const]
    inputs: list[str]                          # graph inputs that are not initializers
    outputs: list[str]
    names: list[str] = field(default_factory=list)
    srcs: list[list[Src]] = field(default_factory=list)
    consumers: list[list[tuple[int, int, int]]] = field(default_factory=list)  # (node, slot, out)
    out_pos: list[tuple[tuple[int, int], ...]] = field(default_factory=list)  # (out, position)
    sig: list[int] = field(default_factory=list)       # op type + attributes
    op: list[str] = field(default_factory=list)
    tagged: bool = False                       # some node carries a provenance tag
    constant_nodes: int = 0
    init_bytes: int = 0

    def name(self, i: int) -> str:
        return self.names[i] or f"#{i}"


def index(model: onnx.ModelProto, label: str) -> Side:
    """Index `model` for matching; raises GraphError for a graph with a cycle."""
    graph = model.graph
    consts: dict[str, Const] = {}
    init_bytes = 0
    for t in graph.initializer:
        consts[t.name], size = _const(t.name, t)
        init_bytes += size
    inputs = [v.name for v in graph.input if v.name not in consts]
    outputs = [v.name for v in graph.output]
    # one read of each node's fields
    # (a tight loop: every protobuf field read is a C call, so each is made once per node,
    # and the list appends are bound to locals)
    nodes, names, ops, ins, outs, sigs = [], [], [], [], [], []
    add_node, add_name, add_op = nodes.append, names.append, ops.append
    add_in, add_out, add_sig = ins.append, outs.append, sigs.append
    constant_nodes = 0
    for node in graph.node:
        op = node.op_type
        attrs = node.attribute
        out = node.output[:]           # a plain list copy (faster than list() on upb)
        domain = node.domain
        if op == "Constant" and len(attrs) == 1 and attrs[0].name == "value" \
                and len(out) == 1 and not domain:
            # a Constant node is a constant: lifting it to an initializer is no change
            consts[out[0]] = _const(out[0], attrs[0].t)[0]
            constant_nodes += 1
            continue
        if domain:
            op = f"{domain}::{op}"
        add_node(node)
        add_name(node.name)
        add_op(op)
        add_in(node.input[:])
        add_out(out)
        if attrs:
            # attributes compared as their serialized bytes, in name-independent order;
            # decoding values happens only for the changed nodes a report shows
            attr_key = [x.SerializeToString() for x in attrs]
            if len(attr_key) > 1:
                attr_key.sort()
            add_sig(hash((op, len(out), tuple(attr_key))))
        else:
            add_sig(hash((op, len(out), ())))
    order = _topological(ins, outs, label, names, ops)
    if order is not None:
        nodes, names, ops, ins, outs, sigs = ([seq[k] for k in order]
                                              for seq in (nodes, names, ops, ins, outs, sigs))
    side = Side(model, label, nodes, consts, inputs, outputs, names=names, op=ops, sig=sigs,
                constant_nodes=constant_nodes, init_bytes=init_bytes)
    side.tagged = _has_tags(graph, nodes)
    input_pos = {name: p for p, name in enumerate(inputs)}
    output_pos: dict[str, list[int]] = defaultdict(list)
    for p, name in enumerate(outputs):
        output_pos[name].append(p)
    # producer[name] is the ("n", node, output) source itself, shared by all its readers;
    # the same sweep notes the (few) nodes that write a graph output
    producer: dict[str, tuple[str, int, int]] = {}
    writes_output: list[int] = []
    for i, out in enumerate(outs):
        for k, name in enumerate(out):
            if name:
                producer[name] = ("n", i, k)
                if name in output_pos and (not writes_output or writes_output[-1] != i):
                    writes_output.append(i)
    consumers: list[list[tuple[int, int, int]]] = [[] for _ in nodes]
    srcs = side.srcs
    empty = ("-",)
    const_src: dict[str, Src] = {}                 # one ("c", key) per constant read
    get_producer = producer.get
    for i, row_names in enumerate(ins):
        row: list[Src] = []
        for slot, name in enumerate(row_names):
            hit = get_producer(name)
            if hit is not None:
                row.append(hit)
                consumers[hit[1]].append((i, slot, hit[2]))
            elif not name:
                row.append(empty)
            elif name in consts:
                src = const_src.get(name)
                if src is None:
                    src = const_src[name] = ("c", consts[name].key)
                row.append(src)
            elif name in input_pos:
                row.append(("i", input_pos[name]))
            else:
                row.append(("u", name))
        srcs.append(row)
    side.consumers = consumers
    # only the few nodes that write a graph output have positions
    out_pos: list[tuple[tuple[int, int], ...]] = [()] * len(outs)
    for i in writes_output:
        out_pos[i] = tuple((k, p) for k, name in enumerate(outs[i])
                           for p in output_pos.get(name, ()))
    side.out_pos = out_pos
    return side


def _has_tags(graph: onnx.GraphProto, nodes: list[onnx.NodeProto]) -> bool:
    """Does any node carry a provenance tag? Reading the nodes' metadata is cheap; serializing
    the graph to search it would copy every weight (tens of MB for a GAN) on each diff."""
    return any(len(n.metadata_props) for n in nodes)


def _topological(ins: list[list[str]], outs: list[list[str]], label: str, names: list[str],
                 ops: list[str]) -> list[int] | None:
    """None when the nodes are in topological order already (as ONNX requires and exporters
    write them), else an order that is; raises GraphError for a cycle."""
    made = {}
    for i, out in enumerate(outs):
        for name in out:
            if name:
                made[name] = i
    ordered = True
    for i, row in enumerate(ins):
        for name in row:
            p = made.get(name)
            if p is not None and p >= i:
                ordered = False
                break
        if not ordered:
            break
    if ordered:
        return None
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


def _hashes(side: Side) -> tuple[list[int], list[int], list[int], list[int]]:
    """Strict forward, loose forward, strict backward, loose backward hash of every node."""
    srcs, sig, op, consumers, out_pos = side.srcs, side.sig, side.op, side.consumers, side.out_pos
    n = len(srcs)
    fs, fl = [0] * n, [0] * n
    fixed: list[tuple] = [()] * n       # the non-node inputs (constants, graph inputs, none)
    for i in range(n):
        strict, loose = [], []
        slot = 0
        row = srcs[i]
        for src in row:
            kind = src[0]
            if kind == "n":
                p = src[1]
                strict.append((fs[p], src[2]))
                loose.append((slot, fl[p], src[2]))
            else:
                strict.append(src)
                if kind == "i" or kind == "u":
                    loose.append((slot, src))
            slot += 1
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


@dataclass
class Matching:
    a: Side
    b: Side
    a_to_b: dict[int, int]
    b_to_a: dict[int, int]
    phases: dict[str, int]                      # how many pairs each step found


def match(a: Side, b: Side) -> Matching:
    """Pair the nodes of `a` and `b` (see the module docstring for the steps)."""
    fs_a, fl_a, bs_a, bl_a = _hashes(a)
    fs_b, fl_b, bs_b, bl_b = _hashes(b)
    a_to_b: dict[int, int] = {}
    b_to_a: dict[int, int] = {}
    phases: dict[str, int] = {}
    steps = [
        ("strict", list(zip(fs_a, bs_a)), list(zip(fs_b, bs_b))),
        ("strict-forward", fs_a, fs_b),
        ("strict-backward", bs_a, bs_b),
        ("loose", list(zip(fl_a, bl_a)), list(zip(fl_b, bl_b))),
        ("loose-forward", fl_a, fl_b),
        ("loose-backward", bl_a, bl_b),
    ]
    for label, keys_a, keys_b in steps:
        found = 0
        if len(a_to_b) < len(a.nodes) and len(b_to_a) < len(b.nodes):
            found = _pair_equal_keys(a, b, keys_a, keys_b, a_to_b, b_to_a)
        phases[label] = found
    phases["neighbours"] = _propagate(a, b, a_to_b, b_to_a, same_op=True)
    extra = _propagate(a, b, a_to_b, b_to_a, same_op=False)
    phases["neighbours-any-op"] = extra
    if extra:
        phases["neighbours"] += _propagate(a, b, a_to_b, b_to_a, same_op=True)
    return Matching(a, b, a_to_b, b_to_a, phases)


def _pair_equal_keys(a: Side, b: Side, keys_a: list, keys_b: list,
                     a_to_b: dict[int, int], b_to_a: dict[int, int]) -> int:
    """Pair unmatched nodes whose key occurs equally often on both sides. Counting and
    position lookup are dict/Counter builds (C speed); lists are made only for the rare
    keys that several nodes share."""
    ids_a = range(len(keys_a)) if not a_to_b else [i for i in range(len(keys_a)) if i not in a_to_b]
    ids_b = range(len(keys_b)) if not b_to_a else [j for j in range(len(keys_b)) if j not in b_to_a]
    ka = keys_a if not a_to_b else [keys_a[i] for i in ids_a]
    kb = keys_b if not b_to_a else [keys_b[j] for j in ids_b]
    count_a, count_b = Counter(ka), Counter(kb)
    pos_a, pos_b = dict(zip(ka, ids_a)), dict(zip(kb, ids_b))
    found = 0
    shared: set = set()
    for key, n in count_a.items():
        if count_b.get(key) != n:
            continue
        if n == 1:
            i, j = pos_a[key], pos_b[key]
            a_to_b[i] = j
            b_to_a[j] = i
            found += 1
        else:
            shared.add(key)
    if shared:
        groups_a: dict = defaultdict(list)
        groups_b: dict = defaultdict(list)
        for i, key in zip(ids_a, ka):
            if key in shared:
                groups_a[key].append(i)
        for j, key in zip(ids_b, kb):
            if key in shared:
                groups_b[key].append(j)
        for key, left in groups_a.items():
            for i, j in _pair_group(a, b, left, groups_b[key]):
                a_to_b[i] = j
                b_to_a[j] = i
                found += 1
    return found


def _pair_group(a: Side, b: Side, left: list[int], right: list[int]) -> list[tuple[int, int]]:
    if len(left) == 1:
        return [(left[0], right[0])]
    # Structurally identical nodes: any pairing is right; equal names make the fewest renames.
    by_name = {b.names[j]: j for j in right if b.names[j]}
    pairs, used = [], set()
    rest_left = []
    for i in left:
        j = by_name.get(a.names[i]) if a.names[i] else None
        if j is not None and j not in used:
            pairs.append((i, j))
            used.add(j)
        else:
            rest_left.append(i)
    pairs += zip(rest_left, [j for j in right if j not in used])
    return pairs


def _propagate(a: Side, b: Side, a_to_b: dict[int, int], b_to_a: dict[int, int],
               same_op: bool) -> int:
    """Pair unmatched neighbours of matched pairs, where the pairing is unambiguous.

    With `same_op`, a producer of a different op type is looked through (up to LOOK_THROUGH
    unmatched nodes along input 0, on either side): that is how a removed Pad between two
    matched nodes, or an inserted Cast, is stepped over instead of mispairing the chain.
    Without it, nodes of different op types pair only when they sit between the same
    matched inputs (a node whose op was replaced in place)."""
    work = deque(_frontier(a, b, a_to_b, b_to_a))
    found = 0

    def pair(i: int, j: int) -> None:
        nonlocal found
        a_to_b[i], b_to_a[j] = j, i
        work.append((i, j))
        found += 1

    while work:
        i, j = work.popleft()
        # producers, slot by slot
        for sa, sb in zip(a.srcs[i], b.srcs[j]):
            if sa[0] != "n" or sb[0] != "n" or sa[2] != sb[2]:
                continue
            pi, pj = sa[1], sb[1]
            free_i, free_j = pi not in a_to_b, pj not in b_to_a
            if free_i and free_j and a.op[pi] == b.op[pj]:
                pair(pi, pj)
            elif same_op:
                if free_i and not free_j or free_i and free_j:
                    x = _look_through(a, pi, a_to_b, b.op[pj] if free_j else None)
                    if x is not None and free_j:
                        pair(x, pj)
                        continue
                if free_j:
                    y = _look_through(b, pj, b_to_a, a.op[pi] if free_i else None)
                    if y is not None and free_i:
                        pair(pi, y)
            elif free_i and free_j and _same_inputs(a, b, pi, pj, a_to_b):
                pair(pi, pj)
        # consumers, grouped by (output, slot[, op]); only a single candidate on each side
        groups_a: dict = defaultdict(list)
        groups_b: dict = defaultdict(list)
        for c, slot, k in a.consumers[i]:
            if c not in a_to_b:
                groups_a[(k, slot, a.op[c] if same_op else "")].append(c)
        if not groups_a:
            continue
        for c, slot, k in b.consumers[j]:
            if c not in b_to_a:
                groups_b[(k, slot, b.op[c] if same_op else "")].append(c)
        for key, left in groups_a.items():
            right = groups_b.get(key)
            if right and len(left) == 1 and len(right) == 1 and left[0] not in a_to_b \
                    and right[0] not in b_to_a \
                    and (same_op or _same_inputs(a, b, left[0], right[0], a_to_b)):
                pair(left[0], right[0])
    return found


LOOK_THROUGH = 3


def _frontier(a: Side, b: Side, a_to_b: dict[int, int], b_to_a: dict[int, int]
              ) -> list[tuple[int, int]]:
    """The matched pairs next to an unmatched node: the only places propagation can act."""
    seeds: dict[int, int] = {}
    for side, matched, to_a in ((a, a_to_b, None), (b, b_to_a, b_to_a)):
        for x in range(len(side.nodes)):
            if x in matched:
                continue
            near = [src[1] for src in side.srcs[x] if src[0] == "n"]
            near += [c for c, _, _ in side.consumers[x]]
            for y in near:
                if y in matched:
                    i = y if to_a is None else to_a[y]
                    seeds[i] = a_to_b[i]
    return sorted(seeds.items())


def _look_through(side: Side, start: int, matched: dict[int, int], op: str | None) -> int | None:
    """From unmatched node `start`, follow input 0 up through unmatched nodes to the first
    one of op type `op` (unmatched too); None if there is none within LOOK_THROUGH steps."""
    if op is None:
        return None
    x = start
    for _ in range(LOOK_THROUGH):
        if x in matched or not side.srcs[x] or side.srcs[x][0][0] != "n":
            return None
        x = side.srcs[x][0][1]
        if x in matched:
            return None
        if side.op[x] == op:
            return x
    return None


def _same_inputs(a: Side, b: Side, i: int, j: int, a_to_b: dict[int, int]) -> bool:
    """Do nodes i and j read at least one input from matched producers (or the same graph
    input) in the same slot? The guard for pairing nodes of different op types."""
    for sa, sb in zip(a.srcs[i], b.srcs[j]):
        if sa[0] == "n" and sb[0] == "n" and a_to_b.get(sa[1]) == sb[1] and sa[2] == sb[2]:
            return True
        if sa[0] == "i" and sa == sb:
            return True
    return False
