"""prep / post / compare against the recipes (shared/reference/models-recipes.md): each test
writes the recipe's own transform (numpy / PIL / torch ops, no torchvision) beside gancc's and
asserts identical bytes, or checks the behaviour issue 14 found missing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from PIL import Image

from gancc.cli import main
from gancc.metrics import SetMetrics, metrics

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args) -> int:
    return main([str(a) for a in args])


def gan_onnx(path: Path) -> Path:
    """A stand-in for the GAN generator: Z (N,100) -> tanh(Z W) as (N,1,28,28)."""
    w = np.random.default_rng(0).standard_normal((100, 784)).astype(np.float32) * 0.1
    nodes = [helper.make_node("MatMul", ["Z", "W"], ["h"]), helper.make_node("Tanh", ["h"], ["t"]),
             helper.make_node("Reshape", ["t", "shape"], ["generateimg"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("Z", TensorProto.FLOAT, ["N", 100])],
        [helper.make_tensor_value_info("generateimg", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor("W", TensorProto.FLOAT, w.shape, w.ravel()),
         helper.make_tensor("shape", TensorProto.INT64, [4], [-1, 1, 28, 28])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), path)
    return path


def image_onnx(path: Path, inp: str, out: str, channels: int = 3, size: int = 64) -> Path:
    """A stand-in image-to-image generator: a 1x1 Conv mixing channels, then Tanh."""
    w = np.random.default_rng(1).standard_normal((3, channels, 1, 1)).astype(np.float32)
    nodes = [helper.make_node("Conv", [inp, "W"], ["c"]), helper.make_node("Tanh", ["c"], [out])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(inp, TensorProto.FLOAT, ["N", channels, size, size])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor("W", TensorProto.FLOAT, w.shape, w.ravel())])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), path)
    return path


def device_outputs(onnx_path: Path, prep_dir: Path, out: Path, naming="{stem}_0.bin",
                   transform=lambda y: y) -> None:
    """What ais_bench would write for the prepared inputs, from onnxruntime, then `transform`ed."""
    session = ort.InferenceSession(str(onnx_path))
    manifest = json.loads((prep_dir / "manifest.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    for f in manifest["files"]:
        feeds = {n: np.fromfile(prep_dir / n / f"{f['name']}.bin", manifest["dtypes"][n])
                 .reshape(manifest["shapes"][n]) for n in manifest["inputs"]}
        y = session.run(None, feeds)[0]
        np.asarray(transform(y), np.float32).tofile(out / naming.format(stem=f["name"]))


# ---------------------------------------------------------------------------- metrics
def test_pixel_cosine_follows_the_channel_axis():
    rng = np.random.default_rng(0)
    ref = rng.random((2, 8, 8, 3))                              # NHWC, 3 channels
    act = ref.copy()
    act[..., 0] *= -1                                           # one channel flipped everywhere
    nchw = metrics(ref.transpose(0, 3, 1, 2), act.transpose(0, 3, 1, 2))["pixel_cosine"]
    assert metrics(ref, act, channel_axis=-1)["pixel_cosine"] == pytest.approx(nchw)
    assert metrics(ref, act)["pixel_cosine"] != pytest.approx(nchw)  # axis 1 would be rows


def test_set_metrics_equal_the_metrics_of_the_whole_set():
    rng = np.random.default_rng(1)
    refs = [rng.standard_normal((2, 3, 5, 4)) for _ in range(3)]
    acts = [r + 0.2 * rng.standard_normal(r.shape) for r in refs]
    for axis in (1, -1):
        acc = SetMetrics(axis)
        for r, a in zip(refs, acts):
            acc.add(r, a)
        whole = metrics(np.concatenate(refs), np.concatenate(acts), axis)
        assert acc.result() == pytest.approx(whole, rel=1e-12)


# ---------------------------------------------------------------------------- compare
def test_compare_applies_the_spec_require_lines_gan(tmp_path, capsys):
    """0.05 x the reference: per-pixel channel cosine over one channel and the flattened
    cosine are both 1; the spec's `require max_abs <= 1e-4` catches it, naming the line."""
    onnx_path = gan_onnx(tmp_path / "gan.onnx")
    spec = REPO / "specs" / "gan.gan"
    assert run_cli("prep", spec, "--out", tmp_path / "bins", "--count", "2", "--batch", "4") == 0
    device_outputs(onnx_path, tmp_path / "bins", tmp_path / "good")
    args = ("compare", spec, "--inputs", tmp_path / "bins", "--onnx", onnx_path)
    assert run_cli(*args, "--bins", tmp_path / "good") == 0
    out = capsys.readouterr().out
    assert "max_abs 0 <= 0.0001 (" in out and "cosine 1 >= 0.9999" in out
    device_outputs(onnx_path, tmp_path / "bins", tmp_path / "scaled", transform=lambda y: 0.05 * y)
    assert run_cli(*args, "--bins", tmp_path / "scaled", "--json", tmp_path / "c.json") == 1
    err = capsys.readouterr().err
    line = next(n for n, t in enumerate(spec.read_text().splitlines(), 1) if "require max_abs" in t)
    assert "output 'generateimg': max_abs = 0.9" in err and f"gan.gan:{line}:" in err
    figures = json.loads((tmp_path / "c.json").read_text())
    assert figures["outputs"]["generateimg"]["headline"] == "cosine"
    assert figures["outputs"]["generateimg"]["set"]["cosine"] == pytest.approx(1.0)
    # --require replaces the spec's lines (fp16 device outputs need a looser max_abs)
    assert run_cli(*args, "--bins", tmp_path / "scaled", "--require", "max_abs <= 1") == 0
    assert run_cli(*args, "--bins", tmp_path / "scaled", "--require", "maxabs < 1") == 1
    assert "expected METRIC OP VALUE" in capsys.readouterr().err


