"""resize-to-nearest: Resize(mode=linear|cubic) -> Resize(mode=nearest), a lossy rewrite.

Being lossy, it is checked two ways: against what nearest-neighbour upsampling must give
(pixel repetition, for asymmetric coordinates and floor), and by a measured figure on a
smooth test image: PSNR (peak-to-peak 2) between the linear and the nearest upsampling,
asserted within a stated band.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from rewrite_testing import copy, parse, rewrite, run

from gancc.graph import Graph, provenance
from gancc.passes import registry
from gancc.passes.registry import OptionError

NAME = "resize-to-nearest"

UPSAMPLE = """
<ir_version: 8, opset_import: ["" : 11]>
g (float[1,3,32,32] x) => (float[1,3,64,64] y)
<float[0] roi = {}, float[4] scales = {1, 1, 2, 2}>
{
    [resize] y = Resize <mode = "MODE", coordinate_transformation_mode = "CTM"EXTRA>
                        (x, roi, scales)
}
"""


def upsample(mode: str = "linear", ctm: str = "half_pixel", extra: str = "") -> onnx.ModelProto:
    return parse(UPSAMPLE.replace("MODE", mode).replace("CTM", ctm).replace("EXTRA", extra))


def image() -> np.ndarray:
    """A smooth 32x32 test image in [-1, 1]: a sine pattern and two ramps."""
    yy, xx = np.mgrid[0:32, 0:32] / 31.0
    channels = [np.sin(2 * np.pi * xx * 1.5) * np.cos(2 * np.pi * yy), xx * 2 - 1, xx * yy * 2 - 1]
    return np.stack(channels)[None].astype(np.float32)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b) ** 2).mean())
    return 10 * np.log10(2.0 ** 2 / mse)


def test_linear_becomes_nearest_and_repeats_pixels():
    model = upsample(ctm="asymmetric")

    result = rewrite(model, NAME)

    assert (result.matches, result.declined) == (1, [])
    (resize,) = model.graph.node
    assert Graph.attr(resize, "mode") == "nearest"
    assert Graph.attr(resize, "nearest_mode") == "floor"
    assert Graph.attr(resize, "coordinate_transformation_mode") == "asymmetric"   # kept
    assert list(resize.input) == ["x", "roi", "scales"]
    assert provenance(resize) == [NAME]
    onnx.checker.check_model(model, full_check=True)
    x = image()
    (got,) = run(model, {"x": x})
    assert np.array_equal(got, x.repeat(2, axis=2).repeat(2, axis=3))


@pytest.mark.parametrize("mode, nearest_mode, band", [
    # measured with onnxruntime 1.32: 29.77 dB, 36.89 dB, 29.98 dB, 35.44 dB
    ("linear", "floor", (28.5, 31.0)),
    ("linear", "round_prefer_floor", (35.5, 38.5)),
    ("cubic", "floor", (28.5, 31.5)),
    ("cubic", "round_prefer_floor", (34.0, 37.0)),
])
def test_measured_psnr_on_a_test_image(mode: str, nearest_mode: str, band: tuple[float, float]):
    model = upsample(mode, extra=', cubic_coeff_a = -0.5' if mode == "cubic" else "")
    original = copy(model)

    rewrite(model, NAME, nearest_mode=nearest_mode)

    (resize,) = model.graph.node
    assert Graph.attr(resize, "cubic_coeff_a") is None
    x = image()
    (want,), (got,) = run(original, {"x": x}), run(model, {"x": x})
    assert band[0] <= psnr(got, want) <= band[1]


def test_coordinate_transformation_mode_option():
    model = upsample(ctm="half_pixel")
    rewrite(model, NAME, coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    assert Graph.attr(model.graph.node[0], "coordinate_transformation_mode") == "asymmetric"
    (got,) = run(model, {"x": image()})
    assert np.array_equal(got, image().repeat(2, axis=2).repeat(2, axis=3))


def test_resize_scales_stay_untouched():
    model = upsample()
    scales = [t for t in model.graph.initializer if t.name == "scales"][0]
    before = scales.SerializeToString()
    rewrite(model, NAME)
    (after,) = [t for t in model.graph.initializer if t.name == "scales"]
    assert after.SerializeToString() == before


def test_does_not_fire_on_nearest():
    model = upsample("nearest")
    before = model.SerializeToString()
    result = rewrite(model, NAME)
    assert (result.changed, result.matches) == (False, 0)
    assert result.declined == [("resize", "mode is already 'nearest'")]
    assert model.SerializeToString() == before


@pytest.mark.parametrize("options, message", [
    ({"nearest_mode": "nearest"}, "nearest_mode must be one of"),
    ({"coordinate_transformation_mode": "half"}, "coordinate_transformation_mode must be one of"),
])
def test_bad_option_values_are_refused(options: dict, message: str):
    with pytest.raises(OptionError, match=message):
        registry.make_pass(NAME, options)


DOWNSAMPLE_18 = """
<ir_version: 8, opset_import: ["" : 18]>
g (float[1,3,32,32] x) => (float[1,3,16,16] y)
<float[4] scales = {1, 1, 0.5, 0.5}>
{
    [resize] y = Resize <mode = "MODE", antialias = 1, coordinate_transformation_mode = "asymmetric">
                        (x, , scales)
}
"""


@pytest.mark.parametrize("mode", ["linear", "cubic"])
def test_antialias_is_cleared_so_onnxruntime_runs_the_nearest_resize(mode: str):
    model = parse(DOWNSAMPLE_18.replace("MODE", mode))
    result = rewrite(model, NAME)
    assert result.matches == 1
    (resize,) = model.graph.node
    assert Graph.attr(resize, "antialias") is None
    x = image()
    (got,) = run(model, {"x": x})
    # asymmetric + floor on a 2x downsample picks every other pixel, as a plain nearest does
    assert np.array_equal(got, x[:, :, ::2, ::2])
