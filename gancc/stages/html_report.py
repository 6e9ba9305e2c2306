"""Stage 8b: report.html, the build report a person reads (report.json is for machines).

One self-contained page (inline CSS, images as base64 PNG, no script, no network) with:
the pipeline and its timings; each stage and pass with its statistics and its structural
diff (gancc.diff, side by side, grouped by rewrite); the atc commands and AIPP config; the
validation figures per output, including the border band vs the interior (where lossy
padding rewrites put their error); and pictures for the first samples: the reference
output, the compiled output and an error heatmap with the border band outlined.

Outputs in Tanh's range ([-1, 1]) are shown as (x + 1) / 2, outputs in [0, 1] as they are,
anything else min-max scaled; three channels are RGB, otherwise the first channel is grey.
"""

from __future__ import annotations

import base64
import io
import math
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from gancc.diff.html import STYLE as DIFF_STYLE, diff_section
from gancc.fsutil import write_text_atomic
from gancc.stages.report import BuildReport
from gancc.stages.validate import ValidationReport

STYLE = DIFF_STYLE + """
.warn{background:#fff4d6;border:1px solid #e0b84c;padding:8px 12px;border-radius:4px}
.bad{background:#fde2e2;border:1px solid #c0392b;padding:8px 12px;border-radius:4px}
.bar{display:inline-block;height:10px;background:#4a7bd0;border-radius:2px;vertical-align:middle}
figure{display:inline-block;margin:0 12px 12px 0;text-align:center;vertical-align:top}
figcaption{font-size:12px;color:#555;max-width:220px}
img.pic{image-rendering:pixelated;border:1px solid #ccc}
details{margin:6px 0} summary{cursor:pointer}
"""

_HEAT = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]],
                 dtype=np.float64)      # dark -> bright, like the inferno colour map


def write_html(report: BuildReport, path: Path, stages: list | None = None) -> None:
    write_text_atomic(path, render(report, stages or []))


def write_html_quietly(report: BuildReport, path: Path, stages: list | None = None) -> None:
    """For a failed build: write what can be written; a report problem must never hide the
    build's own error, so one is noted in report.json instead of raised."""
    try:
        write_html(report, path, stages)
    except Exception as err:   # noqa: BLE001 - the build error is the one to show
        report.html_error = f"{type(err).__name__}: {err}"


def render(report: BuildReport, stages: list) -> str:
    model = escape(report.model)
    body = [f"<h1>gancc build report: {model}</h1>", _summary(report),
            _pipeline(report), _passes(report, stages), _atc(report),
            _validation(report), _pictures(report.validation), _more(report)]
    return (f"<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            f"<title>gancc report: {model}</title><style>{STYLE}</style></head>"
            f"<body>\n" + "\n".join(body) + "\n</body></html>\n")


def _summary(report: BuildReport) -> str:
    out = ['<section id="summary"><h2>Summary</h2>']
    if report.status != "ok":
        out.append(f'<p class="bad">build {escape(report.status)}: '
                   f'<code>{escape(report.error or "")}</code></p>')
    weights = report.source.weights if report.source is not None else None
    if weights is not None and weights.kind == "random":
        out.append(f'<p class="warn"><b>RANDOM WEIGHTS</b>: {escape(weights.note)}. The '
                   "outputs are not images; validation checks the compilation only.</p>")
    final = report.final
    rows = [("status", report.status), ("spec", report.spec),
            ("source", report.source.kind if report.source is not None else ""),
            ("pipeline", (report.rewrite.pipeline if report.rewrite else "") or "(no rewrites)"),
            ("final graph", final.file if final is not None else ""),
            ("final nodes", final.nodes if final is not None and final.nodes is not None else "")]
    if report.tools:
        rows.append(("tools", ", ".join(f"{k} {v}" for k, v in report.tools.items())))
    out.append("<table>" + "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>"
                                   for k, v in rows) + "</table></section>")
    return "\n".join(out)


