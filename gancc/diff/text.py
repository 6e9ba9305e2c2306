"""Render a DiffResult as text for a terminal (colour optional) and as JSON for machines.

The text leads with the verdict, then what a reviewer asks first: did the interface change,
what changed per rewrite (a rewrite's changes together, untagged ones last), initializers,
and the op-type counts that moved. Renames are counted, never listed as changes; `verbose`
lists them. The JSON holds the same facts with stable keys (documented in docs/diff.md).
"""

from __future__ import annotations

import json
from typing import Any

from gancc.diff.compare import DiffResult, NodeChange
from gancc.gcpause import gc_paused

SCHEMA = "gancc.diff/1"
RENAMES_SHOWN = 50
_COLOURS = {"red": "31", "green": "32", "yellow": "33", "bold": "1", "dim": "2", "cyan": "36"}


def _value(v: Any) -> str:
    return "(absent)" if v is None else json.dumps(v)


def change_lines(c: NodeChange) -> list[str]:
    """The detail lines of one changed node (also used by the HTML renderers)."""
    lines = []
    if c.op_type_was:
        lines.append(f"op type: {c.op_type_was} -> {c.op_type}")
    for key, (old, new) in c.attributes.items():
        lines.append(f"{key}: {_value(old)} -> {_value(new)}")
    for inp in c.inputs:
        lines.append(f"input {inp['slot']}: {inp['old']} -> {inp['new']}")
    return lines


def init_line(init: dict) -> str:
    parts = []
    for key in ("dtype", "shape"):
        if key in init:
            parts.append(f"{key} {init[key]['old']} -> {init[key]['new']}")
    if not parts:
        parts.append(f"values #{init['digest']['old']} -> #{init['digest']['new']}")
    name = init["a"] if init["a"] == init["b"] else f"{init['a']} -> {init['b']}"
    return f"{name} (input {init['slot']} of {init['node']}): " + ", ".join(parts)


def _node_name(a: str, b: str) -> str:
    return a if a == b else f"{a} (now {b})"


@gc_paused()
def render_text(result: DiffResult, colour: bool = False, verbose: bool = False) -> str:
    def paint(text: str, style: str) -> str:
        return f"\x1b[{_COLOURS[style]}m{text}\x1b[0m" if colour else text

    out: list[str] = []
    s = result.summary()
    head = f"{result.a_label} ({result.a_nodes} nodes)  vs  {result.b_label} ({result.b_nodes} nodes)"
    out.append(paint(head, "bold"))
    if result.equal:
        verdict = "equal"
        if s["renamed"]:
            verdict += f" ({s['renamed']} node(s) renamed, which is not a change)"
        out.append(paint(verdict, "green"))
    else:
        out.append(paint(f"different: {s['changed']} changed, {s['added']} added, "
                         f"{s['removed']} removed node(s); {s['initializers']} initializer and "
                         f"{s['io']} input/output change(s); {s['renamed']} renamed", "yellow"))
    if result.io:
        out.append("")
        out.append(paint("graph inputs/outputs", "bold"))
        for e in result.io:
            detail = ", ".join(f"{k} {_value(e[k]['old'])} -> {_value(e[k]['new'])}"
                               for k in ("name", "dtype", "shape") if isinstance(e.get(k), dict))
            if e["change"] != "changed":
                detail = f"{e['change']}: {e['name']}"
            out.append(paint(f"  ~ {e['kind']} {e['position']}: {detail}", "yellow"))
    for tag, group in result.by_rewrite().items():
        out.append("")
        counts = ", ".join(f"{len(v)} {k}" for k, v in group.items() if v)
        out.append(paint(f"{tag}: {counts}" if tag.startswith("(") else
                         f"rewrite {tag}: {counts}", "bold"))
        for c in group["changed"]:
            out.append(paint(f"  ~ {c.op_type} {_node_name(c.a, c.b)}", "yellow"))
            out += [f"      {line}" for line in change_lines(c)]
        for r in group["removed"]:
            out.append(paint(f"  - {r.op_type} {r.name}", "red"))
        for r in group["added"]:
            out.append(paint(f"  + {r.op_type} {r.name}", "green"))
        for init in group["initializers"]:
            out.append(paint(f"  ~ initializer {init_line(init)}", "yellow"))
    moved = {op: (result.histogram_a.get(op, 0), result.histogram_b.get(op, 0))
             for op in sorted(set(result.histogram_a) | set(result.histogram_b))}
    moved = {op: ab for op, ab in moved.items() if ab[0] != ab[1]}
    out.append("")
    if moved:
        out.append(paint("op types (before -> after)", "bold"))
        for op, (x, y) in moved.items():
            out.append(f"  {op:<24} {x:>6} -> {y:<6} ({y - x:+d})")
    else:
        out.append(paint(f"op types: unchanged ({len(result.histogram_a)} types)", "dim"))
    ia, ib = result.init_stats.get("a", {}), result.init_stats.get("b", {})
    if ia and ia != ib:
        out.append(paint(f"initializers stored: {ia['count']} -> {ib['count']} "
                         "(renaming, reordering and de-duplication are not changes)", "dim"))
    if verbose and result.renamed:
        out.append("")
        out.append(paint("renamed nodes", "bold"))
        out += [f"  {a or '(unnamed)'} -> {b or '(unnamed)'}" for a, b in result.renamed[:RENAMES_SHOWN]]
        if len(result.renamed) > RENAMES_SHOWN:
            out.append(f"  ... and {len(result.renamed) - RENAMES_SHOWN} more (--json lists all)")
    if verbose:
        phases = ", ".join(f"{k} {v}" for k, v in result.phases.items())
        out.append(paint(f"matched in {result.seconds:.3f}s: {phases}", "dim"))
    return "\n".join(out) + "\n"


@gc_paused()
def to_json(result: DiffResult) -> dict[str, Any]:
    hist = {}
    for op in sorted(set(result.histogram_a) | set(result.histogram_b)):
        x, y = result.histogram_a.get(op, 0), result.histogram_b.get(op, 0)
        hist[op] = {"a": x, "b": y, "delta": y - x}
    by_rewrite = {}
    for tag, group in result.by_rewrite().items():
        by_rewrite[tag] = {"changed": [c.b for c in group["changed"]],
                           "added": [r.name for r in group["added"]],
                           "removed": [r.name for r in group["removed"]],
                           "initializers": [i["b"] for i in group["initializers"]]}
    return {
        "schema": SCHEMA,
        "a": {"label": result.a_label, "nodes": result.a_nodes, **result.init_stats.get("a", {})},
        "b": {"label": result.b_label, "nodes": result.b_nodes, **result.init_stats.get("b", {})},
        "equal": result.equal,
        "summary": result.summary(),
        "io": result.io,
        "nodes": {"changed": [c.to_json() for c in result.changed],
                  "added": [r.to_json() for r in result.added],
                  "removed": [r.to_json() for r in result.removed],
                  "renamed": [{"a": a, "b": b} for a, b in result.renamed]},
        "initializers": result.initializers,
        "op_histogram": hist,
        "by_rewrite": by_rewrite,
        "match": {"seconds": round(result.seconds, 4), "phases": result.phases},
    }
