"""Stage 8b: report.html, the build report a person reads (report.json is for machines).

One self-contained page (inline CSS, images as base64 PNG, no script, no network) with:
the pipeline and its timings; each stage and pass with its statistics and its structural
diff (gancc.diff, side by side, grouped by rewrite); the atc commands and AIPP config; the
validation figures per output, including the border band vs the interior (where lossy
padding rewrites put their error), the fp16 prediction and the AIPP emulation; and pictures
for the first samples: the reference output, the compiled output and an error heatmap with
the border band outlined.

Pictures on the page are at most PAGE_WIDTH pixels wide, and all of them together stay
within PICTURE_BUDGET bytes (a picture over its share is shown smaller), so a report opens
whatever the model's output size; each links to its full-size PNG in `report_files/` beside
report.html (written by write_html).

Outputs in Tanh's range ([-1, 1]) are shown as (x + 1) / 2, outputs in [0, 1] as they are,
anything else min-max scaled; three channels are RGB, otherwise the first channel is grey.
"""

from __future__ import annotations

import base64
import io
import math
import os
import re
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


PAGE_WIDTH = 512               # the widest picture on the page, in pixels
PICTURE_BUDGET = 1_800_000     # PNG bytes on the page, all pictures together (~2.4 MB base64)
FILES_DIR = "report_files"     # full-size pictures, beside report.html


class PictureFiles:
    """The full-size PNGs the page links to: name -> picture, written by write_html."""

    def __init__(self) -> None:
        self.files: dict[str, np.ndarray] = {}
        self._bands: dict[str, int | None] = {}

    def add(self, stem: str, img: np.ndarray, band: int | None = None) -> str:
        """Keep `img` as FILES_DIR/<stem>.png; returns the link (relative to report.html)."""
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "picture"
        name = f"{len(self.files):02d}-{safe}.png"
        self.files[name], self._bands[name] = img, band
        return f"{FILES_DIR}/{name}"

    def write(self, folder: Path) -> None:
        if not self.files:
            return
        folder.mkdir(parents=True, exist_ok=True)
        for name, img in self.files.items():
            data = encode_png(img, img.shape[1], self._bands[name])
            tmp = folder / f".{name}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, folder / name)


def write_html(report: BuildReport, path: Path, stages: list | None = None) -> None:
    files = PictureFiles()
    text = render(report, stages or [], files)
    files.write(path.parent / FILES_DIR)
    write_text_atomic(path, text)


def write_html_quietly(report: BuildReport, path: Path, stages: list | None = None) -> None:
    """For a failed build: write what can be written; a report problem must never hide the
    build's own error, so one is noted in report.json instead of raised."""
    try:
        write_html(report, path, stages)
    except Exception as err:   # noqa: BLE001 - the build error is the one to show
        report.html_error = f"{type(err).__name__}: {err}"


def render(report: BuildReport, stages: list, files: PictureFiles | None = None) -> str:
    """The page; `files` collects the full-size pictures it links to (None: no links)."""
    model = escape(report.model)
    body = [f"<h1>gancc build report: {model}</h1>", _summary(report),
            _pipeline(report), _passes(report, stages), _atc(report),
            _validation(report), _pictures(report.validation, files), _more(report)]
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
    out = ['<section id="passes"><h2>Passes</h2>']
    passes = report.rewrite.passes if report.rewrite is not None else ()
    if not passes:
        out.append("<p>no rewrites: the spec has no rewrite steps</p>" if report.rewrite
                   is not None else "<p>no rewrites ran (the build stopped before them)</p>")
    else:
        out.append('<table class="passes"><tr><th>pass</th><th>changed</th><th>matches</th>'
                   "<th>nodes removed</th><th>nodes added</th><th>declined</th>"
                   "<th>seconds</th></tr>")
    for p in passes:
        reasons = "; ".join(f"{n}× {r}" for r, n in p.to_json()["decline_reasons"].items())
        out.append(f'<tr class="pass"><td>{escape(p.name)}</td><td>{"yes" if p.changed else "no"}'
                   f'</td><td class=num>{p.matches}</td><td class=num>{p.nodes_removed}</td>'
                   f'<td class=num>{p.nodes_added}</td><td>{len(p.declined)}'
                   f'{" (" + escape(reasons) + ")" if reasons else ""}</td>'
                   f'<td class=num>{p.seconds:.3f}</td></tr>')
    if passes:
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
    out += [f'<p class="warn">{escape(w)}</p>' for w in v.warnings]
    out += _border_band(v.regions, lossy_passes(report)) + _requirements(v.checks)
    out += _fp16(v, report.skipped("fp16")) + _aipp(v.aipp)
    out.append("</section>")
    return "\n".join(out)