def test_compare_min_applies_to_one_channel_outputs_and_constants_fail(tmp_path, capsys):
    onnx_path = gan_onnx(tmp_path / "gan.onnx")
    spec = REPO / "specs" / "gan.gan"
    assert run_cli("prep", spec, "--out", tmp_path / "bins", "--count", "2") == 0
    args = ("compare", spec, "--inputs", tmp_path / "bins", "--onnx", onnx_path,
            "--require", "max_abs <= 10")
    # noise: over one channel the per-pixel cosine stays about 1 (sign agreement); the
    # flattened cosine, which --min applies to here, drops
    device_outputs(onnx_path, tmp_path / "bins", tmp_path / "noisy",
                   transform=lambda y: y + 0.5 * np.random.default_rng(0).standard_normal(y.shape))
    assert run_cli(*args, "--bins", tmp_path / "noisy") == 1
    err = capsys.readouterr().err
    assert "output 'generateimg': cosine = 0.79" in err and "required >= 0.99 (--min)" in err
    assert run_cli(*args, "--bins", tmp_path / "noisy", "--min", "0.5") == 0
    capsys.readouterr()
    device_outputs(onnx_path, tmp_path / "bins", tmp_path / "const",
                   transform=lambda y: np.full_like(y, 0.99))
    assert run_cli(*args, "--bins", tmp_path / "const", "--min", "-1") == 1
    assert "is constant (0.99 everywhere)" in capsys.readouterr().err


def _nhwc_onnx(path: Path) -> Path:
    """BigBiGAN-shaped: x1 (4,100) float, x2 (4,) int32 -> Identity (4,32,32,1) sigmoid."""
    w = np.random.default_rng(2).standard_normal((100, 1024)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x1", "W"], ["h"]), helper.make_node("Cast", ["x2"], ["c"], to=1),
             helper.make_node("Unsqueeze", ["c"], ["cu"], axes=[1]),
             helper.make_node("Add", ["h", "cu"], ["s"]), helper.make_node("Sigmoid", ["s"], ["t"]),
             helper.make_node("Reshape", ["t", "shape"], ["Identity"])]
    graph = helper.make_graph(
        nodes, "b", [helper.make_tensor_value_info("x1", TensorProto.FLOAT, [4, 100]),
                     helper.make_tensor_value_info("x2", TensorProto.INT32, [4])],
        [helper.make_tensor_value_info("Identity", TensorProto.FLOAT, [4, 32, 32, 1])],
        [helper.make_tensor("W", TensorProto.FLOAT, w.shape, w.ravel()),
         helper.make_tensor("shape", TensorProto.INT64, [4], [-1, 32, 32, 1])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), path)
    return path


