"""validation.html: the set's figures for people. A table of every figure (mean, min, max,
worst sample), the `require` lines, a small histogram per figure (inline SVG, no script),
and the worst samples as reference / compiled / error-heatmap triples (the pictures of
gancc/stages/html_report.py). `gancc compare --html` renders the same page from its rows."""

from __future__ import annotations

import math
from html import escape

import numpy as np

BINS = 20


def histogram_svg(values: list[float], width: int = 220, height: int = 60) -> str:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "<svg width='0' height='0'></svg>"
    lo, hi = min(finite), max(finite)
    counts = np.histogram(finite, bins=BINS, range=(lo, hi if hi > lo else lo + 1))[0]
    top = max(int(counts.max()), 1)
    bar = width / BINS
    rects = "".join(
        f"<rect x='{i * bar:.1f}' y='{height - 12 - c / top * (height - 14):.1f}' "
        f"width='{bar - 1:.1f}' height='{c / top * (height - 14):.1f}' fill='#4a7bd0'>"
        f"<title>{c}</title></rect>" for i, c in enumerate(counts))
    return (f"<svg class='hist' width='{width}' height='{height}' role='img' "
            f"aria-label='histogram of {len(finite)} values'>{rects}"
            f"<text x='0' y='{height - 1}' font-size='9'>{lo:.4g}</text>"
            f"<text x='{width}' y='{height - 1}' font-size='9' text-anchor='end'>{hi:.4g}</text>"
            "</svg>")


def _fmt(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else escape(str(v))


def _figures_table(rows: list[dict], stats: dict) -> list[str]:
    from gancc.validation.summary import flat_figures

    columns: dict[str, list[float]] = {}
    for row in rows:
        for key, value in flat_figures(row).items():
            columns.setdefault(key, []).append(value)
    out = ["<h2>Figures</h2><table><tr><th>figure</th><th>mean</th><th>min</th><th>max</th>"
           "<th>worst sample</th><th>distribution</th></tr>"]
    for key, s in stats.items():
        out.append(f"<tr><td>{escape(key)}</td><td>{_fmt(s['mean'])}</td><td>{_fmt(s['min'])}"
                   f"</td><td>{_fmt(s['max'])}</td><td>{escape(s['worst_id'])}</td>"
                   f"<td>{histogram_svg(columns.get(key, []))}</td></tr>")
    out.append("</table>")
    return out


def _checks(checks: list[dict]) -> list[str]:
    if not checks:
        return ["<p>no <code>require</code> lines</p>"]
    out = ["<h2>Requirements</h2><table><tr><th>output</th><th>figure</th><th>require</th>"
           "<th>mean</th><th>worst</th><th>verdict</th><th>where</th></tr>"]
    for c in checks:
        verdict = "ok" if c["passed"] else "FAILED"
        out.append(f"<tr><td>{escape(c['output'])}</td><td>{escape(c['metric'])}</td>"
                   f"<td>{escape(c['require'])}</td><td>{_fmt(c['mean'])}</td>"
                   f"<td>{_fmt(c['worst'])} ({escape(c['worst_id'])})</td>"
                   f"<td class='{verdict}'>{verdict}</td><td>{escape(c['where'])}</td></tr>")
    out.append("</table>")
    return out


def _pictures(pictures: dict[str, dict]) -> list[str]:
    from gancc.stages.html_report import heatmap, png_data_uri, to_image_array

    out = ["<h2>Worst samples</h2>"]
    if not pictures:
        return out + ["<p>no image outputs to picture</p>"]
    for sample_id, outputs in pictures.items():
        for name, (ref, act) in outputs.items():
            err = np.abs(np.asarray(ref, np.float64) - act).mean(axis=0)
            vmax = float(err.max())
            out.append(f"<div class='sample'><h3>{escape(sample_id)}: {escape(name)}</h3>")
            for uri, caption in ((png_data_uri(to_image_array(ref)), "reference"),
                                 (png_data_uri(to_image_array(act)), "compiled (final graph)"),
                                 (png_data_uri(heatmap(err, vmax)),
                                  f"error |reference - compiled|, max {vmax:.3g}")):
                out.append(f"<figure><img src='{uri}' alt='{escape(caption)}'>"
                           f"<figcaption>{escape(caption)}</figcaption></figure>")
            out.append("</div>")
    return out


STYLE = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}.FAILED{color:#b00}"
         ".ok{color:#070}figure{display:inline-block;margin:4px}img{max-width:512px}")


def render(result: dict, pictures: dict[str, dict] | None = None) -> str:
    """The page for a validation.json-shaped `result` (samples, summary, engine, ...)."""
    summary = result["summary"]
    head = (f"{escape(result.get('model', ''))}: {len(result['samples'])} samples, "
            f"{'passed' if summary['passed'] else 'FAILED'}")
    engine = result.get("engine") or {}
    lines = ["<!doctype html><html><head><meta charset='utf-8'>",
             f"<title>{head}</title><style>{STYLE}</style></head><body>", f"<h1>{head}</h1>",
             f"<p>engine: {escape(str(engine.get('name', '-')))} "
             f"{escape(str(engine.get('version', '')))}, {engine.get('workers', '-')} worker(s) "
             f"on {engine.get('nodes', '-')} node(s); reused {result.get('reused', 0)} stored "
             "row(s)</p>"]
    lines += [f"<p class='FAILED'>{escape(f)}</p>" for f in summary["failures"]]
    lines += _checks(summary["checks"])
    lines += _figures_table(result["samples"], summary["figures"])
    lines += _pictures(pictures or {})
    lines.append("</body></html>")
    return "\n".join(lines)
