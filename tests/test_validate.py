"""`gancc validate`'s pieces without Ray: SSIM, the samples of each recipe, one worker's
figures (cross-checked against the reference and onnxruntime run here), the set summary
and its `require` lines, the content-addressed store. The Ray runs are in
tests/test_validate_ray.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gancc.cli import main
from tests.test_recipe_data import AIPP_BLOCK, CYCLE_SPEC, _smooth_images


def run_cli(*args) -> int:
    return main([str(a) for a in args])


# ---------------------------------------------------------------------------- SSIM
def _ssim_direct(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    """Wang et al.'s SSIM written the slow way: an 11x11 Gaussian (sigma 1.5) window at
    every valid position of one (H, W) channel."""
    r = np.arange(11) - 5
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5 ** 2))
    g /= g.sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            a, b = x[i:i + 11, j:j + 11], y[i:i + 11, j:j + 11]
            ma, mb = (g * a).sum(), (g * b).sum()
            va, vb = (g * a * a).sum() - ma ** 2, (g * b * b).sum() - mb ** 2
            cov = (g * a * b).sum() - ma * mb
            values.append((2 * ma * mb + c1) * (2 * cov + c2) /
                          ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2)))
    return float(np.mean(values))


def test_ssim_is_the_standard_gaussian_window_ssim():
    from gancc.metrics import ssim

    rng = np.random.default_rng(0)
    ref = np.tanh(rng.standard_normal((2, 3, 16, 18)))
    act = ref + 0.2 * rng.standard_normal(ref.shape)
    lo_hi = float(ref.max() - ref.min())
    direct = np.mean([_ssim_direct(ref[n, c], act[n, c], lo_hi)
                      for n in range(2) for c in range(3)])
    assert ssim(ref, act) == pytest.approx(direct, rel=1e-9)
    assert ssim(ref, ref) == pytest.approx(1.0)
    assert ssim(ref, act) < 0.95
    # NHWC: the same images, channels last
    assert ssim(ref.transpose(0, 2, 3, 1), act.transpose(0, 2, 3, 1), -1) == \
        pytest.approx(direct, rel=1e-9)
    assert ssim(ref[:, :, :8, :8], act[:, :, :8, :8]) is None      # smaller than the window
    assert ssim(ref[0, 0], act[0, 0]) is None                       # not a batch of images


# ---------------------------------------------------------------------------- summary
def _row(sample_id: str, cos: float, max_abs: float) -> dict:
    return {"id": sample_id, "source": None,
            "outputs": {"out": {"final": {"pixel_cosine": cos, "max_abs": max_abs}}}}


def test_summary_mean_worst_and_require_lines():
    from gancc.data_io import parse_require
    from gancc.validation.summary import apply_checks, summarise, worst_samples

    rows = [_row("a", 0.999, 0.01), _row("b", 0.95, 0.30), _row("c", 0.998, 0.02)]
    stats = summarise(rows)
    cos = stats["out.final.pixel_cosine"]
    assert cos["mean"] == pytest.approx((0.999 + 0.95 + 0.998) / 3)
    assert (cos["worst"], cos["worst_id"]) == (0.95, "b")            # lowest similarity
    assert (stats["out.final.max_abs"]["worst"], stats["out.final.max_abs"]["worst_id"]) == \
        (0.30, "b")                                                   # highest error
    checks = [parse_require("pixel_cosine >= 0.97")]
    results, failures = apply_checks(stats, ["out"], checks)
    assert failures == [] and results[0]["passed_mean"] and not results[0]["passed_worst"]
    assert results[0]["worst_id"] == "b"
    _, strict = apply_checks(stats, ["out"], checks, strict=True)
    assert strict and "sample b" in strict[0]
    _, failed = apply_checks(stats, ["out"], [parse_require("max_abs <= 0.1")])
    assert failed and "mean max_abs" in failed[0]
    assert [r["id"] for r in worst_samples(rows, "out.final.pixel_cosine", 2)] == ["b", "c"]


# ---------------------------------------------------------------------------- one worker
@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The small CycleGAN-like model, plain and with the recipe's AIPP, built with gancc."""
    folder = tmp_path_factory.mktemp("validate")
    plain = folder / "small.gan"
    plain.write_text(CYCLE_SPEC)
    aipp = folder / "aipp.gan"
    aipp.write_text(CYCLE_SPEC.replace("model small", "model small_aipp")
                    .replace("    atc {", AIPP_BLOCK + "    atc {"))
    for spec in (plain, aipp):
        assert run_cli("build", spec, "--no-atc", "--no-validate", "-o", folder / "build") == 0
    _smooth_images(folder / "testA", [(128, 128), (150, 150), (128, 128)])
    return folder