def test_compare_bigbigan_is_nhwc_and_min_is_not_ignored(tmp_path, capsys):
    spec = tmp_path / "bigbigan.gan"
    spec.write_text((REPO / "specs" / "bigbigan.gan").read_text().replace("256", "4"))
    onnx_path = _nhwc_onnx(tmp_path / "b.onnx")
    assert run_cli("prep", spec, "--out", tmp_path / "bins", "--count", "2") == 0
    args = ("compare", spec, "--inputs", tmp_path / "bins", "--onnx", onnx_path)
    device_outputs(onnx_path, tmp_path / "bins", tmp_path / "good")
    assert run_cli(*args, "--bins", tmp_path / "good", "--json", tmp_path / "c.json") == 0
    figures = json.loads((tmp_path / "c.json").read_text())["outputs"]["Identity"]
    assert figures["channels"] == 1 and figures["headline"] == "cosine"   # not 32 "channels" of H
    assert figures["set"]["mean_abs_kept"] == 0.0
    device_outputs(onnx_path, tmp_path / "bins", tmp_path / "const",
                   transform=lambda y: np.full_like(y, 0.99))
    assert run_cli(*args, "--bins", tmp_path / "const", "--require", "max_abs <= 1") == 1
    err = capsys.readouterr().err
    assert "is constant" in err and "cosine = " in err and "(--min)" in err


def test_compare_reads_the_legacy_benchmark_naming(tmp_path):
    onnx_path = gan_onnx(tmp_path / "gan.onnx")
    spec = REPO / "specs" / "gan.gan"
    assert run_cli("prep", spec, "--out", tmp_path / "bins") == 0
    device_outputs(onnx_path, tmp_path / "bins", tmp_path / "dumpOutput_device0", "{stem}_1.bin")
    assert run_cli("compare", spec, "--inputs", tmp_path / "bins", "--onnx", onnx_path,
                   "--bins", tmp_path / "dumpOutput_device0") == 0
    assert run_cli("post", spec, "--bins", tmp_path / "dumpOutput_device0",
                   "--inputs", tmp_path / "bins", "--out", tmp_path / "img") == 0
    assert (tmp_path / "img" / "z_00000_0.png").is_file()


# ---------------------------------------------------------------------------- post
# The recipes' postprocessing, written from models-recipes.md with the torch ops torchvision
# runs (torchvision itself is not installed): ToPILImage, save_image, make_grid (0.6).
def recipe_to_pil_image(chw):                  # CycleGAN: (x+1)/2, clamp, ToPILImage
    import torch

    t = ((torch.from_numpy(chw) + 1) / 2).clamp(0, 1)
    return t.mul(255).byte().permute(1, 2, 0).numpy()       # ToPILImage: mul(255).byte()


def recipe_make_grid(tensor, nrow=8, padding=2, normalize=False):
    import math

    import torch

    if tensor.dim() == 4 and tensor.size(1) == 1:
        tensor = torch.cat((tensor, tensor, tensor), 1)
    if normalize:
        tensor = tensor.clone()
        lo, hi = float(tensor.min()), float(tensor.max())
        tensor.clamp_(min=lo, max=hi)
        tensor.add_(-lo).div_(hi - lo + 1e-5)
    if tensor.size(0) == 1:
        return tensor.squeeze(0)
    nmaps = tensor.size(0)
    xmaps = min(nrow, nmaps)
    ymaps = math.ceil(nmaps / xmaps)
    height, width = int(tensor.size(2) + padding), int(tensor.size(3) + padding)
    grid = tensor.new_full((tensor.size(1), height * ymaps + padding, width * xmaps + padding), 0)
    k = 0
    for y in range(ymaps):
        for x in range(xmaps):
            if k >= nmaps:
                break
            grid.narrow(1, y * height + padding, height - padding) \
                .narrow(2, x * width + padding, width - padding).copy_(tensor[k])
            k += 1
    return grid


