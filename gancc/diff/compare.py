"""Turn a node matching into the list of differences a user reads.

Given the pairs from gancc.diff.match, this reports: graph inputs/outputs (by position)
whose name, dtype or shape changed; nodes removed (in A only), added (in B only) and changed
(op type, attributes old -> new, inputs that now come from elsewhere); initializers read by
matched nodes whose dtype, shape or values changed; an op-type histogram of each side; and
the changes grouped by the rewrite whose provenance tag (gancc.graph.PROVENANCE_KEY) B's
node carries and A's did not. A removed node is credited to the new tags of its matched
neighbours (the Conv that absorbed a Pad names fuse-pad-into-conv). Renames, initializer
reordering and de-duplication are recorded but are not differences; nor is a symbolic
dimension of a graph input or output that only changed its name (`N` -> `-1`), which is
listed apart (`dims_renamed`).

Attribution comes only from tags, never from op types. A tag says that a rewrite edited the
node, not which field, so one change is taken out of its credit: an input that A computed
from constants only, by nodes that are gone in B, and that B reads as a constant of the
same value (onnxsim's folding of an export's computed Pad pads). gancc never tags such a
value-preserving rewiring (Graph.replace_uses does not tag), so it is `folded` and
untagged, and so are the nodes that computed it. Everything without a credited tag is
grouped as UNTAGGED.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from gancc.diff.match import Matching, Side, match
from gancc.diff.parallel import index_pair
from gancc.dtypes import printed_name
from gancc.gcpause import gc_paused
from gancc.graph import provenance
from gancc.graph.text import format_attribute_value, format_type, value_type
from gancc.graph.weightfree import is_weight_free

# The group of the changes no new provenance tag accounts for. Rewrite names are kebab-case,
# so no rewrite can be called this; renderings show it as "untagged".
UNTAGGED = "(untagged)"
# A computed input is checked for being folded only when at most this many nodes and bytes
# of constants computed it (an export's pads take 7 nodes and a few dozen bytes).
FOLD_MAX_NODES = 64
FOLD_MAX_BYTES = 1 << 20


@dataclass
class NodeChange:
    """One matched node pair that differs."""

    a: str
    b: str
    op_type: str
    op_type_was: str | None = None
    attributes: dict[str, tuple[Any, Any]] = field(default_factory=dict)   # JSON; None: absent
    inputs: list[dict[str, Any]] = field(default_factory=list)     # slot, old, new, folded
    rewrites: list[str] = field(default_factory=list)    # credited with all but folded inputs
    index_a: int = -1                    # positions in the matcher's topological order
    index_b: int = -1

    @property
    def untagged(self) -> bool:
        """Whether some part of this change is credited to no rewrite: all of it when no
        new tag is credited, else its folded inputs."""
        return not self.rewrites or any(inp["folded"] for inp in self.inputs)

    def to_json(self) -> dict:
        out: dict[str, Any] = {"a": self.a, "b": self.b, "op_type": self.op_type}
        if self.op_type_was:
            out["op_type_was"] = self.op_type_was
        out["attributes"] = {k: {"old": o, "new": n} for k, (o, n) in self.attributes.items()}
        out["inputs"] = self.inputs
        out["rewrites"] = self.rewrites
        out["untagged"] = self.untagged
        return out


@dataclass
class NodeRef:
    """A node that is on one side only."""

    name: str
    op_type: str
    index: int
    rewrites: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"name": self.name, "op_type": self.op_type, "rewrites": self.rewrites}


@dataclass
class DiffResult:
    a_label: str
    b_label: str
    a_nodes: int
    b_nodes: int
    io: list[dict] = field(default_factory=list)
    # symbolic dims of graph inputs/outputs that only changed name: {kind, position, name,
    # dim, old, new}; like node renames, not a change (`equal` ignores them)
    dims_renamed: list[dict] = field(default_factory=list)
    removed: list[NodeRef] = field(default_factory=list)
    added: list[NodeRef] = field(default_factory=list)
    changed: list[NodeChange] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    initializers: list[dict] = field(default_factory=list)
    histogram_a: dict[str, int] = field(default_factory=dict)
    histogram_b: dict[str, int] = field(default_factory=dict)
    init_stats: dict[str, dict[str, int]] = field(default_factory=dict)
    phases: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    # where the seconds went: index (reading both graphs; hashing them too where B was
    # indexed in a child process, gancc.diff.parallel), hash, match, compare
    timings: dict[str, float] = field(default_factory=dict)
    parallel: bool = False
    matching: Matching | None = field(default=None, repr=False)
    init_changed_b: set[int] = field(default_factory=set, repr=False)   # B nodes reading one

    @property
    def equal(self) -> bool:
        return not (self.io or self.removed or self.added or self.changed or self.initializers)

    def by_rewrite(self) -> dict[str, dict[str, list]]:
        """{rewrite: {"changed": [NodeChange], "added": [NodeRef], "removed": [NodeRef],
        "initializers": [dict]}}; changes without a new tag under UNTAGGED, listed last. A
        change that is partly credited (a tagged node with a folded input) is in both."""
        groups: dict[str, dict[str, list]] = {}

        def put(tags: list[str], kind: str, item) -> None:
            for tag in tags or [UNTAGGED]:
                groups.setdefault(tag, {"changed": [], "added": [], "removed": [],
                                        "initializers": []})[kind].append(item)

        for c in self.changed:
            put(c.rewrites + ([UNTAGGED] if c.rewrites and c.untagged else []), "changed", c)
        for r in self.added:
            put(r.rewrites, "added", r)
        for r in self.removed:
            put(r.rewrites, "removed", r)
        for init in self.initializers:
            put(init.get("rewrites", []), "initializers", init)
        return dict(sorted(groups.items(), key=lambda kv: (kv[0] == UNTAGGED, kv[0])))

    def summary(self) -> dict[str, int]:
        return {"changed": len(self.changed), "added": len(self.added),
                "removed": len(self.removed), "renamed": len(self.renamed),
                "io": len(self.io), "initializers": len(self.initializers)}


def diff_models(a_model: onnx.ModelProto, b_model: onnx.ModelProto,
                a_label: str = "A", b_label: str = "B") -> DiffResult:
    """Compare two graphs structurally; see the module docstrings for what is reported.
    The garbage collector is paused meanwhile (gancc.diff.gcpause says why)."""
    with gc_paused():
        return _diff_models(a_model, b_model, a_label, b_label)


def _diff_models(a_model: onnx.ModelProto, b_model: onnx.ModelProto,
                 a_label: str, b_label: str) -> DiffResult:
    start = time.perf_counter()
    a, b = index_pair(a_model, b_model, a_label, b_label)
    indexed = time.perf_counter()
    a.hashes()
    b.hashes()
    hashed = time.perf_counter()
    m = match(a, b)
    matched = time.perf_counter()
    result = DiffResult(a_label, b_label, len(a_model.graph.node), len(b_model.graph.node),
                        phases=m.phases,
                        matching=m)
    result.io, result.dims_renamed = _io_changes(a, b)
    new_tags = _NewTags(a, b, m)
    folds = _Folds(a, b, m)
    removed_at = _compare_matched_nodes(a, b, m, folds, new_tags, result)
    _list_unmatched_nodes(a, b, m, folds, new_tags, removed_at, result)
    result.histogram_a, result.histogram_b = _histogram(a), _histogram(b)
    result.init_stats = {"a": {"count": len(a_model.graph.initializer), "bytes": a.init_bytes},
                         "b": {"count": len(b_model.graph.initializer), "bytes": b.init_bytes}}
    result.seconds = time.perf_counter() - start
    result.timings = {"index": indexed - start, "hash": hashed - indexed,
                      "match": matched - hashed, "compare": start + result.seconds - matched}
    result.parallel = b.remote
    return result


def _compare_matched_nodes(a: Side, b: Side, m: Matching, folds: _Folds, new_tags: _NewTags,
                           result: DiffResult) -> list[int]:
    """Fill result.renamed, .changed and .initializers from A's matched nodes; returns the
    indices of A's unmatched (removed) nodes, in order. The hot loop: one pass over A."""
    removed_at: list[int] = []
    a_to_b = m.a_to_b
    to_b = a_to_b.get
    names_a, names_b, sig_a, sig_b = a.names, b.names, a.sig, b.sig
    srcs_a, srcs_b = a.srcs, b.srcs
    renamed = result.renamed
    for i in range(a.size):
        j = to_b(i)
        if j is None:
            removed_at.append(i)
            continue
        if names_a[i] != names_b[j]:
            renamed.append((names_a[i], names_b[j]))
        row_a, row_b = srcs_a[i], srcs_b[j]
        if sig_a[i] == sig_b[j] and len(row_a) == len(row_b):
            # the common case, nothing to report: _same_src on every slot, inlined (this
            # loop runs for every matched node)
            for sa, sb in zip(row_a, row_b):
                if sa[0] == "n":
                    if sb[0] != "n" or to_b(sa[1]) != sb[1] or sa[2] != sb[2]:
                        break
                elif sa != sb and not (sa[0] == "u" and sb[0] == "u"):
                    break
            else:
                continue
        change, inits = _compare_pair(a, b, m, i, j, folds)
        tags = new_tags(j)
        for init in inits:
            init["rewrites"] = tags
        result.initializers += inits
        if inits:
            result.init_changed_b.add(j)
        if change is not None:
            change.rewrites = tags if _has_unfolded_part(change) else []
            change.index_a, change.index_b = i, j
            result.changed.append(change)
    return removed_at