def lossy_passes(report: BuildReport) -> list[str]:
    """The rewrites that changed the graph and are not exact (numerics change)."""
    from gancc.passes import registry

    known = registry.all_rewrites()
    return [p.name for p in (report.rewrite.passes if report.rewrite is not None else ())
            if p.changed and not (p.exact if getattr(p, "exact", None) is not None
                                  else getattr(known.get(p.name), "exact", False))]


def _border_band(band: dict, lossy: list[str]) -> list[str]:
    if not band:
        return []
    why = (f"<p>Lossy rewrites ran ({escape(', '.join(lossy))}); lossy padding rewrites "
           "(reflect → zero) change the outer pixels only. This splits the error between the "
           "border band and the rest.</p>" if lossy else
           "<p>The error split between the border band and the rest of each output.</p>")
    out = ["<h3>Border band vs interior</h3>" + why,
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


_FIGURE_KEYS = ("pixel_cosine", "cosine", "max_abs", "mean_abs", "psnr")


def _figure_rows(rows: list[tuple[str, str, dict]], extra: tuple[str, ...] = ()) -> str:
    keys = _FIGURE_KEYS + extra
    head = "<tr><th>output</th><th>compared</th>" + "".join(f"<th>{k}</th>" for k in keys)
    body = "".join(f"<tr><td>{escape(name)}</td><td>{escape(label)}</td>" +
                   "".join(f"<td class=num>{_fmt(fig[k]) if k in fig else ''}</td>"
                           for k in keys) + "</tr>"
                   for name, label, fig in rows)
    return head + "</tr>" + body


def _fp16(v: ValidationReport, skipped: str | None) -> list[str]:
    """The fp16 prediction, as the console shows it (gancc.stages.predict)."""
    fp16 = v.fp16
    out = ["<h3>fp16 prediction (ATC's force_fp16)</h3>"]
    if fp16 is None:
        return out + [f"<p>not run: {escape(skipped or 'validation did not run')}</p>"]
    if not fp16.get("ran"):
        return out + [f"<p>did not run: <code>{escape(str(fp16.get('error')))}</code></p>"]
    out.append(f"<p>{escape(fp16['method'])}</p>")
    for name, f in fp16["final_vs_reference"].items():
        fp32 = v.final.get(name, {}).get("pixel_cosine", float("nan"))
        if f["non_finite"] or f["pixel_cosine"] < fp32 - 0.05:
            out.append(f'<p class="warn"><b>FP16</b>: output {escape(name)} collapses in fp16 '
                       f"(pixel_cosine {f['pixel_cosine']:.4f} vs {fp32:.4f} in fp32, "
                       f"{f['non_finite']} non-finite values)</p>")
    rows = [(n, "fp16 predicted vs reference", f) for n, f in fp16["final_vs_reference"].items()]
    rows += [(n, "fp16 vs fp32 final graph", f) for n, f in fp16["fp16_vs_fp32_final"].items()]
    conv = fp16.get("converter") or {}
    rows += [(n, "onnxconverter-common float16 vs reference", f)
             for n, f in (conv.get("final_vs_reference") or {}).items()]
    out.append(f'<table class="fp16">{_figure_rows(rows, ("non_finite",))}</table>')
    if conv.get("error"):
        out.append(f"<p>onnxconverter-common's graph: {escape(str(conv['error']))}</p>")
    return out


def _aipp(aipp: dict | None) -> list[str]:
    """uint8 images through the AIPP emulator (gancc.stages.predict.emulate_aipp)."""
    if aipp is None:
        return []
    shapes = ", ".join(f"{escape(n)} {'x'.join(map(str, s))}" for n, s in aipp["images"].items())
    rows = []
    for rule, per_rule in aipp["csc_rounding"].items():
        rows += [(n, f"uint8 → AIPP ({rule} rounding) → final vs reference", f)
                 for n, f in per_rule["final_vs_reference"].items()]
        rows += [(n, f"AIPP alone ({rule} rounding) vs float pre-processing", f)
                 for n, f in per_rule["aipp_vs_float_preprocessing"].items()]
    return ["<h3>AIPP emulation</h3>",
            f"<p>seeded uint8 images ({shapes}) through the emulated AIPP into the final graph, "
            "against exact float pre-processing into the reference</p>",
            f'<table class="aipp">{_figure_rows(rows)}</table>']


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


def page_width(width: int) -> int:
    """How wide a picture `width` pixels wide is shown: small ones scaled up (by a whole
    factor, up to 4, to about 192 px), large ones down to PAGE_WIDTH."""
    if width > PAGE_WIDTH:
        return PAGE_WIDTH
    return width * max(1, min(4, math.ceil(192 / max(width, 1))))


def encode_png(img: np.ndarray, width: int, band: int | None = None) -> bytes:
    """`img` as a PNG `width` pixels wide (nearest-neighbour up, area-averaged down); `band`
    outlines the border band (in the picture's own pixels)."""
    from PIL import Image, ImageDraw

    pic = Image.fromarray(img)
    scale = width / max(pic.width, 1)
    if pic.width != width:
        size = (width, max(1, round(pic.height * scale)))
        pic = pic.resize(size, Image.NEAREST if scale > 1 else Image.BOX)
    if band:
        if pic.mode != "RGB":
            pic = pic.convert("RGB")
        b = round(band * scale)
        ImageDraw.Draw(pic).rectangle([b, b, pic.width - 1 - b, pic.height - 1 - b],
                                      outline=(0, 220, 255))
    buffer = io.BytesIO()
    pic.save(buffer, format="PNG")
    return buffer.getvalue()


def page_png(img: np.ndarray, band: int | None = None, budget: int | None = None) -> bytes:
    """The PNG shown on the page: page_width() wide, and smaller until it fits `budget`."""
    width = page_width(img.shape[1])
    data = encode_png(img, width, band)
    while budget is not None and len(data) > budget and width > 32:
        width = max(32, int(width * math.sqrt(budget / len(data)) * 0.9))
        data = encode_png(img, width, band)
    return data


def png_data_uri(img: np.ndarray, band: int | None = None, budget: int | None = None) -> str:
    """page_png() as a data: URI."""
    data = page_png(img, band, budget)
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _figure(uri: str, caption: str, href: str | None = None) -> str:
    img = f'<img class="pic" src="{uri}" alt="{escape(caption)}">'
    if href:
        img = f'<a href="{escape(href)}">{img}</a>'
        caption_html = f'{escape(caption)} (<a href="{escape(href)}">full size</a>)'
    else:
        caption_html = escape(caption)
    return f"<figure>{img}<figcaption>{caption_html}</figcaption></figure>"


def _pictures(validation: ValidationReport | None, files: PictureFiles | None = None) -> str:
    """Every sample's pictures, within PICTURE_BUDGET together, each linked to its full size."""
    out = ['<section id="pictures"><h2>Pictures</h2>']
    pictures = validation.pictures if validation is not None else {}
    if "reference" not in pictures or "final" not in pictures:
        out.append("<p>no pictures: validation did not run</p></section>")
        return "\n".join(out)
    samples = list(_samples(pictures))
    count = sum(len(figs) for _, figs in samples)
    budget = PICTURE_BUDGET // max(count, 1)
    for title, figs in samples:
        out.append(f'<div class="sample"><h3>{escape(title)}</h3>')
        for stem, img, band, caption in figs:
            href = files.add(f"{title}-{stem}", img, band) if files is not None else None
            out.append(_figure(png_data_uri(img, band, budget), caption, href))
        out.append("</div>")
    if not samples:
        out.append("<p>no image-shaped (N, C, H, W) outputs to picture</p>")
    out.append("</section>")
    return "\n".join(out)


def _samples(pictures: dict):
    """(title, [(file stem, uint8 picture, border band or None, caption)]) per output and
    sample: the reference, the compiled output, the unmodified export, the error heatmap."""
    from gancc.metrics import BORDER_BAND

    for name, ref in pictures["reference"].items():
        final = pictures["final"].get(name)
        if final is None or np.asarray(ref).ndim != 4:
            continue
        ref, final = np.asarray(ref), np.asarray(final)
        exported = pictures.get("exported", {}).get(name)
        band = BORDER_BAND if min(ref.shape[2:]) > 2 * BORDER_BAND else None
        for k in range(min(len(ref), len(final))):
            # per element, as the figures table's max_abs: the largest error over channels
            err = np.abs(ref[k].astype(np.float64) - final[k]).max(axis=0)
            vmax = float(err.max())
            caption = (f"error |reference - compiled|, the largest over channels per pixel: "
                       f"max {vmax:.3g} (this sample's max_abs)")
            if band:
                caption += f"; the {band}px border band outlined"
            figs = [("reference", to_image_array(ref[k]), None, "reference"),
                    ("compiled", to_image_array(final[k]), None, "compiled (final graph)")]
            if exported is not None and k < len(exported):
                figs.append(("exported", to_image_array(np.asarray(exported)[k]), None,
                             "unmodified export"))
            figs.append(("error", heatmap(err, vmax), band, caption))
            yield f"{name}, sample {k}", figs