def recipe_save_image(tensor, **kw):
    import torch

    grid = recipe_make_grid(tensor, **kw)
    return grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to("cpu", torch.uint8).numpy()


def _tanh_outputs(n, h, w, seed=0):
    # values spread over the whole range, plus exact .5 / boundary cases
    y = np.tanh(np.random.default_rng(seed).standard_normal((n, 3, h, w)) * 1.5).astype(np.float32)
    y.flat[:6] = [-1.5, 1.5, 0.0, -1.0, 1.0, 1 / 255 - 1]
    return y


def test_post_cyclegan_truncates_as_to_pil_image(tmp_path):
    from gancc.data_io import to_images

    y = _tanh_outputs(2, 16, 12)
    ours = to_images("cyclegan", y)
    for k in range(2):
        assert np.array_equal(ours[k], recipe_to_pil_image(y[k]))
    # through the CLI: the PNG holds the same bytes
    spec = tmp_path / "c.gan"
    spec.write_text(CYCLE_SPEC.replace("64, 64", "16, 12"))
    (tmp_path / "res").mkdir()
    y[:1].tofile(tmp_path / "res" / "1_A_0.bin")
    assert run_cli("post", spec, "--bins", tmp_path / "res", "--out", tmp_path / "img") == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "img" / "1_A.png")), recipe_to_pil_image(y[0]))
    # half the pixels would differ by one with rounding: this is the recipe's truncation
    assert (np.round(np.clip((y[0] + 1) / 2, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)
            != ours[0]).mean() > 0.3


def test_post_pix2pixhd_truncates_as_astype_uint8():
    from gancc.data_io import to_images

    y = _tanh_outputs(1, 8, 16)
    recipe = np.clip((y[0].transpose(1, 2, 0) + 1) / 2 * 255, 0, 255).astype(np.uint8)
    assert np.array_equal(to_images("pix2pixhd", y)[0], recipe)


def test_post_stargan_rounds_half_up_as_save_image():
    import torch

    from gancc.data_io import to_images

    y = _tanh_outputs(1, 8, 8)
    y[0, 0, 0, 6] = 2 * (0.5 / 255) - 1                  # x * 255 == 0.5 exactly: half up
    denorm = ((torch.from_numpy(y) + 1) / 2).clamp_(0, 1)
    recipe = recipe_save_image(denorm, nrow=1, padding=0)
    assert np.array_equal(to_images("stargan", y)[0], recipe)


def test_post_gan_matches_save_image_normalize_and_writes_one_grid_per_batch(tmp_path):
    import torch

    from gancc.data_io import gan_grid, to_images

    y = np.tanh(np.random.default_rng(3).standard_normal((11, 1, 28, 28))).astype(np.float32) * 0.8
    recipe = recipe_save_image(torch.from_numpy(y), normalize=True)     # 8 per row, 2 px padding
    assert recipe.shape == (2 + 2 * 30, 2 + 8 * 30, 3)
    assert np.array_equal(gan_grid(y), recipe)
    for k, img in enumerate(to_images("gan", y)):                      # the grid's cells
        r, c = divmod(k, 8)
        assert np.array_equal(img, recipe[2 + 30 * r:30 + 30 * r, 2 + 30 * c:30 + 30 * c, 0])
    (tmp_path / "res").mkdir()
    y.tofile(tmp_path / "res" / "z_00000_0.bin")
    assert run_cli("post", REPO / "specs" / "gan.gan", "--bins", tmp_path / "res",
                   "--out", tmp_path / "img") == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "img" / "z_00000-grid.png")), recipe)
    assert len(list((tmp_path / "img").glob("z_00000_*.png"))) == 11


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