def _list_unmatched_nodes(a: Side, b: Side, m: Matching, folds: _Folds, new_tags: _NewTags,
                          removed_at: list[int], result: DiffResult) -> None:
    """Fill result.removed and result.added. Runs after the matched-node pass: a fold found
    at a later node clears the credit of the nodes it removed."""
    for i in removed_at:
        credit = [] if i in folds.removed else _credit_removed(a, m, i, new_tags)
        result.removed.append(NodeRef(a.name(i), a.op[i], i, credit))
    for j in range(b.size):
        if j not in m.b_to_a:
            result.added.append(NodeRef(b.name(j), b.op[j], j, new_tags(j)))


def _histogram(side: Side) -> dict[str, int]:
    counts = Counter(side.op)
    if side.constant_nodes:
        counts["Constant"] += side.constant_nodes
    return dict(sorted(counts.items()))


class _NewTags:
    """new_tags(j): the provenance tags of B's node j that its counterpart in A did not
    carry. Read on demand: only the nodes a report lists (and their neighbours) are asked,
    so the diff never reads every node's metadata."""

    def __init__(self, a: Side, b: Side, m: Matching) -> None:
        self.a, self.b, self.b_to_a = a, b, m.b_to_a
        self.memo: dict[int, list[str]] = {}

    def __call__(self, j: int) -> list[str]:
        tags = self.memo.get(j)
        if tags is None:
            tags = provenance(self.b.node(j)) if 0 <= j < self.b.size else []
            if tags:
                i = self.b_to_a.get(j)
                old = set(provenance(self.a.node(i))) if i is not None else set()
                tags = [t for t in tags if t not in old]
            self.memo[j] = tags
        return list(tags)


