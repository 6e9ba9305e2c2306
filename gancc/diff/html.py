"""The side-by-side picture of a diff: both graphs, aligned, with the changed region lit.

What Netron users ask for (netron #705 and its duplicates) is to see the two graphs next to
each other with the differences marked. This draws both as inline SVG, one node per row,
in topological order, with matched nodes on the same row, like a side-by-side text diff:

- rows are aligned on the longest chain of matched pairs that is in order on both sides
  (a longest increasing subsequence, O(n log n)); unmatched nodes fill the rows between;
- removed nodes are red (left), added green (right), changed amber with the first change
  written in the gutter, matched-but-moved nodes blue; unchanged ones grey;
- long runs of unchanged rows fold into one "N unchanged nodes" row, keeping `context`
  rows around each change, so a 100k-node graph with a few changes stays a small page;
- edges between visible rows are drawn within each side; a node's tooltip (SVG <title>)
  holds its full text form (gancc.graph.text) with inputs and attributes.

No script, no external file: the page is one self-contained HTML document.
"""

from __future__ import annotations

import bisect
from html import escape
from itertools import zip_longest

from gancc.diff.compare import DiffResult
from gancc.diff.match import Matching
from gancc.diff.text import change_lines, dim_line, group_name, init_line, render_text
from gancc.gcpause import gc_paused
from gancc.graph.text import format_node

ROW_H = 30
BOX_H = 22
BOX_W = 250
GUTTER = 330
MARGIN = 90              # room for the edges that curve around the left/right graph
TABLE_ROWS = 500         # the change table lists this many; the JSON has them all