# ---------------------------------------------------------------------------- prep with AIPP
# Generation-1 CycleGAN's aipp_CycleGAN_pth.config, every field, at a quarter of the size:
# src 128x128 (the recipe: 512), crop 64x64 at (16, 16) (the recipe: 256 at (16, 16)).
AIPP_BLOCK = """    aipp img {
        aipp_mode static
        input_format YUV420SP_U8
        csc_switch true
        rbuv_swap_switch true
        src_image_size_w 128
        src_image_size_h 128
        crop true
        load_start_pos_h 16
        load_start_pos_w 16
        crop_size_w 64
        crop_size_h 64
        min_chn_0 127.5
        min_chn_1 127.5
        min_chn_2 127.5
        var_reci_chn_0 0.007843137254901
        var_reci_chn_1 0.007843137254901
        var_reci_chn_2 0.007843137254901
        matrix_r0c0 256
        matrix_r0c1 0
        matrix_r0c2 359
        matrix_r1c0 256
        matrix_r1c1 -88
        matrix_r1c2 -183
        matrix_r2c0 256
        matrix_r2c1 454
        matrix_r2c2 0
        input_bias_0 0
        input_bias_1 128
        input_bias_2 128
    }
"""


def _smooth_images(folder: Path, sizes) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (w, h) in enumerate(sizes):
        yy, xx = np.mgrid[0:h, 0:w]
        rgb = np.stack([xx * 255 / w, yy * 255 / h, 128 + 60 * np.sin(xx / 9.0)], -1)
        paths.append(folder / f"{i + 1}_A.png")
        Image.fromarray(rgb.astype(np.uint8)).save(paths[-1])
    return paths


def _aipp_spec(tmp_path: Path) -> Path:
    spec = tmp_path / "aipp.gan"
    spec.write_text(CYCLE_SPEC.replace("    atc {", AIPP_BLOCK + "    atc {"))
    return spec


def test_prep_writes_what_an_aipp_om_takes(tmp_path, capsys):
    from gancc.aipp.emulate import emulate

    src = _smooth_images(tmp_path / "testA", [(150, 150), (128, 128)])
    spec = _aipp_spec(tmp_path)
    assert run_cli("prep", spec, "--input", tmp_path / "testA", "--out", tmp_path / "bins") == 0
    err = capsys.readouterr().err
    assert "warning: input 'img': AIPP crops a 64x64 window at (16, 16) of the 128x128 image" in err
    manifest = json.loads((tmp_path / "bins" / "manifest.json").read_text())
    assert manifest["dtypes"]["img"] == "uint8" and manifest["shapes"]["img"] == [1, 192, 128]
    nv = np.fromfile(tmp_path / "bins" / "img" / "1_A.bin", np.uint8)
    assert nv.size == 128 * 128 * 3 // 2                        # YUV420SP bytes, no float
    # the recipe: PIL thumbnail((512, 512), ANTIALIAS), JPEG's full-range YCbCr
    thumb = Image.open(src[0]).convert("RGB")
    thumb.thumbnail((128, 128), Image.LANCZOS)
    ycc = np.asarray(thumb.convert("YCbCr"))
    assert np.array_equal(nv[:128 * 128].reshape(128, 128), ycc[..., 0])
    vu = nv[128 * 128:].reshape(64, 64, 2).astype(int)           # NV21 (rbuv_swap_switch true)
    cb = ycc[..., 1].astype(int).reshape(64, 2, 64, 2).mean(axis=(1, 3))
    assert np.abs(vu[..., 1] - cb).max() <= 0.5
    # what the om's AIPP makes of it: the thumbnail's 64x64 window at (16, 16) in [-1, 1]
    fields = manifest["aipp"]["img"]["fields"]
    seen = emulate(fields, nv.reshape(1, 192, 128)).astype(np.float32)[0]
    window = np.asarray(thumb, np.float32)[16:80, 16:80].transpose(2, 0, 1) / 127.5 - 1
    assert seen.shape == (3, 64, 64) and np.abs(seen - window).mean() < 0.02