def _pipeline(report: BuildReport) -> str:
    timings = report.timings
    total = sum(timings.values()) or 1.0
    out = ['<section id="pipeline"><h2>Pipeline</h2><table>'
           "<tr><th>stage</th><th>seconds</th><th></th></tr>"]
    for name, seconds in timings.items():
        width = max(1, int(300 * seconds / total))
        out.append(f"<tr><td>{escape(name)}</td><td class=num>{seconds:.2f}</td>"
                   f'<td><span class="bar" style="width:{width}px"></span></td></tr>')
    out.append(f"<tr><th>total</th><th class=num>{sum(timings.values()):.2f}</th><th></th></tr>")
    out.append("</table></section>")
    return "\n".join(out)


def _passes(report: BuildReport, stages: list) -> str:
    out = ['<section id="passes"><h2>Passes</h2>',
           '<table class="passes"><tr><th>pass</th><th>changed</th><th>matches</th>'
           "<th>nodes removed</th><th>nodes added</th><th>declined</th><th>seconds</th></tr>"]
    for p in (report.rewrite.passes if report.rewrite is not None else ()):
        reasons = "; ".join(f"{n}× {r}" for r, n in p.to_json()["decline_reasons"].items())
        out.append(f'<tr class="pass"><td>{escape(p.name)}</td><td>{"yes" if p.changed else "no"}'
                   f'</td><td class=num>{p.matches}</td><td class=num>{p.nodes_removed}</td>'
                   f'<td class=num>{p.nodes_added}</td><td>{len(p.declined)}'
                   f'{" (" + escape(reasons) + ")" if reasons else ""}</td>'
                   f'<td class=num>{p.seconds:.3f}</td></tr>')
    out.append("</table>")
    dump_dir = (report.ir or {}).get("dump_dir")
    if dump_dir:
        out.append(f"<p>IR dumps: <code>{escape(str(dump_dir))}</code> "
                   "(<code>gancc diff DIR:STAGE</code> shows one stage's changes)</p>")
    out.append("<h3>What each stage changed</h3>")
    out += _stage_diffs(stages)
    out.append("</section>")
    return "\n".join(out)


def _stage_diffs(stages: list) -> list[str]:
    out, previous = [], None
    for st in stages:
        if st.skipped:
            out.append(f"<p>{st.index:02d} {escape(st.stage)}: skipped (build cache)</p>")
            continue
        if previous is None:
            out.append(f"<p>{st.index:02d} {escape(st.stage)}: the starting graph</p>")
        elif not st.changed:
            out.append(f"<p>{st.index:02d} {escape(st.stage)}: no change</p>")
        elif st.diff is not None:
            s = st.diff.summary()
            is_pass = st.stage not in ("export", "source", "simplify")
            out.append(f'<details class="stage-diff"{" open" if is_pass else ""}><summary>'
                       f"{st.index:02d} {escape(st.stage)} (against {escape(previous)}): "
                       f"{s['changed']} changed, {s['added']} added, {s['removed']} removed"
                       f"</summary>{diff_section(st.diff)}</details>")
        previous = st.stage
    return out


def _atc(report: BuildReport) -> str:
    atc = report.atc
    out = ['<section id="atc"><h2>atc</h2>']
    if atc is not None:
        ran = "ran here" if atc.ran else "not run here (atc is not installed)"
        out.append(f"<p>{len(atc.commands)} command(s) in <code>{escape(atc.script)}</code>, "
                   f"{ran}</p>")
        out.append("<pre>" + escape("\n".join(atc.commands)) + "</pre>")
    else:
        out.append("<p>no atc commands (the build stopped before them)</p>")
    if report.aipp is not None:
        out.append(f"<h3>AIPP config ({escape(report.aipp.file)})</h3>"
                   f"<pre>{escape(report.aipp.text)}</pre>")
    out.append("</section>")
    return "\n".join(out)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "inf" if math.isinf(v) else f"{v:.6g}"
    return escape(str(v))


