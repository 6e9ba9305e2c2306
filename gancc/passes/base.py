"""What a rewrite is: anatomy, options, and what running one reports.

A rewrite is a class registered with `@rewrite("kebab-name")` (gancc.passes.registry). It
names the op type its matches start from (`anchor`), and implements

- `match(graph, node)`: look at one candidate node; return whatever `apply` needs, or
  `self.decline("reason")` to say why this node is left alone;
- `apply(graph, node, match)`: change the graph through the Graph API, tagging what it
  creates or changes with `self.name` (Graph.add_node(tag=...) / Graph.tag).

An anchor may name several op types joined by "|" (`"Identity|Dropout"`). A graph-level
rewrite (signature changes, opset conversion, onnxsim) has no anchor node: it sets
`anchor = ""` and overrides `run_graph(model)` instead of match/apply; it edits the model in
place and returns how many changes it made, or `self.decline("reason")` when there is
nothing to do (so a second run, the idempotence check, declines).

Options are dataclass fields with defaults (the decorator makes the class a frozen
dataclass), written `name{key=value}` in a pipeline. The module docstring of a rewrite's
file lists each transformation as `Before -> After` with its constraints; its first line is
the summary `gancc passes` prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import onnx

from gancc.graph import Graph


@dataclass(frozen=True)
class Decline:
    """A candidate node the rewrite did not change, and why."""

    reason: str


class Rewrite:
    """Base class of every rewrite. Subclasses set `anchor` and implement match/apply."""

    name: ClassVar[str] = ""            # set by @rewrite
    anchor: ClassVar[str] = ""          # op type of the nodes a match starts from
    exact: ClassVar[bool] = True        # False for lossy rewrites (numerics change)
    source: ClassVar[str] = ""          # file:line of the class, set by @rewrite

    def match(self, graph: Graph, node: onnx.NodeProto) -> Any:
        raise NotImplementedError

    def apply(self, graph: Graph, node: onnx.NodeProto, match: Any) -> None:
        raise NotImplementedError

    def run_graph(self, model: onnx.ModelProto) -> int | Decline:
        """A graph-level rewrite (anchor ""): change `model` in place, return the number of
        changes, or a Decline when there is nothing to do. Node rewrites leave this alone."""
        raise NotImplementedError

    @classmethod
    def is_graph_level(cls) -> bool:
        return cls.run_graph is not Rewrite.run_graph

    @staticmethod
    def decline(reason: str) -> Decline:
        return Decline(reason)

    def options(self) -> dict[str, Any]:
        from dataclasses import fields
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    def pipeline_text(self) -> str:
        """This pass as one element of a textual pipeline: `name{key=value,...}`."""
        from dataclasses import MISSING, fields

        from gancc.passes.pipeline_text import format_step
        defaults = {f.name: f.default for f in fields(self) if f.default is not MISSING}  # type: ignore[arg-type]
        return format_step(self.name, self.options(), defaults)


@dataclass
class PassResult:
    """What one run of a rewrite did."""

    name: str
    changed: bool = False
    matches: int = 0
    nodes_added: int = 0
    nodes_removed: int = 0
    declined: list[tuple[str, str]] = field(default_factory=list)   # (node name, reason)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        reasons: dict[str, int] = {}
        for _, reason in self.declined:
            reasons[reason] = reasons.get(reason, 0) + 1
        return {"pass": self.name, "changed": self.changed, "matches": self.matches,
                "nodes_added": self.nodes_added, "nodes_removed": self.nodes_removed,
                "declined": len(self.declined), "decline_reasons": reasons,
                "seconds": round(self.seconds, 4)}


def _gc_paused(fn):
    """Pause the cyclic garbage collector while `fn` runs. A pass allocates many small,
    long-lived objects (indexes, node wrappers) and no cycles of note; on a 100k-node graph
    the collector's repeated scans of them cost as much as the pass itself."""
    import functools
    import gc

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        enabled = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    return wrapper


@_gc_paused
def run_rewrite(rule: Rewrite, model: onnx.ModelProto,
                on_candidate: Callable[[onnx.NodeProto, Decline | None], None] | None = None
                ) -> PassResult:
    """Apply `rule` once to every candidate node of `model`, in place.

    `on_candidate(node, decline)` hears of every candidate as it is decided (decline None:
    the rewrite fired); `gancc explain` (gancc.passes.explain) is built on it."""
    import time

    start = time.perf_counter()
    result = PassResult(rule.name)
    if rule.is_graph_level():
        _run_graph_level(rule, model, result, on_candidate)
        result.seconds = time.perf_counter() - start
        return result
    graph = Graph(model)
    anchors = set(rule.anchor.split("|")) if rule.anchor else None
    candidates = graph.nodes() if anchors is None or len(anchors) > 1 else graph.nodes(rule.anchor)
    for node in candidates:
        if anchors is not None and node.op_type not in anchors:
            continue
        if graph.is_removed(node):
            continue
        match = rule.match(graph, node)
        if on_candidate is not None:
            on_candidate(node, match if isinstance(match, Decline) else None)
        if isinstance(match, Decline):
            result.declined.append((node.name, match.reason))
            continue
        rule.apply(graph, node, match)
        result.matches += 1
    result.nodes_added, result.nodes_removed = graph.nodes_added, graph.nodes_removed
    graph.commit()
    result.changed = result.matches > 0
    result.seconds = time.perf_counter() - start
    return result


def _run_graph_level(rule: Rewrite, model: onnx.ModelProto, result: PassResult,
                     on_candidate: Callable[[onnx.NodeProto, Decline | None], None] | None
                     ) -> None:
    """Run a graph-level rewrite; its one candidate is the whole graph, named "(graph)"."""
    before = [_node_key(n) for n in model.graph.node]
    outcome = rule.run_graph(model)
    if on_candidate is not None:
        on_candidate(onnx.NodeProto(name="(graph)"),
                     outcome if isinstance(outcome, Decline) else None)
    if isinstance(outcome, Decline):
        result.declined.append(("(graph)", outcome.reason))
        return
    # nodes are counted by name (by content when unnamed): a node the rewrite only edited
    # counts as neither added nor removed, however it rebuilt the node list
    after = [_node_key(n) for n in model.graph.node]
    old, new = set(before), set(after)
    result.nodes_added = sum(1 for n in after if n not in old)
    result.nodes_removed = sum(1 for n in before if n not in new)
    result.matches = int(outcome)
    result.changed = result.matches > 0


def _node_key(node: onnx.NodeProto) -> str | bytes:
    return node.name or node.SerializeToString()