def test_prep_dvpp_writes_the_recipe_thumbnails_and_info(tmp_path):
    _smooth_images(tmp_path / "testA", [(150, 150), (128, 128)])
    spec = _aipp_spec(tmp_path)
    out = tmp_path / "bins"
    assert run_cli("prep", spec, "--input", tmp_path / "testA", "--out", out, "--dvpp") == 0
    lines = (out / "img.info").read_text().splitlines()
    assert lines == [f"0 {out / 'img_jpeg' / '1_A.jpeg'} 128 128", f"1 {out / 'img_jpeg' / '2_A.jpeg'} 128 128"]
    with Image.open(out / "img_jpeg" / "1_A.jpeg") as jpeg:
        assert jpeg.format == "JPEG" and jpeg.size == (128, 128)
    assert (out / "img" / "2_A.bin").stat().st_size == 128 * 192
    plain = tmp_path / "plain.gan"
    plain.write_text(CYCLE_SPEC)
    assert run_cli("prep", plain, "--input", tmp_path / "testA", "--out", tmp_path / "x", "--dvpp") == 1


def test_prep_aipp_rejects_an_image_of_another_aspect(tmp_path, capsys):
    _smooth_images(tmp_path / "testA", [(200, 100)])
    assert run_cli("prep", _aipp_spec(tmp_path), "--input", tmp_path / "testA",
                   "--out", tmp_path / "bins") == 1
    err = capsys.readouterr().err
    assert "1_A.png: a 200x100 image is 128x64 after thumbnail((128, 128))" in err


def test_compare_aipp_feeds_the_graph_what_aipp_makes(tmp_path):
    from gancc.aipp.emulate import emulate

    _smooth_images(tmp_path / "testA", [(128, 128)] * 2)
    spec = _aipp_spec(tmp_path)
    assert run_cli("prep", spec, "--input", tmp_path / "testA", "--out", tmp_path / "bins") == 0
    onnx_path = image_onnx(tmp_path / "m.onnx", "img", "out")
    session = ort.InferenceSession(str(onnx_path))
    manifest = json.loads((tmp_path / "bins" / "manifest.json").read_text())
    (tmp_path / "dev").mkdir()
    for f in manifest["files"]:                  # the device: AIPP in fp16, then the model
        nv = np.fromfile(tmp_path / "bins" / "img" / f"{f['name']}.bin", np.uint8).reshape(1, 192, 128)
        x = emulate(manifest["aipp"]["img"]["fields"], nv).astype(np.float32)
        session.run(None, {"img": x})[0].tofile(tmp_path / "dev" / f"{f['name']}_0.bin")
    assert run_cli("compare", spec, "--bins", tmp_path / "dev", "--inputs", tmp_path / "bins",
                   "--onnx", onnx_path, "--json", tmp_path / "c.json") == 0
    assert json.loads((tmp_path / "c.json").read_text())["mean"] > 0.999


def test_prep_legacy_seed_reproduces_the_recipes_numpy_draws(tmp_path):
    assert run_cli("prep", REPO / "specs" / "gan.gan", "--out", tmp_path / "g", "--count", "2",
                   "--batch", "16", "--seed", "7", "--legacy-seed") == 0
    np.random.seed(7)                           # GAN_preprocess.py, with a seed added
    for i in range(2):
        z = np.random.normal(0, 1, (16, 100)).astype(np.float32)
        assert np.fromfile(tmp_path / "g" / "Z" / f"z_{i:05d}.bin", "<f4").tobytes() == z.tobytes()
    spec = tmp_path / "bigbigan.gan"
    spec.write_text((REPO / "specs" / "bigbigan.gan").read_text())
    assert run_cli("prep", spec, "--out", tmp_path / "b", "--seed", "3", "--legacy-seed") == 0
    np.random.seed(3)                           # pic2bin.py, with a seed added
    x1 = np.random.uniform(0, 1, (256, 100)).astype(np.float32)
    x2 = np.random.randint(0, 10, 256).astype(np.int32)
    assert (tmp_path / "b" / "x1" / "z_00000.bin").read_bytes() == x1.tobytes()
    assert (tmp_path / "b" / "x2" / "z_00000.bin").read_bytes() == x2.tobytes()