def _validation(report: BuildReport) -> str:
    v = report.validation
    out = ['<section id="validation"><h2>Validation</h2>']
    if v is None or not v.final:
        why = report.skipped("validate") or "validation did not run"
        out.append(f"<p>{escape(why)}</p></section>")
        return "\n".join(out)
    out.append(f"<p>reference: {escape(v.reference)}, {v.samples} sample(s), seed {v.seed}</p>")
    keys = ("pixel_cosine", "cosine", "max_abs", "mean_abs", "psnr")
    out.append('<table class="figures"><tr><th>output</th><th>compared</th>' +
               "".join(f"<th>{k}</th>" for k in keys) + "</tr>")
    for figures, label in ((v.final, "compiled vs reference"),
                           (v.exported, "unmodified export vs reference")):
        for name, fig in figures.items():
            out.append(f"<tr><td>{escape(name)}</td><td>{label}</td>" +
                       "".join(f"<td class=num>{_fmt(fig.get(k))}</td>" for k in keys) + "</tr>")
    out.append("</table>")
    out += _border_band(v.regions) + _requirements(v.checks)
    out.append("</section>")
    return "\n".join(out)


def _border_band(band: dict) -> list[str]:
    if not band:
        return []
    out = ["<h3>Border band vs interior</h3>"
           "<p>Lossy padding rewrites (reflect → zero) change the outer pixels only; "
           "this splits the error between the border band and the rest.</p>",
           '<table class="border-band"><tr><th>output</th><th>compared</th><th>band px</th>'
           "<th>border mean_abs</th><th>interior mean_abs</th><th>border pixel_cosine</th>"
           "<th>interior pixel_cosine</th></tr>"]
    for kind, per_output in band.items():
        for name, r in per_output.items():
            out.append(f"<tr><td>{escape(name)}</td><td>{escape(kind.replace('_', ' '))}</td>"
                       f"<td class=num>{r['band']}</td>"
                       f"<td class=num>{_fmt(r['border']['mean_abs'])}</td>"
                       f"<td class=num>{_fmt(r['interior']['mean_abs'])}</td>"
                       f"<td class=num>{_fmt(r['border']['pixel_cosine'])}</td>"
                       f"<td class=num>{_fmt(r['interior']['pixel_cosine'])}</td></tr>")
    out.append("</table>")
    return out


def _requirements(checks: list[dict]) -> list[str]:
    if not checks:
        return []
    out = ["<h3>Requirements</h3><table><tr><th>output</th><th>metric</th><th>value</th>"
           "<th>required</th><th>passed</th></tr>"]
    for r in checks:
        out.append(f"<tr><td>{escape(r['output'])}</td><td>{escape(r['metric'])}</td>"
                   f"<td class=num>{_fmt(r['value'])}</td><td>{escape(r['require'])}</td>"
                   f"<td>{'yes' if r['passed'] else '<b>no</b>'}</td></tr>")
    out.append("</table>")
    return out


_SHOWN = {"model", "spec", "status", "error", "tools", "timings", "source", "weights",
          "random_weights", "pipeline", "passes", "final", "atc", "aipp", "validation", "ir"}


def _more(typed: BuildReport) -> str:
    """Everything else report.json holds (export, simplify, cache, and what later stages
    add), folded, so the page never hides a fact the JSON has."""
    import json

    report = typed.to_json()
    rest = [k for k in report if k not in _SHOWN]
    out = ['<section id="more"><h2>More in report.json</h2>']
    for key in rest:
        text = json.dumps(report[key], indent=1, default=str)
        if len(text) > 20000:
            text = text[:20000] + "\n... (see report.json)"
        out.append(f"<details><summary>{escape(key)}</summary><pre>{escape(text)}</pre></details>")
    if not rest:
        out.append("<p>nothing else</p>")
    out.append("</section>")
    return "\n".join(out)


