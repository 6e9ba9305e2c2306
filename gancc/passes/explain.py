"""`gancc explain`: for one rewrite and one graph, what it does to each candidate node and why.

A rewrite's candidates are the nodes of its anchor op type (a graph pass has one, the whole
graph). Each one either fires (match returned data and apply ran) or declines with the
reason its match gave. The answer comes
from running the rewrite itself (gancc.passes.base.run_rewrite) on a copy of the graph, so it
is exactly what a build would do at that point of the pipeline, including the effect of
earlier matches on later ones; the caller's graph is never modified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import onnx

from gancc.graph import lift_constants
from gancc.passes.base import Decline, GraphPass, Pass, run_rewrite


@dataclass(frozen=True)
class Candidate:
    node: str
    op: str
    fired: bool
    reason: str          # why it declined; "" when it fired


@dataclass
class Explanation:
    rewrite: str         # the pass as a pipeline step: name{options}
    anchor: str
    source: str          # file:line of the rewrite (or the spec rule)
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def fired(self) -> int:
        return sum(c.fired for c in self.candidates)

    @property
    def declined(self) -> int:
        return len(self.candidates) - self.fired

    def reasons(self) -> dict[str, int]:
        """Decline reason -> how many candidates gave it, most frequent first."""
        counts: dict[str, int] = {}
        for c in self.candidates:
            if not c.fired:
                counts[c.reason] = counts.get(c.reason, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def to_json(self) -> dict[str, Any]:
        return {"rewrite": self.rewrite, "anchor": self.anchor, "source": self.source,
                "candidates": [{"node": c.node, "op": c.op,
                                "decision": "fired" if c.fired else "declined",
                                "reason": c.reason} for c in self.candidates],
                "summary": {"candidates": len(self.candidates), "fired": self.fired,
                            "declined": self.declined, "decline_reasons": self.reasons()}}


def explain(rule: Pass, model: onnx.ModelProto) -> Explanation:
    """What `rule` does to each of its candidate nodes in `model` (left unmodified)."""
    work = onnx.ModelProto()
    work.CopyFrom(model)
    # the graph as `gancc opt` and a build see it: constants as initializers
    lift_constants(work)
    anchor = "(the whole graph)" if isinstance(rule, GraphPass) else rule.anchor or "(every node)"
    result = Explanation(rule.pipeline_text(), anchor, rule.source)

    def record(node: onnx.NodeProto, decline: Decline | None) -> None:
        result.candidates.append(Candidate(node.name or "(unnamed)", node.op_type,
                                           decline is None,
                                           decline.reason if decline is not None else ""))

    run_rewrite(rule, work, on_candidate=record)
    return result


def render(explanation: Explanation, model_name: str) -> None:
    """Print a table of the candidates and a summary on stdout: a rich table on a terminal,
    plain columns in a pipe; node names are never cut (gancc.console.print_table)."""
    from gancc.console import print_table, stdout_is_terminal

    e = explanation
    if not e.candidates:
        print(f"{e.rewrite}: {model_name} has no {e.anchor} node, so nothing to match")
        return
    title = f"{e.rewrite} on {model_name}  (anchor {e.anchor}, {e.source})"
    if not stdout_is_terminal():
        print(title)          # a plain table has no title of its own
    print_table(["node", "op", "decision", "why"],
                [[c.node, c.op, "fired" if c.fired else "declined", c.reason]
                 for c in e.candidates],
                title=title, styles={"fired": "green", "declined": "yellow"})
    print(f"{len(e.candidates)} candidate(s): {e.fired} fired, {e.declined} declined")
    for reason, count in e.reasons().items():
        print(f"  {count} x {reason}")