def celeba(tmp_path: Path, count: int) -> tuple[Path, Path]:
    """`count` CelebA-like images (000001.jpg ...) and their list_attr_celeba.txt."""
    rng = np.random.default_rng(5)
    names = [f"{i:06d}.jpg" for i in range(1, count + 1)]
    folder = tmp_path / "images"
    folder.mkdir()
    for n in names:
        Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)).save(folder / n)
    header = "Black_Hair Blond_Hair Brown_Hair Male Young"
    rows = [f"{n} {' '.join(rng.choice(['1', '-1'], 5))}" for n in names]
    attrs = tmp_path / "list_attr_celeba.txt"
    attrs.write_text(f"{len(names)}\n{header}\n" + "\n".join(rows) + "\n")
    return folder, attrs


def test_prep_stargan_test_split_and_count_names(tmp_path):
    import random

    folder, attrs = celeba(tmp_path, 12)
    out = tmp_path / "bin"
    assert run_cli("prep", REPO / "specs" / "stargan.gan", "--input", folder, "--attrs", attrs,
                   "--out", out, "--batch", "4", "--split", "test") == 0
    # data_loader.py: lines after the header, random.seed(1234), random.shuffle
    lines = [line.rstrip() for line in attrs.open()][2:]
    random.seed(1234)
    random.shuffle(lines)
    order = [line.split()[0].split(".")[0] for line in lines]
    manifest = json.loads((out / "manifest.json").read_text())
    assert [f["name"] for f in manifest["files"]] == [str(c) for c in range(15)]
    assert manifest["files"][5]["samples"] == order[4:8] and manifest["files"][5]["target"] == 0
    img5 = np.fromfile(out / "real_img" / "5.bin", "<f4").reshape(4, 3, 128, 128)
    # CenterCrop(178) of 178x218: rows 20..198; Resize(128) bilinear; Normalize(0.5, 0.5)
    crop = Image.open(folder / f"{order[4]}.jpg").convert("RGB").crop((0, 20, 178, 198))
    expected = np.asarray(crop.resize((128, 128), Image.BILINEAR), np.float32).transpose(2, 0, 1)
    np.testing.assert_allclose(img5[0], expected / 127.5 - 1, atol=1e-5)


def test_prep_stargan_test_split_stops_after_320_pairs(tmp_path):
    """StarGAN_pre_processing.py stops after the batch in which its count reaches 319: at
    batch 1, 64 images of 66 give 320 (image, attr) pairs, <cnt>.bin for cnt 0..319."""
    folder, attrs = celeba(tmp_path, 66)
    out = tmp_path / "bin"
    assert run_cli("prep", REPO / "specs" / "stargan.gan", "--input", folder, "--attrs", attrs,
                   "--out", out, "--batch", "1", "--split", "test") == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert [f["name"] for f in manifest["files"]] == [str(c) for c in range(320)]
    assert [f["batch"] for f in manifest["files"][-5:]] == [63] * 5
    assert sorted(p.stem for p in (out / "attr").glob("*.bin")) == sorted(str(c) for c in range(320))


def stargan_onnx(path: Path, size: int = 128) -> Path:
    """A stand-in StarGAN generator: tanh(Conv1x1(real_img) + sum(attr))."""
    w = np.random.default_rng(2).standard_normal((3, 3, 1, 1)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["real_img", "W"], ["c"]),
             helper.make_node("Reshape", ["attr", "shape"], ["a"]),
             helper.make_node("ReduceSum", ["a"], ["s"], axes=[1], keepdims=1),
             helper.make_node("Add", ["c", "s"], ["h"]), helper.make_node("Tanh", ["h"], ["fake_img"])]
    image = ["N", 3, size, size]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("real_img", TensorProto.FLOAT, image),
                     helper.make_tensor_value_info("attr", TensorProto.FLOAT, ["N", 5])],
        [helper.make_tensor_value_info("fake_img", TensorProto.FLOAT, image)],
        [helper.make_tensor("W", TensorProto.FLOAT, w.shape, w.ravel()),
         helper.make_tensor("shape", TensorProto.INT64, [4], [-1, 5, 1, 1])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), path)
    return path