def _reference_and_final(spec: Path, name: str, onnx: Path, feeds: dict) -> tuple:
    import onnxruntime as ort

    from gancc.spec import parse_file
    from gancc.stages.runtime import run_torch
    from gancc.stages.source import load_pytorch

    model = parse_file(spec).model(name)
    module = load_pytorch(model, None).module
    ref = run_torch(module, model, feeds)["out"]
    act = ort.InferenceSession(str(onnx)).run(["out"], feeds)[0]
    return ref, act


def test_a_worker_figures_each_image_against_the_reference(built):
    from gancc.data_io import preprocess_cyclegan
    from gancc.metrics import metrics, ssim
    from gancc.spec import parse_file
    from gancc.validation.evaluator import SampleEvaluator
    from gancc.validation.samples import list_samples

    spec, onnx = built / "small.gan", built / "build" / "small" / "small.onnx"
    model = parse_file(spec).model("small")
    samples = list_samples(model, built / "testA", None)
    assert [s.id for s in samples] == ["1_A", "2_A", "3_A"] and samples[0].kind == "image"
    worker = SampleEvaluator(str(spec), "small", str(onnx), threads=1)
    row = worker.evaluate(samples[1])
    x = preprocess_cyclegan(Path(samples[1].source), 64, 64)[None]
    ref, act = _reference_and_final(spec, "small", onnx, {"img": x})
    final = row["outputs"]["out"]["final"]
    expected = metrics(ref, act)
    for key in ("pixel_cosine", "cosine", "max_abs", "mean_abs", "psnr"):
        assert final[key] == pytest.approx(expected[key], rel=1e-6)
    assert final["ssim"] == pytest.approx(ssim(ref, act), rel=1e-6)
    assert set(row["outputs"]["out"]) == {"final", "border", "fp16"}   # no AIPP here
    assert row["outputs"]["out"]["fp16"]["non_finite"] == 0
    # a row is JSON as it is stored
    assert json.loads(json.dumps(row))["id"] == "2_A"


def test_a_prep_folder_gives_the_same_figures_as_its_images(built, tmp_path):
    from gancc.spec import parse_file
    from gancc.validation.evaluator import SampleEvaluator
    from gancc.validation.samples import list_samples

    spec, onnx = built / "small.gan", built / "build" / "small" / "small.onnx"
    assert run_cli("prep", spec, "--input", built / "testA", "--out", tmp_path / "bins") == 0
    model = parse_file(spec).model("small")
    bins = list_samples(model, tmp_path / "bins", None)
    images = list_samples(model, built / "testA", None)
    assert [s.kind for s in bins] == ["bins"] * 3 and [s.id for s in bins] == ["1_A", "2_A", "3_A"]
    worker = SampleEvaluator(str(spec), "small", str(onnx), threads=1, fp16=False)
    a, b = worker.evaluate(bins[0]), worker.evaluate(images[0])
    assert a["outputs"] == b["outputs"]


