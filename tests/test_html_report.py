"""report.html: structure (sections, pass rows, decodable PNGs, no network), the border-band
figures behind it, and, where chromium is installed, that it renders."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gancc.cli import main
from gancc.stages.html_report import heatmap, png_data_uri, to_image_array
from tests.conftest import SMALL_SPEC, write_spec


class _Page(HTMLParser):
    """Collects tags with attributes, the ids of sections, and table rows by table class."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.rows: dict[str, list[list[str]]] = {}
        self._table: list[str | None] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "table":
            self._table.append(attrs.get("class"))
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "table" and self._table:
            self._table.pop()
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._table and self._table[-1]:
                self.rows.setdefault(self._table[-1], []).append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("htmlreport")
    # with the converter's second opinion, so the page's fp16 table has all its rows
    spec = write_spec(folder, text=SMALL_SPEC.replace("seed 0\n", "seed 0\n        fp16_converter true\n")
                      % {"fallback": " else random(seed=0)", "threshold": 0.5})
    assert main(["build", str(spec), "-o", str(folder / "out"), "--no-atc", "--no-cache",
                 "-q"]) == 0
    return folder / "out" / "small"


def test_report_structure(built: Path):
    text = (built / "report.html").read_text()
    page = _Page()
    page.feed(text)
    ids = [a["id"] for t, a in page.tags if t == "section"]
    assert ids == ["summary", "pipeline", "passes", "atc", "validation", "pictures", "more"]
    assert "<summary>simplify</summary>" in text              # report.json's other keys, folded
    tags = [t for t, _ in page.tags]
    assert "script" not in tags and "link" not in tags
    assert not any(v.startswith(("http:", "https:", "//")) for _, a in page.tags
                   for k, v in a.items() if k in ("src", "href") and v)
    passes = page.rows["passes"]
    assert passes[0][0] == "pass"
    assert [(r[0], r[1], r[2], r[3]) for r in passes[1:]] == [
        ("reflect-pad-to-constant", "yes", "6", "0"), ("fuse-pad-into-conv", "yes", "6", "6")]
    # each rewrite's diff is shown, with its side-by-side picture
    assert tags.count("svg") == 3          # simplify, reflect-pad-to-constant, fuse-pad-into-conv
    assert "mode: &quot;reflect&quot; -&gt; &quot;constant&quot;" in text
    assert "RANDOM WEIGHTS" in text and "atc --framework=5 --model=small.onnx" in text
    figures = page.rows["figures"]
    assert [r[:2] for r in figures[1:]] == [["out", "compiled vs reference"],
                                            ["out", "unmodified export vs reference"]]
    band = page.rows["border-band"]
    assert len(band) == 3 and band[1][2] == "8"


def test_report_pictures_are_pngs(built: Path):
    page = _Page()
    page.feed((built / "report.html").read_text())
    images = [a for t, a in page.tags if t == "img"]
    # 2 samples x (reference, compiled, unmodified export, error heatmap)
    assert [a["alt"].split(",")[0] for a in images] == [
        "reference", "compiled (final graph)", "unmodified export", "error |reference - compiled|"] * 2
    for a in images:
        assert a["src"].startswith("data:image/png;base64,")
        pic = Image.open(io.BytesIO(base64.b64decode(a["src"].split(",", 1)[1])))
        assert pic.format == "PNG" and pic.size == (192, 192)      # 64x64 scaled by 3
        colours = np.unique(np.asarray(pic.convert("RGB")).reshape(-1, 3), axis=0)
        assert len(colours) > 16                                   # a picture, not a flat fill
    # each links to its full-size PNG beside the report
    links = [a["href"] for t, a in page.tags if t == "a" and a.get("href", "").endswith(".png")]
    assert len(links) == 2 * len(images)                  # the picture and its caption's link
    for href in links:
        assert href.startswith("report_files/")
        assert Image.open(built / href).size == (64, 64)