def test_post_stargan_grid_per_batch_and_onnx_images(tmp_path):
    """StarGAN_post_processing.py: per batch cnt, the 5 outputs <cnt*5+i> concatenated along
    W, saved with denorm and save_image (nrow=1, padding=0: B rows x 5) as <cnt>-images;
    with --onnx, the same images from the ONNX graph in OUT/onnx/ (--onnx_save)."""
    import torch

    folder, attrs = celeba(tmp_path, 8)
    spec, prep_dir = REPO / "specs" / "stargan.gan", tmp_path / "bin"
    assert run_cli("prep", spec, "--input", folder, "--attrs", attrs, "--out", prep_dir,
                   "--batch", "4", "--split", "test") == 0
    onnx_path = stargan_onnx(tmp_path / "stargan.onnx")
    device_outputs(onnx_path, prep_dir, tmp_path / "result", transform=lambda y: y * 0.5)
    out = tmp_path / "img"
    assert run_cli("post", spec, "--bins", tmp_path / "result", "--inputs", prep_dir,
                   "--out", out, "--onnx", onnx_path) == 0
    manifest = json.loads((prep_dir / "manifest.json").read_text())
    session = ort.InferenceSession(str(onnx_path))
    for cnt in range(2):
        device = [np.fromfile(tmp_path / "result" / f"{cnt * 5 + i}_0.bin", "<f4")
                  .reshape(4, 3, 128, 128) for i in range(5)]
        reference = []
        for i in range(5):
            feeds = {n: np.fromfile(prep_dir / n / f"{cnt * 5 + i}.bin", "<f4")
                     .reshape(manifest["shapes"][n]) for n in ("real_img", "attr")}
            reference.append(session.run(None, feeds)[0])
        for side, outs in (("", device), ("onnx/", reference)):
            x_concat = torch.cat([torch.from_numpy(o) for o in outs], dim=3)
            recipe = recipe_save_image(((x_concat + 1) / 2).clamp_(0, 1), nrow=1, padding=0)
            assert recipe.shape == (4 * 128, 5 * 128, 3)
            grid = np.asarray(Image.open(out / f"{side}batches/{cnt}-images.png"))
            assert np.array_equal(grid, recipe)
            first = manifest["files"][cnt * 5]["samples"][0]           # the first row's image
            strip = np.asarray(Image.open(out / f"{side}{first}-images.png"))
            assert np.array_equal(strip, recipe[:128])
    assert not np.array_equal(np.asarray(Image.open(out / "batches" / "0-images.png")),
                              np.asarray(Image.open(out / "onnx" / "batches" / "0-images.png")))
    assert sorted(p.name for p in (out / "onnx").glob("*_t0.png")) == \
        sorted(p.name for p in out.glob("*_t0.png"))


def test_post_onnx_needs_the_prepared_inputs(tmp_path, capsys):
    onnx_path = gan_onnx(tmp_path / "gan.onnx")
    spec = REPO / "specs" / "gan.gan"
    assert run_cli("prep", spec, "--out", tmp_path / "bins", "--batch", "16") == 0
    device_outputs(onnx_path, tmp_path / "bins", tmp_path / "res")
    assert run_cli("post", spec, "--bins", tmp_path / "res", "--out", tmp_path / "img",
                   "--onnx", onnx_path) == 1
    assert "--onnx needs --inputs" in capsys.readouterr().err
    assert run_cli("post", spec, "--bins", tmp_path / "res", "--out", tmp_path / "img",
                   "--inputs", tmp_path / "bins", "--onnx", onnx_path) == 0
    for name in ("z_00000_0.png", "z_00000-grid.png"):
        assert (np.asarray(Image.open(tmp_path / "img" / name)) ==
                np.asarray(Image.open(tmp_path / "img" / "onnx" / name))).all()
