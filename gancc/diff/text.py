"""Render a DiffResult as text for a terminal (colour optional) and as JSON for machines.

The text leads with the verdict, then what a reviewer asks first: did the interface change,
which symbolic dims were only renamed (not a change), what changed per rewrite (a rewrite's
changes together, the untagged ones last), initializers, and the op-type counts that moved.
Node renames are counted, never listed as changes; `verbose` lists them. The JSON holds the
same facts with stable keys (documented in docs/diff.md).
"""

from __future__ import annotations

import json
from typing import Any, Callable

from gancc.diff.compare import UNTAGGED, DiffResult, NodeChange
from gancc.gcpause import gc_paused

SCHEMA = "gancc.diff/1"
RENAMES_SHOWN = 50
_COLOURS = {"red": "31", "green": "32", "yellow": "33", "bold": "1", "dim": "2", "cyan": "36"}


def _value(v: Any) -> str:
    return "(absent)" if v is None else json.dumps(v)


def group_name(tag: str) -> str:
    """How a by_rewrite() group is headed: "rewrite NAME", or "untagged"."""
    return "untagged" if tag == UNTAGGED else f"rewrite {tag}"


def change_lines(c: NodeChange, group: str | None = None) -> list[str]:
    """The detail lines of one changed node (also used by the HTML renderers): all of them,
    or those of one by_rewrite() group (a rewrite's group leaves out the folded inputs,
    which the untagged group of a credited node shows alone)."""
    only_folded = group == UNTAGGED and bool(c.rewrites)
    lines = []
    if c.op_type_was and not only_folded:
        lines.append(f"op type: {c.op_type_was} -> {c.op_type}")
    for key, (old, new) in c.attributes.items():
        if not only_folded:
            lines.append(f"{key}: {_value(old)} -> {_value(new)}")
    for inp in c.inputs:
        if inp["folded"] and group is not None and group != UNTAGGED:
            continue
        if only_folded and not inp["folded"]:
            continue
        folded = " (folded: A computed the same value from constants)" if inp["folded"] else ""
        lines.append(f"input {inp['slot']}: {inp['old']} -> {inp['new']}{folded}")
    return lines


def dim_line(e: dict) -> str:
    def shown(v):
        return "(unnamed)" if v is None else str(v)

    return f"dim {e['dim']} of {e['kind']} {e['name']}: {shown(e['old'])} -> {shown(e['new'])}"


def _equal_verdict(s: dict[str, int], dims: int) -> str:
    notes = []
    if s["renamed"]:
        notes.append(f"{s['renamed']} node(s) renamed")
    if dims:
        notes.append(f"{dims} symbolic dim(s) renamed")
    if not notes:
        return "equal"
    return f"equal ({', '.join(notes)}, which {'is' if len(notes) == 1 else 'are'} not a change)"


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


Paint = Callable[[str, str], str]


def _painter(colour: bool) -> Paint:
    """paint(text, style): `text` in the style's ANSI colour, or as it is without colour."""
    def paint(text: str, style: str) -> str:
        return f"\x1b[{_COLOURS[style]}m{text}\x1b[0m" if colour else text

    return paint


@gc_paused()
def render_text(result: DiffResult, colour: bool = False, verbose: bool = False) -> str:
    paint = _painter(colour)
    out: list[str] = []
    s = result.summary()
    head = f"{result.a_label} ({result.a_nodes} nodes)  vs  {result.b_label} ({result.b_nodes} nodes)"
    out.append(paint(head, "bold"))
    if result.equal:
        out.append(paint(_equal_verdict(s, len(result.dims_renamed)), "green"))
    else:
        out.append(paint(f"different: {s['changed']} changed, {s['added']} added, "
                         f"{s['removed']} removed node(s); {s['initializers']} initializer and "
                         f"{s['io']} input/output change(s); {s['renamed']} renamed", "yellow"))
    out += _interface_lines(result, paint)
    out += _rewrite_group_lines(result, paint)
    out += _op_type_lines(result, paint)
    if verbose:
        out += _verbose_lines(result, paint)
    return "\n".join(out) + "\n"