def test_report_shows_the_fp16_prediction_and_captions_say_which_max(built: Path):
    text = (built / "report.html").read_text()
    page = _Page()
    page.feed(text)
    report = json.loads((built / "report.json").read_text())
    fp16 = page.rows["fp16"]
    assert [r[1] for r in fp16[1:]] == ["fp16 predicted vs reference", "fp16 vs fp32 final graph",
                                        "onnxconverter-common float16 vs reference"]
    predicted = report["validation"]["fp16"]["final_vs_reference"]["out"]["pixel_cosine"]
    assert fp16[1][2] == f"{predicted:.6g}"
    # the heatmap captions give per-element maxima: the largest is the table's max_abs
    maxima = [float(a["alt"].split("max ")[1].split(" ")[0]) for t, a in page.tags
              if t == "img" and a["alt"].startswith("error")]
    table_max = report["validation"]["final_vs_reference"]["out"]["max_abs"]
    assert max(maxima) == pytest.approx(table_max, rel=2e-3)
    assert "the largest over channels per pixel" in text
    assert "Lossy rewrites ran (reflect-pad-to-constant)" in text


def _synthetic_report(height: int, width: int, samples: int = 2):
    from gancc.stages.report import BuildReport, RewriteSection
    from gancc.stages.validate import ValidationReport

    rng = np.random.default_rng(0)
    ref = rng.uniform(-1, 1, (samples, 3, height, width)).astype(np.float32)   # noise: the
    final = ref + rng.normal(0, 0.05, ref.shape).astype(np.float32)           # worst for PNG
    v = ValidationReport("pytorch", samples, 0, final={"out": {"pixel_cosine": 0.99}})
    v.pictures = {"reference": {"out": ref}, "final": {"out": final},
                  "exported": {"out": ref.copy()}}
    report = BuildReport("big", "big.gan", {}, status="ok", validation=v)
    report.rewrite = RewriteSection("", ())
    return report


def test_a_report_of_a_2048px_output_stays_small_with_full_size_pictures_beside(tmp_path):
    from gancc.stages.html_report import PAGE_WIDTH, write_html

    path = tmp_path / "report.html"
    write_html(_synthetic_report(1024, 2048), path)
    assert path.stat().st_size < 3_000_000
    page = _Page()
    page.feed(path.read_text())
    images = [a for t, a in page.tags if t == "img"]
    assert len(images) == 8
    for a in images:
        pic = Image.open(io.BytesIO(base64.b64decode(a["src"].split(",", 1)[1])))
        assert pic.width <= PAGE_WIDTH and pic.height <= PAGE_WIDTH
    full = sorted((tmp_path / "report_files").iterdir())
    assert len(full) == 8 and all(Image.open(f).size == (2048, 1024) for f in full)


def test_without_rewrites_there_is_no_empty_table_and_no_lossy_padding_sentence(tmp_path):
    from gancc.stages.html_report import render
    from gancc.stages.validate import ValidationReport

    report = _synthetic_report(32, 32)
    report.validation = ValidationReport("pytorch", 1, 0, final={"out": {"pixel_cosine": 1.0}},
                                         regions={"final_vs_reference": {"out": {
                                             "band": 8, "border": {"mean_abs": 0.0,
                                                                   "pixel_cosine": 1.0},
                                             "interior": {"mean_abs": 0.0,
                                                          "pixel_cosine": 1.0}}}})
    text = render(report, [])
    assert 'class="passes"' not in text and "no rewrites" in text
    assert "Border band vs interior" in text and "ossy" not in text


def test_image_size_change_is_a_warning():
    from gancc.stages.validate import size_warnings
    from gancc.spec import parse_text

    model = parse_text(SMALL_SPEC % {"fallback": "", "threshold": 0.5}, "s.gan").models[0]
    feeds = {"img": np.zeros((1, 3, 250, 250), np.float32)}
    (warning,) = size_warnings(model, feeds, {"out": np.zeros((1, 3, 252, 252))})
    assert "252x252 for the 250x250 input 'img'" in warning and "changes the image size" in warning
    for same in ((1, 3, 250, 250), (1, 3, 1000, 1000), (1, 3, 125, 125), (1, 10)):
        assert size_warnings(model, feeds, {"out": np.zeros(same)}) == []


def test_border_band_figures_in_report_json(built: Path):
    val = json.loads((built / "report.json").read_text())["validation"]
    final = val["border_band"]["final_vs_reference"]["out"]
    exported = val["border_band"]["exported_vs_reference"]["out"]
    assert final["band"] == 8
    # reflect -> zero padding puts the error at the border: it is the lossy rewrite's mark
    assert final["border"]["mean_abs"] > 2 * final["interior"]["mean_abs"]
    assert final["border"]["pixel_cosine"] < final["interior"]["pixel_cosine"]
    assert exported["border"]["max_abs"] < 1e-4 and exported["interior"]["max_abs"] < 1e-4


