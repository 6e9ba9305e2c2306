"""What the engine checks of every pass run, and how it reports a broken contract.

The rewrite contract (docs/rewrites.md): a pass changes the graph through the Graph API or,
for a graph pass, by editing the model; it never changes an existing initializer in place;
a `match` returns what `apply` needs or a Decline, never None; and what a pass creates or
edits carries its provenance tag. A violation raises ContractError naming the rewrite (name
and `file:line`) and what it did. The checks here are the ones the engine runs after a pass;
the Graph refuses writes to what it hands out read-only as they happen (gancc.graph).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import onnx
from onnx import helper

from gancc.errors import GanccError
from gancc.graph import Graph

if TYPE_CHECKING:
    from gancc.passes.base import Pass

_WEIGHT_RULE = ("a rewrite never changes an existing initializer in place: it adds a new one "
                "(Graph.add_initializer) and rewires the readers (Graph.set_input)")

# Initializers of at most this many bytes of values are compared byte for byte after every
# pass: pads, axes, shapes, scales, the constants rewrites read to decide what to do.
SMALL_TENSOR_BYTES = 256


class ContractError(GanccError):
    """A rewrite that broke the rewrite contract; the message names it and what it did."""

    def __init__(self, rule: Pass, what: str, hint: str | None = None):
        super().__init__(f"rewrite '{rule.name}' ({rule.source or 'unregistered'}) {what}",
                         hint or "this is a bug in the rewrite: see docs/rewrites.md, "
                         "'The contract'")
        self.pass_name = rule.name


_ITEMSIZE: dict[int, int | None] = {}


def _itemsize(data_type: int) -> int | None:
    if data_type not in _ITEMSIZE:
        try:
            _ITEMSIZE[data_type] = helper.tensor_dtype_to_np_dtype(data_type).itemsize
        except (KeyError, TypeError, ValueError):
            _ITEMSIZE[data_type] = None
    return _ITEMSIZE[data_type]


class WeightGuard:
    """Catches a pass that changed an initializer it found in the graph in place.

    The pass manager keeps the initializers from before a pass by reference, to undo it
    (manager._Snapshot), and a build's per-stage diffs reuse a weight's digest by name
    (gancc.graph.weightfree.weight_free_copy): an edit in place corrupts both, silently.

    The only way to an initializer other than the Graph's read-only views is the ModelProto
    itself: a GraphPass is handed it, a Rewrite reaches it through `graph.model` or
    `graph.graph`. So `watch(model)` takes the fingerprints when that happens (at once for a
    GraphPass; on a Rewrite's first such access, through Graph's on_raw_access), and a
    Rewrite that keeps to the Graph API, as most do, costs nothing here.

    Every initializer present then is kept by reference (also those the pass drops: the
    rollback would put them back) and compared after the pass:
    - always: its name, dtype and dims, and the bytes of the small ones (SMALL_TENSOR_BYTES):
      a few microseconds per initializer, nothing in proportion to the weights;
    - with `digest` (strict mode: the test suite, `--check-idempotent`): a digest of every
      initializer's bytes.
    Why the default is enough: comparing a large weight's values means reading all of its
    bytes (ByteSize encodes them, raw_data copies them: ~0.3 s per 200 MB here), per pass, for
    a mistake the rewrite's own test already shows: every rewrite has a test file
    (tests/test_registry.py) and the tests run in strict mode. What a build would still miss
    by default is a same-size overwrite of a large weight's bytes by a rewrite never tested.
    """

    def __init__(self, digest: bool = False):
        self.digest = digest
        self.kept: list[tuple[onnx.TensorProto, tuple]] | None = None

    def watch(self, model: onnx.ModelProto) -> None:
        """Fingerprint the initializers of `model` as they are now (once)."""
        if self.kept is None:
            self.kept = [(t, self._fingerprint(t)) for t in model.graph.initializer]

    def _fingerprint(self, tensor: onnx.TensorProto) -> tuple:
        dims = tuple(tensor.dims)
        key: tuple = (tensor.name, tensor.data_type, dims)
        itemsize = _itemsize(tensor.data_type)
        count = 1
        for d in dims:
            count *= d
        if self.digest or itemsize is None or count * itemsize <= SMALL_TENSOR_BYTES:
            data = tensor.SerializeToString()
            key += (hashlib.blake2b(data, digest_size=16).digest() if self.digest else data,)
        return key

    def check(self, rule: Pass) -> None:
        """Raise ContractError naming the first initializer `rule` changed in place."""
        for tensor, before in self.kept or ():
            after = self._fingerprint(tensor)
            if after != before:
                raise ContractError(rule, f"changed initializer '{before[0]}' in place "
                                    f"({_what_changed(before, after)})", _WEIGHT_RULE)


def _what_changed(before: tuple, after: tuple) -> str:
    if before[0] != after[0]:
        return f"renamed it to '{after[0]}'"
    if before[1] != after[1]:
        return (f"dtype {onnx.TensorProto.DataType.Name(before[1])} -> "
                f"{onnx.TensorProto.DataType.Name(after[1])}")
    if before[2] != after[2]:
        return f"dims {list(before[2])} -> {list(after[2])}"
    return "its values"


def node_keys(model: onnx.ModelProto) -> set[bytes]:
    """Every node of `model`, serialised without provenance, to tell changed nodes apart."""
    return {_node_key(node) for node in model.graph.node}


def _node_key(node: onnx.NodeProto) -> bytes:
    if not node.metadata_props:
        return node.SerializeToString()
    plain = onnx.NodeProto()
    plain.CopyFrom(node)
    del plain.metadata_props[:]
    return plain.SerializeToString()


def tag_changed_nodes(model: onnx.ModelProto, before: set[bytes], rewrite: str) -> int:
    """Tag, with `rewrite`, every node of `model` not among `before` (node_keys): the nodes
    a graph pass made or changed. Graph passes (a converter, onnxsim) may rebuild the node
    list wholesale, so what they made is found by content. Returns how many."""
    made = 0
    for node in model.graph.node:
        if _node_key(node) not in before:
            Graph.tag(node, rewrite)
            made += 1
    return made


def read_only_violation(rule: Pass, node: onnx.NodeProto, error: Exception) -> ContractError:
    """The ContractError for a write into a value the Graph handed out read-only."""
    where = f"at node '{node.name or node.op_type}'" if node.name or node.op_type else ""
    if isinstance(error, GanccError):
        return ContractError(rule, f"wrote into an initializer {where}: {error.message}",
                             _WEIGHT_RULE)
    return ContractError(rule, f"wrote into a constant from Graph.const_value {where} ({error})",
                         "const_value arrays are shared and read-only: compute a new array, "
                         "add it with Graph.add_initializer and rewire the readers")