def _has_unfolded_part(c: NodeChange) -> bool:
    return bool(c.op_type_was or c.attributes or not all(inp["folded"] for inp in c.inputs))


class _Folds:
    """folds(src, name_a, name_b): whether A's input `src` (a node output) was folded into
    B's constant `name_b`: A computed it from constants only, with at most FOLD_MAX_NODES
    nodes, none of them matched in B, and it evaluates (onnx's reference evaluator) to the
    same dtype, shape and bytes. `removed` collects the A nodes of the folds found.

    Asked only for the changed inputs of the nodes a report lists (a computed input in A,
    a constant in B), so it costs nothing on a diff without such an input."""

    def __init__(self, a: Side, b: Side, m: Matching) -> None:
        self.a, self.b, self.a_to_b = a, b, m.a_to_b
        self.removed: set[int] = set()
        self.memo: dict[tuple, np.ndarray | None] = {}

    def __call__(self, src: tuple, name_a: str, name_b: str) -> bool:
        region = self._region(src[1])
        if region is None:
            return False
        # equal strict forward hashes: the same ops on the same constants, so the same value
        # (an export computes each Pad's pads with its own copy of the same chain)
        key = (self.a.hashes()[0][src[1]], src[2])
        if key not in self.memo:
            self.memo[key] = self._evaluate(region, name_a)
        value = self.memo[key]
        const = self.b.const(name_b).tensor
        if value is None or is_weight_free(const):
            return False
        folded = numpy_helper.to_array(const)
        if value.dtype != folded.dtype or value.shape != folded.shape or \
                value.tobytes() != folded.tobytes():
            return False
        self.removed.update(region)
        return True

    def _region(self, start: int) -> list[int] | None:
        """The A nodes computing node `start`'s outputs, in topological order, if they read
        constants only and are all unmatched; else None."""
        a, seen, todo = self.a, set(), [start]
        while todo:
            p = todo.pop()
            if p in seen:
                continue
            if p in self.a_to_b or len(seen) >= FOLD_MAX_NODES:
                return None
            seen.add(p)
            for s in a.srcs[p]:
                if s[0] == "n":
                    todo.append(s[1])
                elif s[0] in ("i", "u"):
                    return None
        return sorted(seen)

    def _evaluate(self, region: list[int], name: str) -> np.ndarray | None:
        from onnx.reference import ReferenceEvaluator

        a = self.a
        nodes = [a.node(i) for i in region]
        consts: dict[str, onnx.TensorProto] = {}
        for i, node in zip(region, nodes):
            if any(x.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                   for x in node.attribute):
                return None
            for src, inp in zip(a.srcs[i], node.input):
                if src[0] == "c" and inp not in consts:
                    tensor = onnx.TensorProto()
                    tensor.CopyFrom(a.const(inp).tensor)
                    tensor.name = inp
                    consts[inp] = tensor
        if any(is_weight_free(t) for t in consts.values()) or \
                sum(t.ByteSize() for t in consts.values()) > FOLD_MAX_BYTES:
            return None
        graph = helper.make_graph(nodes, "fold", [], [helper.make_empty_tensor_value_info(name)],
                                  list(consts.values()))
        model = helper.make_model(graph, opset_imports=a.model.opset_import,
                                  ir_version=a.model.ir_version)
        try:
            return np.asarray(ReferenceEvaluator(model).run([name], {})[0])
        except Exception:  # noqa: BLE001 (an op it lacks, a malformed node: not shown folded)
            return None