STYLE = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222}
h1{font-size:20px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:18px 0 6px}
pre{background:#f7f7f7;padding:10px;overflow:auto;font-size:12px;border-radius:4px}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f2f2f2} td.num{text-align:right;font-variant-numeric:tabular-nums}
.verdict-equal{color:#16803c;font-weight:600} .verdict-diff{color:#b45309;font-weight:600}
.legend span{display:inline-block;padding:1px 8px;margin-right:6px;border:1px solid;border-radius:3px;font-size:12px}
.graphdiff{overflow:auto;border:1px solid #ddd;border-radius:4px;max-height:80vh;background:#fff}
svg text{font:11px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
svg .op{font-weight:700}
"""

_FILL = {"same": ("#f6f6f6", "#9a9a9a"), "removed": ("#fde2e2", "#c0392b"),
         "added": ("#dcf5e3", "#1e8449"), "changed": ("#fff1c9", "#c98a00"),
         "moved": ("#e3e8ff", "#3d5afe")}


def legend() -> str:
    items = [("unchanged", "same"), ("removed", "removed"), ("added", "added"),
             ("changed", "changed"), ("matched, moved", "moved")]
    return '<p class="legend">' + "".join(
        f'<span style="background:{_FILL[k][0]};border-color:{_FILL[k][1]}">{escape(t)}</span>'
        for t, k in items) + "</p>"


def _anchors(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The longest subsequence of `pairs` (sorted by A index) increasing in B index, in
    order."""
    tails: list[int] = []          # smallest B index ending an increasing run of each length
    tail_at: list[int] = []        # index into pairs of that run's end
    back = [-1] * len(pairs)
    for k, (_, j) in enumerate(pairs):
        if not tails or j > tails[-1]:      # extends the longest run: the common case
            pos = len(tails)
            tails.append(j)
            tail_at.append(k)
        else:
            pos = bisect.bisect_left(tails, j)
            tails[pos] = j
            tail_at[pos] = k
        back[k] = tail_at[pos - 1] if pos else -1
    chain: list[tuple[int, int]] = []
    k = tail_at[-1] if tail_at else -1
    while k != -1:
        chain.append(pairs[k])
        k = back[k]
    chain.reverse()
    return chain


def _rows(result: DiffResult) -> tuple[list[tuple[int | None, int | None]], list[str],
                                       list[str]]:
    """Aligned rows (A index or None, B index or None), and the status of each node. (Linear
    and list-based: it runs over every node of both graphs for a page that shows few.)"""
    m = result.matching
    assert m is not None
    a, b = m.a, m.b
    pairs = sorted(m.a_to_b.items())
    anchors = _anchors(pairs)
    status_a, status_b = ["removed"] * a.size, ["added"] * b.size
    for i, j in pairs:
        status_a[i] = status_b[j] = "moved"
    for i, j in anchors:
        status_a[i] = status_b[j] = "same"
    changed = [(c.index_a, c.index_b) for c in result.changed]
    changed += [(m.b_to_a[j], j) for j in result.init_changed_b if j in m.b_to_a]
    for i, j in changed:
        if m.a_to_b.get(i) == j:
            status_a[i] = status_b[j] = "changed"
    rows: list[tuple[int | None, int | None]] = []
    ia = jb = 0
    for i, j in anchors:
        if i > ia or j > jb:            # unmatched or moved nodes before this anchor
            rows += zip_longest(range(ia, i), range(jb, j))
        rows.append((i, j))
        ia, jb = i + 1, j + 1
    rows += zip_longest(range(ia, a.size), range(jb, b.size))
    return rows, status_a, status_b


def side_by_side_svg(result: DiffResult, context: int = 3, max_rows: int = 800) -> str:
    """Inline SVG of both graphs, aligned, changed region highlighted, unchanged runs folded."""
    m = result.matching
    if m is None:
        return ""
    rows, status_a, status_b = _rows(result)
    layout = _folded_layout(rows, _visible_rows(rows, status_a, status_b, context))
    truncated = 0
    if len(layout) > max_rows:
        truncated = sum(1 for kind, _ in layout[max_rows:] if kind == "row")
        layout = layout[:max_rows]
    xa, xb = MARGIN, MARGIN + BOX_W + GUTTER
    width = xb + BOX_W + MARGIN
    height = (len(layout) + 2) * ROW_H + (ROW_H if truncated else 0)
    parts: list[str] = []
    parts.append(f'<text x="{xa}" y="16" class="op">{escape(result.a_label)}</text>')
    parts.append(f'<text x="{xb}" y="16" class="op">{escape(result.b_label)}</text>')
    y_of_a, y_of_b = _draw_layout(parts, result, m, layout, (status_a, status_b), (xa, xb))
    for side, y_of, x, leftward in ((m.a, y_of_a, xa, True), (m.b, y_of_b, xb, False)):
        for c, y in y_of.items():
            for src in side.srcs[c]:
                if src[0] == "n" and src[1] in y_of:
                    parts.append(_edge(x, y_of[src[1]], y, leftward))
    if truncated:
        parts.append(f'<text x="{xa}" y="{height - 8}" fill="#a00">… {truncated} more rows not '
                     'drawn (see the lists below)</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img">' + "".join(parts) + "</svg>")


def _visible_rows(rows: list[tuple[int | None, int | None]], status_a: list[str],
                  status_b: list[str], context: int) -> list[bool]:
    """Which rows are drawn: those within `context` rows of a row that is not "same"."""
    hot = [k for k, (i, j) in enumerate(rows)
           if (i is not None and status_a[i] != "same") or (j is not None and status_b[j] != "same")]
    visible = [False] * len(rows)
    for k in hot:
        for t in range(max(0, k - context), min(len(rows), k + context + 1)):
            visible[t] = True
    if not hot:                                   # equal graphs: show the start of the graph
        for t in range(min(len(rows), 2 * context + 1)):
            visible[t] = True
    return visible


def _folded_layout(rows: list[tuple[int | None, int | None]],
                   visible: list[bool]) -> list[tuple[str, object]]:
    """The visible rows, and one fold row (its count of hidden rows) per run of hidden ones."""
    layout: list[tuple[str, object]] = []
    k = 0
    while k < len(rows):
        if visible[k]:
            layout.append(("row", rows[k]))
            k += 1
        else:
            start = k
            while k < len(rows) and not visible[k]:
                k += 1
            layout.append(("fold", k - start))
    return layout


def _draw_layout(parts: list[str], result: DiffResult, m: Matching,
                 layout: list[tuple[str, object]], statuses: tuple[list[str], list[str]],
                 columns: tuple[float, float]) -> tuple[dict[int, float], dict[int, float]]:
    """Append the boxes, folds and change notes to `parts`; returns each side's node -> y."""
    a, b = m.a, m.b
    status_a, status_b = statuses
    xa, xb = columns
    y_of_a: dict[int, float] = {}
    y_of_b: dict[int, float] = {}
    changes_by_b = {c.index_b: c for c in result.changed}
    for r, (kind, item) in enumerate(layout):
        y = (r + 1) * ROW_H
        if kind == "fold":
            parts.append(f'<line x1="{xa}" y1="{y + BOX_H / 2}" x2="{xb + BOX_W}" y2="{y + BOX_H / 2}" '
                         'stroke="#bbb" stroke-dasharray="4 4"/>')
            parts.append(f'<text x="{xa + BOX_W + GUTTER / 2}" y="{y + BOX_H / 2 + 4}" '
                         f'text-anchor="middle" fill="#777">⋯ {item} unchanged row(s) ⋯</text>')
            continue
        i, j = item  # type: ignore[misc]
        if i is not None:
            y_of_a[i] = y
            parts.append(_box(xa, y, a.node(i), a.op[i], status_a[i]))
        if j is not None:
            y_of_b[j] = y
            parts.append(_box(xb, y, b.node(j), b.op[j], status_b[j]))
        if i is not None and j is not None and status_b[j] == "changed":
            change = changes_by_b.get(j)
            note = change_lines(change)[0] if change is not None and change_lines(change) \
                else "initializer values changed"
            parts.append(f'<line x1="{xa + BOX_W}" y1="{y + BOX_H / 2}" x2="{xb}" '
                         f'y2="{y + BOX_H / 2}" stroke="{_FILL["changed"][1]}" stroke-dasharray="3 3"/>')
            parts.append(f'<text x="{xa + BOX_W + GUTTER / 2}" y="{y + BOX_H / 2 - 3}" '
                         f'text-anchor="middle" fill="#8a5a00">{escape(_clip(note, 46))}</text>')
    return y_of_a, y_of_b


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _box(x: float, y: float, node, op: str, status: str) -> str:
    fill, stroke = _FILL[status]
    op = _clip(op, 22)
    name = _clip(node.name or "(unnamed)", max(8, 36 - len(op)))
    return (f'<g class="node {status}"><title>{escape(format_node(node))}</title>'
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="4" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="{2 if status != "same" else 1}"/>'
            f'<text x="{x + 6}" y="{y + 15}"><tspan class="op">{escape(op)}</tspan> '
            f'<tspan fill="#555">{escape(name)}</tspan></text></g>')


def _edge(x: float, y_from: float, y_to: float, leftward: bool) -> str:
    if y_to - y_from <= ROW_H + 0.5:
        cx = x + BOX_W / 2
        return (f'<line x1="{cx}" y1="{y_from + BOX_H}" x2="{cx}" y2="{y_to}" stroke="#888" '
                'marker-end="none"/>')
    span = min(MARGIN - 10, 14 + (y_to - y_from) / ROW_H * 4)
    ex = x if leftward else x + BOX_W
    off = -span if leftward else span
    return (f'<path d="M{ex} {y_from + BOX_H / 2} C{ex + off} {y_from + BOX_H / 2} {ex + off} '
            f'{y_to + BOX_H / 2} {ex} {y_to + BOX_H / 2}" fill="none" stroke="#888"/>')


@gc_paused()
def diff_section(result: DiffResult, context: int = 3) -> str:
    """The body of a diff: verdict, legend, the picture, and the lists (HTML fragment)."""
    s = result.summary()
    renames = ", ".join(x for x in (f"{s['renamed']} renamed" if s["renamed"] else "",
                                    f"{len(result.dims_renamed)} symbolic dim(s) renamed"
                                    if result.dims_renamed else "") if x)
    verdict = ("equal" + (f" ({renames})" if renames else "")) if result.equal \
        else (f"{s['changed']} changed, {s['added']} added, {s['removed']} removed, "
              f"{s['initializers']} initializer and {s['io']} input/output change(s)")
    out = [f'<p class="{"verdict-equal" if result.equal else "verdict-diff"}">{escape(verdict)}</p>',
           legend(), f'<div class="graphdiff">{side_by_side_svg(result, context)}</div>']
    if result.dims_renamed:
        out.append("<h3>Symbolic dims renamed</h3><p>Not an interface change: any size fits "
                   "both.</p><ul>" + "".join(f"<li>{escape(dim_line(e))}</li>"
                                             for e in result.dims_renamed) + "</ul>")
    groups = result.by_rewrite()
    if groups:
        out.append("<h3>Changes by rewrite</h3>")
        out.append('<table class="changes"><tr><th>rewrite</th><th>what</th><th>node</th>'
                   "<th>details</th></tr>")
        start = len(out)
        for tag, group in groups.items():
            name = escape(group_name(tag).removeprefix("rewrite "))
            for c in group["changed"]:
                out.append(f"<tr><td>{name}</td><td>changed</td><td>{escape(c.op_type)} "
                           f"{escape(c.b)}</td><td>{escape('; '.join(change_lines(c, tag)))}"
                           "</td></tr>")
            for kind in ("removed", "added"):
                for r in group[kind]:
                    out.append(f"<tr><td>{name}</td><td>{kind}</td><td>{escape(r.op_type)} "
                               f"{escape(r.name)}</td><td></td></tr>")
            for init in group["initializers"]:
                out.append(f"<tr><td>{name}</td><td>initializer</td><td>{escape(init['b'])}"
                           f"</td><td>{escape(init_line(init))}</td></tr>")
        if len(out) - start > TABLE_ROWS:
            hidden = len(out) - start - TABLE_ROWS
            del out[start + TABLE_ROWS:]
            out.append(f'<tr><td colspan="4">… {hidden} more (gancc diff --json lists them '
                       "all)</td></tr>")
        out.append("</table>")
    hist = sorted(set(result.histogram_a) | set(result.histogram_b))
    out.append("<h3>Op types</h3><table><tr><th>op type</th><th>before</th><th>after</th>"
               "<th>change</th></tr>")
    for op in hist:
        x, y = result.histogram_a.get(op, 0), result.histogram_b.get(op, 0)
        out.append(f"<tr><td>{escape(op)}</td><td class=num>{x}</td><td class=num>{y}</td>"
                   f"<td class=num>{y - x:+d}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


@gc_paused()
def render_html(result: DiffResult, context: int = 3) -> str:
    """A whole self-contained page for `gancc diff --html`."""
    title = f"gancc diff: {result.a_label} vs {result.b_label}"
    return (f"<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>{escape(title)}"
            f"</title><style>{STYLE}</style></head><body>\n<h1>{escape(title)}</h1>\n"
            f"<p>{result.a_nodes} vs {result.b_nodes} nodes; matched structurally in "
            f"{result.seconds:.3f}s</p>\n{diff_section(result, context)}\n"
            f"<h2>Text form</h2><pre>{escape(render_text(result, verbose=True))}</pre>\n"
            "</body></html>\n")
