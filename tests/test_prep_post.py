"""gancc prep / post / compare: the recipes' bin files in, images out, and the metric."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from gancc.cli import main
from gancc.data_io import onehot_with_edges, stargan_targets

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args) -> int:
    return main([str(a) for a in args])


def _images(folder: Path, sizes: list[tuple[int, int]], seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i, (w, h) in enumerate(sizes):
        path = folder / f"{i + 1}_A.jpg" if i % 2 else folder / f"{i + 1}_A.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


CYCLE_SPEC = """model small {
    source pytorch {
        arch resnet_generator(ngf=4, n_blocks=1)
        weights "none.pth" else random(seed=0)
    }
    input img: float32[N, 3, 64, 64] batch 1, 2
    output out
    atc { soc_version Ascend310P3 }
}
"""


def _cycle_spec(tmp_path: Path) -> Path:
    path = tmp_path / "small.gan"
    path.write_text(CYCLE_SPEC)
    return path


def test_cyclegan_prep_resizes_normalises_and_writes_raw_bins(tmp_path):
    src = _images(tmp_path / "testA", [(80, 80), (64, 96), (80, 80)])
    spec = _cycle_spec(tmp_path)
    assert run_cli("prep", spec, "--input", tmp_path / "testA", "--out", tmp_path / "bins") == 0
    files = sorted((tmp_path / "bins" / "img").iterdir())
    assert [f.name for f in files] == ["1_A.bin", "2_A.bin", "3_A.bin"]
    assert all(f.stat().st_size == 3 * 64 * 64 * 4 for f in files)     # no header, float32
    data = np.fromfile(files[0], dtype="<f4").reshape(1, 3, 64, 64)
    expected = np.asarray(Image.open(src[0]).convert("RGB").resize((64, 64), Image.BILINEAR),
                          dtype=np.float32).transpose(2, 0, 1) / 255.0 * 2 - 1
    np.testing.assert_allclose(data[0], expected, atol=1e-6)
    assert -1 <= data.min() and data.max() <= 1
    # 64x96: the shorter side goes to 64, then the centre 64x64 (resize, then crop)
    tall = np.fromfile(files[1], dtype="<f4").reshape(3, 64, 64)
    ref = np.asarray(Image.open(src[1]).convert("RGB"), np.float32)[16:80].transpose(2, 0, 1) / 127.5 - 1
    np.testing.assert_allclose(tall, ref, atol=1e-6)
    manifest = json.loads((tmp_path / "bins" / "manifest.json").read_text())
    assert manifest["recipe"] == "cyclegan" and manifest["batch"] == 1
    assert [f["samples"] for f in manifest["files"]] == [["1_A"], ["2_A"], ["3_A"]]


def test_batch_files_pad_the_last_batch_and_batch_must_be_compiled(tmp_path, capsys):
    _images(tmp_path / "testA", [(64, 64)] * 3)
    spec = _cycle_spec(tmp_path)
    assert run_cli("prep", spec, "--input", tmp_path / "testA", "--out", tmp_path / "b2",
                   "--batch", "2") == 0
    manifest = json.loads((tmp_path / "b2" / "manifest.json").read_text())
    assert [(f["name"], f["samples"], f["padded"]) for f in manifest["files"]] == \
        [("1_A-2_A", ["1_A", "2_A"], 0), ("3_A", ["3_A"], 1)]
    assert (tmp_path / "b2" / "img" / "3_A.bin").stat().st_size == 2 * 3 * 64 * 64 * 4
    assert run_cli("prep", spec, "--input", tmp_path / "testA", "--out", tmp_path / "b3",
                   "--batch", "3") == 1
    assert "compiled for batch sizes 1, 2, not 3" in capsys.readouterr().err


def test_stargan_targets_follow_create_labels():
    c_org = np.array([[1, 0, 0, 1, 0], [0, 0, 1, 0, 1]], np.float32)
    targets = stargan_targets(c_org)
    assert len(targets) == 5
    np.testing.assert_array_equal(targets[1], [[0, 1, 0, 1, 0], [0, 1, 0, 0, 1]])  # blond only
    np.testing.assert_array_equal(targets[3], [[1, 0, 0, 0, 0], [0, 0, 1, 1, 1]])  # male flipped
    np.testing.assert_array_equal(targets[4], [[1, 0, 0, 1, 1], [0, 0, 1, 0, 0]])  # young flipped


def test_stargan_prep_crops_and_writes_five_targets(tmp_path):
    src = _images(tmp_path / "celeba", [(178, 218), (178, 218)])
    attrs = tmp_path / "list_attr_celeba.txt"
    attrs.write_text("2\nBald Black_Hair Blond_Hair Brown_Hair Male Young\n"
                     "1_A.png -1 1 -1 -1 1 -1\n2_A.jpg 1 -1 -1 1 -1 1\n")
    out = tmp_path / "bins"
    assert run_cli("prep", REPO / "specs" / "stargan.gan", "--input", tmp_path / "celeba",
                   "--out", out, "--attrs", attrs) == 0
    names = sorted(p.name for p in (out / "real_img").iterdir())
    assert names == sorted(f"{s}_t{k}.bin" for s in ("1_A", "2_A") for k in range(5))
    assert names == sorted(p.name for p in (out / "attr").iterdir())
    img = np.fromfile(out / "real_img" / "1_A_t0.bin", "<f4").reshape(3, 128, 128)
    crop = Image.open(src[0]).convert("RGB").crop((0, 20, 178, 198)).resize((128, 128), Image.BILINEAR)
    np.testing.assert_allclose(img, np.asarray(crop, np.float32).transpose(2, 0, 1) / 127.5 - 1,
                               atol=1e-5)
    assert np.array_equal(img, np.fromfile(out / "real_img" / "1_A_t3.bin", "<f4").reshape(3, 128, 128))
    attr = {k: np.fromfile(out / "attr" / f"1_A_t{k}.bin", "<f4") for k in range(5)}
    assert attr[2].tolist() == [0, 0, 1, 1, 0] and attr[3].tolist() == [1, 0, 0, 0, 0]
    assert np.fromfile(out / "attr" / "2_A_t4.bin", "<f4").tolist() == [0, 0, 1, 0, 0]


def test_pix2pixhd_onehot_and_instance_edges(tmp_path):
    labels = np.array([[0, 0, 3, 3], [0, 7, 7, 3], [34, 34, 0, 0]], np.uint8)
    inst = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [5, 5, 5, 5]], np.uint16) * 1000   # 16-bit PNG
    Image.fromarray(labels).save(tmp_path / "a_gtFine_labelIds.png")
    Image.fromarray(inst).save(tmp_path / "a_gtFine_instanceIds.png")
    x = onehot_with_edges(tmp_path / "a_gtFine_labelIds.png", tmp_path / "a_gtFine_instanceIds.png",
                          35, 3, 4)
    assert x.shape == (36, 3, 4) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:35].argmax(0), labels)
    assert x[:35].sum(0).tolist() == [[1] * 4] * 3           # exactly one class per pixel
    edges = np.array([[0, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1]], np.float32)
    np.testing.assert_array_equal(x[35], edges)
    # through the CLI, with a spec of that input size
    spec = tmp_path / "p.gan"
    spec.write_text((REPO / "specs" / "pix2pixhd.gan").read_text().replace(
        "[N, 36, 1024, 2048]", "[N, 36, 3, 4]"))
    assert run_cli("prep", spec, "--input", tmp_path, "--out", tmp_path / "bins") == 0
    data = np.fromfile(tmp_path / "bins" / "input_concat" / "a_gtFine_labelIds.bin", "<f4")
    np.testing.assert_array_equal(data.reshape(36, 3, 4), x)


def test_latent_recipes_are_seeded(tmp_path):
    for seed_dir, seed in (("a", 3), ("b", 3), ("c", 4)):
        assert run_cli("prep", REPO / "specs" / "gan.gan", "--out", tmp_path / seed_dir,
                       "--count", "2", "--batch", "16", "--seed", seed) == 0
    a = np.fromfile(tmp_path / "a" / "Z" / "z_00000.bin", "<f4")
    assert a.size == 16 * 100
    assert np.array_equal(a, np.fromfile(tmp_path / "b" / "Z" / "z_00000.bin", "<f4"))
    assert not np.array_equal(a, np.fromfile(tmp_path / "c" / "Z" / "z_00000.bin", "<f4"))
    assert not np.array_equal(a, np.fromfile(tmp_path / "a" / "Z" / "z_00001.bin", "<f4"))
    assert abs(a.mean()) < 0.1 and 0.9 < a.std() < 1.1 and a.min() < -2
    spec = tmp_path / "bigbigan.gan"
    spec.write_text((REPO / "specs" / "bigbigan.gan").read_text())
    assert run_cli("prep", spec, "--out", tmp_path / "bb", "--seed", "1") == 0
    x1 = np.fromfile(tmp_path / "bb" / "x1" / "z_00000.bin", "<f4")
    x2 = np.fromfile(tmp_path / "bb" / "x2" / "z_00000.bin", "<i4")
    assert x1.size == 256 * 100 and 0 <= x1.min() and x1.max() < 1 and x1.mean() == pytest.approx(0.5, abs=0.02)
    assert x2.size == 256 and set(x2.tolist()) == set(range(10))


def _run_onnx_as_device(onnx_path: Path, prep_dir: Path, out: Path, naming: str, dtype=np.float32):
    """What ais_bench / msame would write, computed with onnxruntime."""
    session = ort.InferenceSession(str(onnx_path))
    manifest = json.loads((prep_dir / "manifest.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    for f in manifest["files"]:
        feeds = {n: np.fromfile(prep_dir / n / f"{f['name']}.bin", "<f4").reshape(manifest["shapes"][n])
                 for n in manifest["inputs"]}
        y = session.run(None, feeds)[0].astype(dtype)
        y.tofile(out / naming.format(stem=f["name"]))


def test_post_and_compare_round_trip(tmp_path, capsys):
    _images(tmp_path / "testA", [(64, 64)] * 3)
    spec = _cycle_spec(tmp_path)
    assert run_cli("build", spec, "-o", tmp_path / "build", "--no-atc", "--no-validate") == 0
    onnx_path = tmp_path / "build" / "small" / "small.onnx"
    assert run_cli("prep", spec, "--input", tmp_path / "testA", "--out", tmp_path / "bins",
                   "--batch", "2") == 0
    # ais_bench, float32: perfect outputs
    _run_onnx_as_device(onnx_path, tmp_path / "bins", tmp_path / "ais", "{stem}_0.bin")
    assert run_cli("compare", spec, "--bins", tmp_path / "ais", "--inputs", tmp_path / "bins",
                   "-o", tmp_path / "build") == 0
    assert "mean pixel_cosine 1.000000" in capsys.readouterr().out
    assert run_cli("post", spec, "--bins", tmp_path / "ais", "--inputs", tmp_path / "bins",
                   "--out", tmp_path / "img") == 0
    assert sorted(p.name for p in (tmp_path / "img").iterdir()) == ["1_A.png", "2_A.png", "3_A.png"]
    y = np.fromfile(tmp_path / "ais" / "1_A-2_A_0.bin", "<f4").reshape(2, 3, 64, 64)
    png = np.asarray(Image.open(tmp_path / "img" / "2_A.png"))
    # CycleGAN's postprocess: clamp((x + 1) / 2), ToPILImage (mul(255).byte(): truncation)
    np.testing.assert_array_equal(png, (np.clip((y[1] + 1) / 2, 0, 1) * np.float32(255))
                                  .astype(np.uint8).transpose(1, 2, 0))
    # msame naming, float16 (atc --output_type=FP16)
    _run_onnx_as_device(onnx_path, tmp_path / "bins", tmp_path / "ms", "{stem}_output_0.bin",
                        np.float16)
    assert run_cli("compare", spec, "--bins", tmp_path / "ms", "--inputs", tmp_path / "bins",
                   "-o", tmp_path / "build", "--dtype", "float16") == 0
    assert run_cli("compare", spec, "--bins", tmp_path / "ms", "--inputs", tmp_path / "bins",
                   "-o", tmp_path / "build") == 1               # read as float32: wrong size
    assert "pass --dtype float16" in capsys.readouterr().err
    # a wrong output lowers the metric below the threshold; a missing one fails the check
    bad = np.fromfile(tmp_path / "ais" / "3_A_0.bin", "<f4")
    (-bad).tofile(tmp_path / "ais" / "3_A_0.bin")
    assert run_cli("compare", spec, "--bins", tmp_path / "ais", "--inputs", tmp_path / "bins",
                   "-o", tmp_path / "build", "--json", tmp_path / "cmp.json") == 1
    figures = json.loads((tmp_path / "cmp.json").read_text())
    assert figures["rows"][1]["pixel_cosine"] < -0.99 and figures["mean"] < 0.5
    (tmp_path / "ais" / "3_A_0.bin").unlink()
    assert run_cli("compare", spec, "--bins", tmp_path / "ais", "--inputs", tmp_path / "bins",
                   "-o", tmp_path / "build") == 1
    assert "1 prepared file(s) have no output: 3_A" in capsys.readouterr().err


def test_post_gan_uses_batch_min_max_and_names_without_manifest(tmp_path):
    y = np.linspace(-0.5, 0.5, 2 * 28 * 28, dtype=np.float32).reshape(2, 1, 28, 28)
    (tmp_path / "bins").mkdir()
    y.tofile(tmp_path / "bins" / "z_00000_0.bin")
    assert run_cli("post", REPO / "specs" / "gan.gan", "--bins", tmp_path / "bins",
                   "--out", tmp_path / "img") == 0
    first = np.asarray(Image.open(tmp_path / "img" / "z_00000_0.png"))
    second = np.asarray(Image.open(tmp_path / "img" / "z_00000_1.png"))
    assert first.shape == (28, 28) and first.min() == 0 and second.max() == 255


def test_post_reads_ais_bench_text_outputs(tmp_path):
    """`--outfmt TXT` (the StarGAN recipe's ais_bench call): whitespace-separated numbers."""
    y = np.tanh(np.random.default_rng(2).standard_normal((1, 3, 128, 128))).astype(np.float32)
    (tmp_path / "res").mkdir()
    rows = y.reshape(-1, 128)
    (tmp_path / "res" / "1_A_t2_0.txt").write_text(
        "\n".join(" ".join(f"{v:.7f}" for v in row) for row in rows) + "\n")
    assert run_cli("post", REPO / "specs" / "stargan.gan", "--bins", tmp_path / "res",
                   "--out", tmp_path / "img") == 0
    png = np.asarray(Image.open(tmp_path / "img" / "1_A_t2.png"))
    # StarGAN: denorm, save_image: floor(x * 255 + 0.5); the text's 7 decimals may move a
    # value across a .5 boundary, hence the tolerance of one
    expected = np.floor(np.clip((y[0] + 1) / 2, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(1, 2, 0)
    assert png.shape == (128, 128, 3) and np.abs(png.astype(int) - expected).max() <= 1