def _credit_removed(a: Side, m: Matching, i: int, new_tags: _NewTags) -> list[str]:
    """The new tags of the matched neighbours of a removed node: consumers first."""
    for neighbours in ([c for c, _, _ in a.consumers[i]],
                       [s[1] for s in a.srcs[i] if s[0] == "n"]):
        tags: list[str] = []
        for n in neighbours:
            for t in new_tags(m.a_to_b.get(n, -1)):
                if t not in tags:
                    tags.append(t)
        if tags:
            return tags
    return []


def _describe_src(side: Side, src: tuple, name: str) -> str:
    kind = src[0]
    if kind == "-":
        return "(none)"
    if kind == "n":
        return f"{name} (output {src[2]} of {side.op[src[1]]} {side.name(src[1])})"
    if kind == "c":
        const = side.const(name)
        return f"{name} (constant {format_type(printed_name(const.dtype), const.shape)})"
    if kind == "i":
        return f"{name} (graph input {src[1]})"
    return f"{name} (undefined here)"


def _compare_pair(a: Side, b: Side, m: Matching, i: int, j: int, folds: _Folds
                  ) -> tuple[NodeChange | None, list[dict]]:
    na, nb = a.node(i), b.node(j)
    change = NodeChange(a.names[i], b.names[j], b.op[j])
    if a.op[i] != b.op[j]:
        change.op_type_was = a.op[i]
    attrs_a = {x.name: x for x in na.attribute}
    attrs_b = {x.name: x for x in nb.attribute}
    for key in sorted(set(attrs_a) | set(attrs_b)):
        xa, xb = attrs_a.get(key), attrs_b.get(key)
        if xa is not None and xb is not None and \
                xa.SerializeToString(deterministic=True) == xb.SerializeToString(deterministic=True):
            continue
        old = attribute_json(xa) if xa is not None else None
        new = attribute_json(xb) if xb is not None else None
        if old != new or xa is None or xb is None:
            change.attributes[key] = (old, new)
    inits: list[dict] = []
    slots = max(len(na.input), len(nb.input))
    for slot in range(slots):
        sa = a.srcs[i][slot] if slot < len(na.input) else ("-",)
        sb = b.srcs[j][slot] if slot < len(nb.input) else ("-",)
        name_a = na.input[slot] if slot < len(na.input) else ""
        name_b = nb.input[slot] if slot < len(nb.input) else ""
        if _same_src(sa, sb, m.a_to_b):
            continue
        if sa[0] == "c" and sb[0] == "c":
            ca, cb = a.const(name_a), b.const(name_b)
            entry: dict[str, Any] = {"node": nb.name, "slot": slot, "a": name_a, "b": name_b}
            if ca.dtype != cb.dtype:
                entry["dtype"] = {"old": printed_name(ca.dtype), "new": printed_name(cb.dtype)}
            if ca.shape != cb.shape:
                entry["shape"] = {"old": list(ca.shape), "new": list(cb.shape)}
            entry["digest"] = {"old": ca.digest, "new": cb.digest}
            inits.append(entry)
            continue
        folded = sa[0] == "n" and sb[0] == "c" and folds(sa, name_a, name_b)
        change.inputs.append({"slot": slot, "old": _describe_src(a, sa, name_a),
                              "new": _describe_src(b, sb, name_b), "folded": folded})
    if change.op_type_was is None and not change.attributes and not change.inputs \
            and len(na.output) == len(nb.output):
        return None, inits
    if len(na.output) != len(nb.output):
        change.attributes["(outputs)"] = (len(na.output), len(nb.output))
    return change, inits