def test_an_aipp_model_also_runs_the_emulated_aipp_path(built):
    from gancc.aipp.emulate import emulate, float_preprocess
    from gancc.data_io import aipp_blocks, aipp_image
    from gancc.metrics import metrics
    from gancc.spec import parse_file
    from gancc.validation.evaluator import SampleEvaluator
    from gancc.validation.samples import list_samples

    spec = built / "aipp.gan"
    onnx = built / "build" / "small_aipp" / "small_aipp.onnx"
    model = parse_file(spec).model("small_aipp")
    sample = list_samples(model, built / "testA", None)[0]
    row = SampleEvaluator(str(spec), "small_aipp", str(onnx), fp16=False).evaluate(sample)
    block = aipp_blocks(model)["img"]
    nv = aipp_image(Path(sample.source), block)[None]
    ref, _ = _reference_and_final(spec, "small_aipp", onnx,
                                  {"img": float_preprocess(block.fields, nv).astype(np.float32)})
    _, act = _reference_and_final(spec, "small_aipp", onnx,
                                  {"img": emulate(block.fields, nv).astype(np.float32)})
    aipp = row["outputs"]["out"]["aipp"]
    assert aipp["pixel_cosine"] == pytest.approx(metrics(ref, act)["pixel_cosine"], rel=1e-6)
    assert 0.9 < aipp["pixel_cosine"] < 1.0                  # AIPP's integer CSC costs a little
    # --count: seeded uint8 images in the AIPP format go the same way
    seeded = list_samples(model, None, 1)[0]
    assert "aipp" in SampleEvaluator(str(spec), "small_aipp", str(onnx), fp16=False) \
        .evaluate(seeded)["outputs"]["out"]


def test_stargan_and_pix2pixhd_samples_are_the_recipes_inputs(tmp_path):
    from gancc.data_io import onehot_with_edges, preprocess_stargan, stargan_targets
    from gancc.spec import parse_file
    from gancc.validation.samples import list_samples, load_sample

    spec = tmp_path / "two.gan"
    spec.write_text("""model star {
    source pytorch { arch stargan_generator(conv_dim=8, c_dim=5, repeat_num=1) }
    input real_img: float32[N, 3, 32, 32] batch 1
    input attr: float32[N, 5] batch 1
    output fake_img
    atc { soc_version Ascend310P3 }
}
model hd {
    source pytorch { arch pix2pixhd_global_generator(input_nc=4, output_nc=3, ngf=4) }
    input label: float32[N, 4, 32, 64] batch 1
    output fake
    atc { soc_version Ascend310P3 }
}
""")
    parsed = parse_file(spec)
    faces = tmp_path / "faces"
    faces.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (218, 178, 3), np.uint8)) \
        .save(faces / "000001.jpg")
    (faces / "list_attr_celeba.txt").write_text(
        "1\nBlack_Hair Blond_Hair Brown_Hair Male Young Smiling\n"
        "000001.jpg 1 -1 -1 1 -1 1\n")
    [star] = list_samples(parsed.model("star"), faces, None)
    feeds = load_sample(parsed.model("star"), star, {}).feeds
    x = preprocess_stargan(faces / "000001.jpg", 32)
    assert feeds["real_img"].shape == (5, 3, 32, 32) and np.array_equal(feeds["real_img"][3], x)
    targets = stargan_targets(np.array([[1, 0, 0, 1, 0]], np.float32))
    assert np.array_equal(feeds["attr"], np.concatenate(targets))

    city = tmp_path / "city"
    city.mkdir()
    labels = np.random.default_rng(1).integers(0, 3, (32, 64), np.uint8)
    inst = np.random.default_rng(2).integers(0, 4, (32, 64), np.uint8)
    Image.fromarray(labels).save(city / "a_gtFine_labelIds.png")
    Image.fromarray(inst).save(city / "a_gtFine_instanceIds.png")
    [hd] = list_samples(parsed.model("hd"), city, None)
    assert hd.kind == "label" and hd.extra.endswith("a_gtFine_instanceIds.png")
    got = load_sample(parsed.model("hd"), hd, {}).feeds["label"]
    want = onehot_with_edges(city / "a_gtFine_labelIds.png", city / "a_gtFine_instanceIds.png",
                             3, 32, 64)
    assert np.array_equal(got[0], want)