# pictures -------------------------------------------------------------------------------
def to_image_array(x: np.ndarray) -> np.ndarray:
    """One sample (C, H, W) as uint8 (H, W) or (H, W, 3), see the module docstring."""
    x = np.asarray(x, dtype=np.float64)
    x = x[:3] if x.shape[0] >= 3 else x[:1]
    lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
    if lo >= -1.0001 and hi <= 1.0001 and lo < 0:
        x = (x + 1) / 2
    elif not (lo >= 0 and hi <= 1.0001):
        x = (x - lo) / ((hi - lo) or 1.0)
    img = np.clip(np.nan_to_num(x) * 255 + 0.5, 0, 255).astype(np.uint8)
    return img.transpose(1, 2, 0) if img.shape[0] == 3 else img[0]


def heatmap(err: np.ndarray, vmax: float) -> np.ndarray:
    """(H, W) errors as an (H, W, 3) uint8 picture, 0 dark, `vmax` bright."""
    t = np.clip(err / (vmax or 1.0), 0, 1) * (len(_HEAT) - 1)
    lo = np.floor(t).astype(int).clip(0, len(_HEAT) - 2)
    frac = (t - lo)[..., None]
    rgb = _HEAT[lo] * (1 - frac) + _HEAT[lo + 1] * frac
    return rgb.astype(np.uint8)


def png_data_uri(img: np.ndarray, band: int | None = None) -> str:
    """A PNG (scaled up for small images) as a data: URI; `band` draws the border band."""
    from PIL import Image, ImageDraw

    pic = Image.fromarray(img)
    scale = max(1, min(4, math.ceil(192 / max(pic.width, 1))))
    if scale > 1:
        pic = pic.resize((pic.width * scale, pic.height * scale), Image.NEAREST)
    if band:
        if pic.mode != "RGB":
            pic = pic.convert("RGB")
        draw = ImageDraw.Draw(pic)
        b = band * scale
        draw.rectangle([b, b, pic.width - 1 - b, pic.height - 1 - b], outline=(0, 220, 255))
    buffer = io.BytesIO()
    pic.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(uri: str, caption: str) -> str:
    return (f'<figure><img class="pic" src="{uri}" alt="{escape(caption)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def _pictures(validation: ValidationReport | None) -> str:
    out = ['<section id="pictures"><h2>Pictures</h2>']
    pictures = validation.pictures if validation is not None else {}
    if "reference" not in pictures or "final" not in pictures:
        out.append("<p>no pictures: validation did not run</p></section>")
        return "\n".join(out)
    from gancc.metrics import BORDER_BAND

    shown = 0
    for name, ref in pictures["reference"].items():
        final = pictures["final"].get(name)
        if final is None or np.asarray(ref).ndim != 4:
            continue
        ref, final = np.asarray(ref), np.asarray(final)
        exported = pictures.get("exported", {}).get(name)
        band = BORDER_BAND if min(ref.shape[2:]) > 2 * BORDER_BAND else None
        for k in range(min(len(ref), len(final))):
            err = np.abs(ref[k].astype(np.float64) - final[k]).mean(axis=0)
            vmax = float(err.max())
            caption = f"error |reference - compiled|, max {vmax:.3g}"
            if band:
                inner = err[band:-band, band:-band]
                border_mean = (err.sum() - inner.sum()) / max(err.size - inner.size, 1)
                caption += (f"; mean {border_mean:.3g} in the {band}px border band (outlined) vs "
                            f"{inner.mean():.3g} inside")
            out.append(f'<div class="sample"><h3>{escape(name)}, sample {k}</h3>')
            out.append(_figure(png_data_uri(to_image_array(ref[k])), "reference"))
            out.append(_figure(png_data_uri(to_image_array(final[k])), "compiled (final graph)"))
            if exported is not None and k < len(exported):
                out.append(_figure(png_data_uri(to_image_array(np.asarray(exported)[k])),
                                   "unmodified export"))
            out.append(_figure(png_data_uri(heatmap(err, vmax), band), caption))
            out.append("</div>")
            shown += 1
    if not shown:
        out.append("<p>no image-shaped (N, C, H, W) outputs to picture</p>")
    out.append("</section>")
    return "\n".join(out)