def _same_src(sa: tuple, sb: tuple, a_to_b: dict[int, int]) -> bool:
    kind = sa[0]
    if kind != sb[0]:
        return False
    if kind == "n":
        return a_to_b.get(sa[1]) == sb[1] and sa[2] == sb[2]
    return kind == "u" or sa == sb


def _io_changes(a: Side, b: Side) -> tuple[list[dict], list[dict]]:
    """Graph inputs and outputs compared by position: name, dtype, shape; and, apart, the
    symbolic dims that only changed their name (see _compare_dims)."""
    changes, dims_renamed = [], []
    inputs_a, inputs_b = set(a.inputs), set(b.inputs)     # those that are not initializers
    for kind in ("input", "output"):
        va = [v for v in getattr(a.model.graph, kind) if kind == "output" or v.name in inputs_a]
        vb = [v for v in getattr(b.model.graph, kind) if kind == "output" or v.name in inputs_b]
        for pos in range(max(len(va), len(vb))):
            x = va[pos] if pos < len(va) else None
            y = vb[pos] if pos < len(vb) else None
            entry: dict[str, Any] = {"kind": kind, "position": pos}
            if x is None or y is None:
                entry["change"] = "added" if x is None else "removed"
                entry["name"] = (y or x).name
                changes.append(entry)
                continue
            (dta, sha), (dtb, shb) = value_type(x), value_type(y)
            if x.name != y.name:
                entry["name"] = {"old": x.name, "new": y.name}
            if dta != dtb:
                entry["dtype"] = {"old": dta, "new": dtb}
            shape_changed, renamed = _compare_dims(sha, shb)
            if shape_changed:
                entry["shape"] = {"old": sha, "new": shb}
            dims_renamed += [{"kind": kind, "position": pos, "name": y.name, "dim": d,
                              "old": old, "new": new} for d, old, new in renamed]
            if len(entry) > 2:
                entry.setdefault("change", "changed")
                changes.append(entry)
    return changes, dims_renamed


def _symbolic(dim: str | int) -> bool:
    """A dim with no fixed size: a name (dim_param, value_type's '?' for none) or a
    negative dim_value (some tools write -1 for "dynamic")."""
    return isinstance(dim, str) or dim < 0


def _compare_dims(old: list | None, new: list | None
                  ) -> tuple[bool, list[tuple[int, str | int | None, str | int | None]]]:
    """(whether the shape changed, [(dim, old name, new name)] of the symbolic dims that only
    changed their name, None for an unnamed one). A symbolic dim that became a size, or a
    size that changed, is a shape change; `N` -> `-1` or `N` -> unnamed is a rename: any
    size fits both, so the interface is the same."""
    if old == new:
        return False, []
    if old is None or new is None or len(old) != len(new):
        return True, []
    changed, renamed = False, []
    for d, (x, y) in enumerate(zip(old, new)):
        if x == y:
            continue
        if _symbolic(x) and _symbolic(y):
            renamed.append((d, None if x == "?" else x, None if y == "?" else y))
        else:
            changed = True
    return changed, renamed


def attribute_json(attr: onnx.AttributeProto) -> Any:
    """An attribute value for JSON: plain values where possible, else the text form."""
    if attr.type in (onnx.AttributeProto.TENSOR, onnx.AttributeProto.GRAPH,
                     onnx.AttributeProto.GRAPHS):
        return format_attribute_value(attr)
    value = helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float):
        return _float32(value)
    if isinstance(value, (list, tuple)):
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else
                _float32(v) if isinstance(v, float) else v for v in value]
    return value


def _float32(value: float) -> float:
    """ONNX stores float attributes as float32: 0.1 reads back as 0.10000000149011612. The
    shortest decimal that is the same float32 (0.1) is what the user wrote."""
    return float(f"{value:.9g}") if not math.isfinite(value) else \
        next(float(t) for t in (f"{value:.{p}g}" for p in range(6, 10))
             if np.float32(float(t)) == np.float32(value))
