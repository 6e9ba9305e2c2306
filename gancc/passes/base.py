"""What a pass is: its two kinds, options, the engine that runs one, and what it reports.

A pass is a class registered with `@rewrite("kebab-name")` (gancc.passes.registry), of one
of two kinds, both derived from `Pass` (name, exact, source, options, pipeline text):

- `Rewrite`, a node rewrite. It names the op type its matches start from (`anchor`; several
  joined by "|", e.g. `"Identity|Dropout"`; "" for every node) and implements
  `match(graph, node)`: look at one candidate node; return whatever `apply` needs, or
  `self.decline("reason")` to say why this node is left alone; and
  `apply(graph, node, match)`: change the graph through the Graph API.
- `GraphPass`, a graph-level pass (signature changes, opset conversion, onnxsim): it has no
  anchor node and implements `run(model)`, which edits the model in place and returns how
  many changes it made, or `self.decline("reason")` when there is nothing to do (so a
  second run, the idempotence check, declines).

The engine (`run_rewrite`) runs a pass and holds it to the contract (gancc.passes.contract):
- provenance is automatic: every node a Rewrite creates or edits through the Graph API
  (add_node, set_attr, remove_attr, set_input, set_output, set_op_type, rename_node) is
  tagged with the rewrite's name, and so is every node a GraphPass made or changed, found by
  content; rewrites do not tag by hand, and edit nodes through the API, not their protos;
- initializers are read-only: `graph.initializer()` is a frozen view and `graph.const_value()`
  a read-only array; a weight changes by adding a new initializer (`graph.add_initializer`)
  and rewiring its readers. An in-place change made some other way is caught after the pass;
- a `match` (or `run`) that returns None, having fallen off its end, is an error.
Each violation raises ContractError naming the rewrite, its `file:line`, and what it did.

The per-pass context: a Rewrite's `graph` is made by the engine for one pass run and dropped
after it. `graph.memo("module.key", factory)` keeps what the rewrite derives from the graph
(a shape table, constants made so far) for the rest of that run; nothing outlives it.

Options are dataclass fields with defaults (the decorator makes the class a frozen
dataclass), written `name{key=value}` in a pipeline. The module docstring of a pass's file
lists each transformation as `Before -> After` with its constraints; its first line is the
summary `gancc passes` prints.
"""

from __future__ import annotations

import time
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Callable, ClassVar

import onnx

from gancc.errors import GanccError
from gancc.gcpause import gc_paused
from gancc.graph import Graph, ReadOnlyError
from gancc.passes.contract import (ContractError, WeightGuard, node_keys, read_only_violation,
                                   tag_changed_nodes)


@dataclass(frozen=True)
class Decline:
    """A candidate the pass did not change, and why."""

    reason: str