def test_image_mapping_and_heatmap_band():
    tanh = np.stack([np.full((4, 4), -1.0), np.zeros((4, 4)), np.full((4, 4), 1.0)])
    img = to_image_array(tanh)
    assert img.shape == (4, 4, 3) and tuple(img[0, 0]) == (0, 128, 255)     # (x + 1) / 2
    unit = to_image_array(np.full((1, 4, 4), 0.5))
    assert unit.shape == (4, 4) and unit[0, 0] == 128                        # [0, 1] as is
    err = np.zeros((64, 64))
    err[0, 0] = 1.0
    hot = heatmap(err, 1.0)
    assert tuple(hot[0, 0]) == (252, 255, 164) and tuple(hot[5, 5]) == (0, 0, 4)
    pic = Image.open(io.BytesIO(base64.b64decode(png_data_uri(hot, band=8).split(",", 1)[1])))
    assert pic.size == (192, 192) and pic.getpixel((24, 100)) == (0, 220, 255)   # the outline


def test_failed_build_still_writes_report(tmp_path: Path):
    spec = write_spec(tmp_path, threshold=0.99999)
    assert main(["build", str(spec), "-o", str(tmp_path / "out"), "--no-atc", "--no-cache",
                 "-q"]) == 1
    (failed,) = (tmp_path / "out").rglob("report.html")     # where failures are kept
    text = failed.read_text()
    assert "build failed" in text and "failed validation" in text
    assert text.count("data:image/png;base64,") == 8          # the pictures show why


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_report_renders_in_chromium(built: Path, tmp_path: Path):
    shot = tmp_path / "shot.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--window-size=1200,6000", f"--screenshot={shot}",
                    (built / "report.html").as_uri()], check=True, capture_output=True,
                   timeout=120)
    pic = np.asarray(Image.open(shot).convert("RGB"))
    # rendered: text rows, the bars, and the heatmap's dark pixels are all there
    assert (pic.min(axis=2) < 60).any(axis=1).sum() > 500


def test_a_size_changing_generator_warns_in_console_and_report(tmp_path: Path, capsys):
    spec = write_spec(tmp_path, text=SMALL_SPEC.replace("64, 64]", "250, 250]").replace(
        "n_blocks=2", "n_blocks=1") % {"fallback": " else random(seed=0)", "threshold": 0.0})
    assert main(["build", str(spec), "-o", str(tmp_path / "out"), "--no-atc",
                 "--no-fp16-foresight"]) == 0
    err = capsys.readouterr().err
    assert "IMAGE SIZE" in err and "252x252 for the 250x250 input 'img'" in err
    report = json.loads((tmp_path / "out" / "small" / "report.json").read_text())
    assert "252x252" in report["validation"]["warnings"][0]
    assert "252x252 for the 250x250 input" in (tmp_path / "out" / "small" /
                                               "report.html").read_text()


def test_a_successful_build_removes_the_stale_failure(tmp_path: Path):
    spec = write_spec(tmp_path, threshold=0.99999)
    out = tmp_path / "out"
    assert main(["build", str(spec), "-o", str(out), "--no-atc", "-q"]) == 1
    (failed,) = out.rglob("report.json")
    assert failed.parent != out / "small"
    legacy = out / "small.failed"                     # where gancc kept failures before
    shutil.copytree(failed.parent, legacy)
    write_spec(tmp_path, threshold=0.5)
    assert main(["build", str(spec), "-o", str(out), "--no-atc", "-q"]) == 0
    assert not failed.parent.exists() and not legacy.exists()
    assert [p.parent for p in out.rglob("report.json")] == [out / "small"]


def test_a_model_named_like_a_failure_folder_is_kept(tmp_path: Path):
    from gancc.build.outputs import remove_stale_failure

    real = tmp_path / "g.failed"           # the output folder of a model named `g.failed`
    real.mkdir()
    (real / "report.json").write_text(json.dumps({"model": "g.failed", "status": "ok"}))
    assert remove_stale_failure(tmp_path, "g") == [] and real.is_dir()