def _interface_lines(result: DiffResult, paint: Paint) -> list[str]:
    """The graph input/output changes, then the symbolic dims that were only renamed."""
    out: list[str] = []
    if result.io:
        out.append("")
        out.append(paint("graph inputs/outputs", "bold"))
        for e in result.io:
            detail = ", ".join(f"{k} {_value(e[k]['old'])} -> {_value(e[k]['new'])}"
                               for k in ("name", "dtype", "shape") if isinstance(e.get(k), dict))
            if e["change"] != "changed":
                detail = f"{e['change']}: {e['name']}"
            out.append(paint(f"  ~ {e['kind']} {e['position']}: {detail}", "yellow"))
    if result.dims_renamed:
        out.append("")
        out.append(paint("symbolic dims renamed (not an interface change)", "bold"))
        out += [paint(f"  ~ {dim_line(e)}", "dim") for e in result.dims_renamed]
    return out


def _rewrite_group_lines(result: DiffResult, paint: Paint) -> list[str]:
    """Each rewrite's changes together (by_rewrite() order: the untagged ones last)."""
    out: list[str] = []
    for tag, group in result.by_rewrite().items():
        out.append("")
        counts = ", ".join(f"{len(v)} {k}" for k, v in group.items() if v)
        out.append(paint(f"{group_name(tag)}: {counts}", "bold"))
        for c in group["changed"]:
            out.append(paint(f"  ~ {c.op_type} {_node_name(c.a, c.b)}", "yellow"))
            out += [f"      {line}" for line in change_lines(c, tag)]
        for r in group["removed"]:
            out.append(paint(f"  - {r.op_type} {r.name}", "red"))
        for r in group["added"]:
            out.append(paint(f"  + {r.op_type} {r.name}", "green"))
        for init in group["initializers"]:
            out.append(paint(f"  ~ initializer {init_line(init)}", "yellow"))
    return out


def _op_type_lines(result: DiffResult, paint: Paint) -> list[str]:
    """The op-type counts that moved, and the stored initializer count when it moved."""
    moved = {op: (result.histogram_a.get(op, 0), result.histogram_b.get(op, 0))
             for op in sorted(set(result.histogram_a) | set(result.histogram_b))}
    moved = {op: ab for op, ab in moved.items() if ab[0] != ab[1]}
    out = [""]
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
    return out


def _verbose_lines(result: DiffResult, paint: Paint) -> list[str]:
    """--verbose: the renamed nodes (the first RENAMES_SHOWN) and the matcher's phases."""
    out: list[str] = []
    if result.renamed:
        out.append("")
        out.append(paint("renamed nodes", "bold"))
        out += [f"  {a or '(unnamed)'} -> {b or '(unnamed)'}" for a, b in result.renamed[:RENAMES_SHOWN]]
        if len(result.renamed) > RENAMES_SHOWN:
            out.append(f"  ... and {len(result.renamed) - RENAMES_SHOWN} more (--json lists all)")
    phases = ", ".join(f"{k} {v}" for k, v in result.phases.items())
    out.append(paint(f"matched in {result.seconds:.3f}s: {phases}", "dim"))
    return out


@gc_paused()
def to_json(result: DiffResult) -> dict[str, Any]:
    hist = {}
    for op in sorted(set(result.histogram_a) | set(result.histogram_b)):
        x, y = result.histogram_a.get(op, 0), result.histogram_b.get(op, 0)
        hist[op] = {"a": x, "b": y, "delta": y - x}
    by_rewrite = {}
    empty: dict[str, list] = {"changed": [], "added": [], "removed": [], "initializers": []}
    groups = result.by_rewrite()
    for tag, group in groups.items():
        by_rewrite[tag] = {"changed": [c.b for c in group["changed"]],
                           "added": [r.name for r in group["added"]],
                           "removed": [r.name for r in group["removed"]],
                           "initializers": [i["b"] for i in group["initializers"]]}
    untagged = by_rewrite.pop(UNTAGGED, empty)
    return {
        "schema": SCHEMA,
        "a": {"label": result.a_label, "nodes": result.a_nodes, **result.init_stats.get("a", {})},
        "b": {"label": result.b_label, "nodes": result.b_nodes, **result.init_stats.get("b", {})},
        "equal": result.equal,
        "summary": result.summary(),
        "io": result.io,
        "dims_renamed": result.dims_renamed,
        "nodes": {"changed": [c.to_json() for c in result.changed],
                  "added": [r.to_json() for r in result.added],
                  "removed": [r.to_json() for r in result.removed],
                  "renamed": [{"a": a, "b": b} for a, b in result.renamed]},
        "initializers": result.initializers,
        "op_histogram": hist,
        "by_rewrite": by_rewrite,
        "untagged": untagged,
        "match": {"seconds": round(result.seconds, 4), "phases": result.phases},
    }