class Pass:
    """What every pass has: a name, exactness, where it is defined, and its options."""

    name: ClassVar[str] = ""            # set by @rewrite
    exact: ClassVar[bool] = True        # False for lossy passes (numerics change)
    source: ClassVar[str] = ""          # file:line of the class, set by @rewrite

    @staticmethod
    def decline(reason: str) -> Decline:
        return Decline(reason)

    def options(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    def pipeline_text(self) -> str:
        """This pass as one element of a textual pipeline: `name{key=value,...}`."""
        from gancc.passes.pipeline_text import format_step
        defaults = {f.name: f.default for f in fields(self) if f.default is not MISSING}  # type: ignore[arg-type]
        return format_step(self.name, self.options(), defaults)


class Rewrite(Pass):
    """A node rewrite: set `anchor` and implement match/apply."""

    anchor: ClassVar[str] = ""          # op type(s) of the nodes a match starts from

    def match(self, graph: Graph, node: onnx.NodeProto) -> Any:
        raise NotImplementedError

    def apply(self, graph: Graph, node: onnx.NodeProto, match: Any) -> None:
        raise NotImplementedError


class GraphPass(Pass):
    """A graph-level pass: implement run(model)."""

    # no anchor node: the whole graph is the one candidate ("" where passes are listed)
    anchor: ClassVar[str] = ""

    def run(self, model: onnx.ModelProto) -> int | Decline:
        """Change `model` in place; return the number of changes, or a Decline when there
        is nothing to do."""
        raise NotImplementedError


@dataclass
class PassResult:
    """What one run of a pass did."""

    name: str
    changed: bool = False
    matches: int = 0
    nodes_added: int = 0
    nodes_removed: int = 0
    declined: list[tuple[str, str]] = field(default_factory=list)   # (node name, reason)
    seconds: float = 0.0
    # the pass's declaration (a spec rule is not in the registry): what report.html counts
    # as lossy; not in report.json, whose pass entries stay as they are
    exact: bool | None = None

    def to_json(self) -> dict[str, Any]:
        reasons: dict[str, int] = {}
        for _, reason in self.declined:
            reasons[reason] = reasons.get(reason, 0) + 1
        return {"pass": self.name, "changed": self.changed, "matches": self.matches,
                "nodes_added": self.nodes_added, "nodes_removed": self.nodes_removed,
                "declined": len(self.declined), "decline_reasons": reasons,
                "seconds": round(self.seconds, 4)}


OnCandidate = Callable[[onnx.NodeProto, "Decline | None"], None]


# A pass allocates many small, long-lived objects (indexes, node wrappers) and no cycles of
# note: gancc.gcpause says why the collector is paused meanwhile.
@gc_paused()
def run_rewrite(rule: Pass, model: onnx.ModelProto, on_candidate: OnCandidate | None = None,
                *, digest_weights: bool = False) -> PassResult:
    """Run pass `rule` once on `model`, in place, holding it to the rewrite contract.

    A Rewrite is tried on every candidate node; a GraphPass runs once on the whole graph.
    `on_candidate(node, decline)` hears of every candidate as it is decided (decline None:
    the pass fired); `gancc explain` (gancc.passes.explain) is built on it. `digest_weights`
    compares every initializer's bytes after the pass (strict mode; WeightGuard says why
    the default checks less)."""
    start = time.perf_counter()
    result = PassResult(rule.name, exact=bool(rule.exact))
    guard = WeightGuard(digest=digest_weights)
    if isinstance(rule, GraphPass):
        guard.watch(model)                      # run() is handed the model itself
        _run_graph_pass(rule, model, result, on_candidate)
    elif isinstance(rule, Rewrite):
        _run_node_rewrite(rule, model, result, on_candidate, guard)
    else:
        raise TypeError(f"{type(rule).__name__} is neither a Rewrite nor a GraphPass")
    guard.check(rule)
    result.changed = result.matches > 0
    result.seconds = time.perf_counter() - start
    return result


def _candidates(rule: Rewrite, graph: Graph) -> list[onnx.NodeProto]:
    anchors = set(rule.anchor.split("|")) if rule.anchor else None
    if anchors is None:
        return graph.nodes()
    if len(anchors) == 1:
        return graph.nodes(rule.anchor)
    return [n for n in graph.nodes() if n.op_type in anchors]


def _run_node_rewrite(rule: Rewrite, model: onnx.ModelProto, result: PassResult,
                      on_candidate: OnCandidate | None, guard: WeightGuard) -> None:
    # the pass's context (see the docstring); the guard watches once the rewrite reaches
    # for the ModelProto itself
    graph = Graph(model, author=rule.name, on_raw_access=lambda: guard.watch(model))
    for node in _candidates(rule, graph):
        if graph.is_removed(node):
            continue
        try:
            match = rule.match(graph, node)
        except (ValueError, GanccError) as err:
            raise _as_violation(rule, node, err) from None
        if match is None:
            raise ContractError(rule, f"match returned None for node '{node.name}' "
                                f"({node.op_type}): it fell off its end",
                                "return what apply needs, or self.decline(\"why\")")
        if on_candidate is not None:
            on_candidate(node, match if isinstance(match, Decline) else None)
        if isinstance(match, Decline):
            result.declined.append((node.name, match.reason))
            continue
        _apply(rule, graph, node, match)
        result.matches += 1
    result.nodes_added, result.nodes_removed = graph.nodes_added, graph.nodes_removed
    graph.commit()


def _apply(rule: Rewrite, graph: Graph, node: onnx.NodeProto, match: Any) -> None:
    try:
        rule.apply(graph, node, match)
    except (ValueError, GanccError) as err:
        raise _as_violation(rule, node, err) from None


def _as_violation(rule: Pass, node: onnx.NodeProto, err: Exception) -> Exception:
    """A write into a read-only value becomes a ContractError naming the rewrite; any other
    error goes on as it was."""
    if isinstance(err, ReadOnlyError) or (isinstance(err, ValueError)
                                          and "read-only" in str(err)):
        return read_only_violation(rule, node, err)
    return err


def _run_graph_pass(rule: GraphPass, model: onnx.ModelProto, result: PassResult,
                    on_candidate: OnCandidate | None) -> None:
    """Run a graph pass; its one candidate is the whole graph, named "(graph)"."""
    before = [_node_name(n) for n in model.graph.node]
    contents = node_keys(model)
    try:
        outcome = rule.run(model)
    except ValueError as err:
        raise _as_violation(rule, onnx.NodeProto(name="(graph)"), err) from None
    if outcome is None:
        raise ContractError(rule, "run returned None: it fell off its end",
                            "return the number of changes, or self.decline(\"why\")")
    if on_candidate is not None:
        on_candidate(onnx.NodeProto(name="(graph)"),
                     outcome if isinstance(outcome, Decline) else None)
    if isinstance(outcome, Decline):
        result.declined.append(("(graph)", outcome.reason))
        return
    tag_changed_nodes(model, contents, rule.name)
    # nodes are counted by name (by content when unnamed): a node the pass only edited
    # counts as neither added nor removed, however it rebuilt the node list
    after = [_node_name(n) for n in model.graph.node]
    old, new = set(before), set(after)
    result.nodes_added = sum(1 for n in after if n not in old)
    result.nodes_removed = sum(1 for n in before if n not in new)
    result.matches = int(outcome)


def _node_name(node: onnx.NodeProto) -> str | bytes:
    return node.name or node.SerializeToString()


__all__ = ["ContractError", "Decline", "GraphPass", "Pass", "PassResult", "Rewrite",
           "run_rewrite"]