def test_the_store_keys_on_graph_sample_and_metric_set(tmp_path):
    from gancc.validation.samples import Sample
    from gancc.validation.store import ResultStore

    sample = Sample("seed3", "seeded", index=3, fingerprint="seed=3")
    store = ResultStore(tmp_path, "graph-a", "metrics-1")
    assert store.get(sample) is None
    store.put(sample, {"id": "seed3", "outputs": {}})
    assert store.get(sample) == {"id": "seed3", "outputs": {}}
    assert ResultStore(tmp_path, "graph-b", "metrics-1").get(sample) is None
    assert ResultStore(tmp_path, "graph-a", "metrics-2").get(sample) is None
    other = Sample("seed3", "seeded", index=3, fingerprint="seed=4")
    assert store.get(other) is None
    assert not list(tmp_path.rglob("*.tmp"))


def test_validate_says_to_build_first_and_latents_need_count(tmp_path, capsys):
    spec = tmp_path / "small.gan"
    spec.write_text(CYCLE_SPEC)
    assert run_cli("validate", spec, "--count", "2", "--build-dir", tmp_path / "none") == 1
    err = capsys.readouterr().err
    assert "final graph not found" in err and "gancc build" in err
    gan = tmp_path / "gan.gan"
    gan.write_text("""model gan {
    source pytorch { arch mnist_mlp_generator(latent_dim=100, img_size=28, channels=1) }
    input Z: float32[N, 100] batch 1
    output generateimg
    atc { soc_version Ascend310P3 }
}
""")
    (tmp_path / "build" / "gan").mkdir(parents=True)
    (tmp_path / "build" / "gan" / "gan.onnx").write_bytes(b"")
    (tmp_path / "data").mkdir()
    assert run_cli("validate", gan, "--data", tmp_path / "data",
                   "--build-dir", tmp_path / "build") == 1
    assert "use --count N" in capsys.readouterr().err


def test_compare_reports_validate_rows_and_page(tmp_path, capsys):
    """`gancc compare --json/--html`: one row per prepared file in validate's shape, the same
    per-figure statistics, and validate's page."""
    from tests.test_recipe_data import REPO, device_outputs, gan_onnx

    onnx_path = gan_onnx(tmp_path / "gan.onnx")
    spec = REPO / "specs" / "gan.gan"
    assert run_cli("prep", spec, "--out", tmp_path / "bins", "--count", "3", "--batch", "4") == 0
    device_outputs(onnx_path, tmp_path / "bins", tmp_path / "scaled",
                   transform=lambda y: y * np.array([1.0, 1.0, 0.05, 1.0])[:, None, None, None])
    assert run_cli("compare", spec, "--inputs", tmp_path / "bins", "--onnx", onnx_path,
                   "--bins", tmp_path / "scaled", "--json", tmp_path / "c.json",
                   "--html", tmp_path / "c.html") == 1
    capsys.readouterr()
    result = json.loads((tmp_path / "c.json").read_text())
    rows = result["outputs"]["generateimg"]["rows"]
    assert [r["id"] for r in result["samples"]] == [r["file"] for r in rows] == \
        ["z_00000", "z_00001", "z_00002"]
    max_abs = result["figures"]["generateimg.device.max_abs"]
    assert max_abs["max"] == max(r["max_abs"] for r in rows) and max_abs["max"] > 0.5
    assert max_abs["mean"] == pytest.approx(np.mean([r["max_abs"] for r in rows]))
    page = (tmp_path / "c.html").read_text()
    assert "<svg class='hist'" in page and "FAILED" in page and "generateimg.device.max_abs" in page
