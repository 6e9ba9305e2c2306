"""The build's validation takes pixel_cosine across the channels of the output's layout
(issue 14): NHWC for a TensorFlow source (BigBiGAN's 256x32x32x1), NCHW for the PyTorch and
ONNX exports, as `gancc compare` and `gancc validate` do (gancc.data_io.output_channel_axis).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from gancc.data_io import output_channel_axis
from gancc.spec import parse_file, parse_text
from gancc.stages import validate

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = np.array([1.0, -1.0, 0.5], dtype=np.float32)   # per channel: a sign flip, a scale


def scaled_graph(layout: str) -> onnx.ModelProto:
    """y = x * WEIGHTS along the channel axis of `layout`: the reference is x itself."""
    shape = [2, 4, 4, 3] if layout == "NHWC" else [2, 3, 4, 4]
    w = WEIGHTS if layout == "NHWC" else WEIGHTS.reshape(3, 1, 1)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)
    node = helper.make_node("Mul", ["x", "w"], ["y"], name="scale")
    graph = helper.make_graph([node], "g", [x], [y], [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    onnx.checker.check_model(model)
    return model


def spec(layout: str):
    source, reference = (('source tensorflow "g.pb"', "tensorflow") if layout == "NHWC"
                         else ('source onnx "g.onnx"', "onnx"))
    shape = "2, 4, 4, 3" if layout == "NHWC" else "2, 3, 4, 4"
    return parse_text(f"model g {{\n    {source}\n    input x: float32[{shape}]\n    output y\n"
                      f"    validate {{ reference {reference}  samples 2  seed 3\n"
                      "        data x normal(0, 1) }\n}\n", "t.gan").models[0]


def pixel_cosine_by_hand(ref: np.ndarray, out: np.ndarray, axis: int) -> float:
    ref, out = ref.astype(np.float64), out.astype(np.float64)
    dot = (ref * out).sum(axis=axis)
    return float((dot / (np.linalg.norm(ref, axis=axis) * np.linalg.norm(out, axis=axis))).mean())


def run(layout: str):
    model = spec(layout)
    feeds = validate.make_inputs(model, 2, 3)
    ref = feeds["x"].astype(np.float32)
    known = validate.KnownReference(model.validation.reference, {"y": ref})
    report = validate.validate(model, scaled_graph(layout), None, None, known=known)
    return model, ref, report


def test_nhwc_output_pixel_cosine_is_taken_across_its_channels():
    model, ref, report = run("NHWC")
    assert output_channel_axis(model) == -1
    out = ref * WEIGHTS
    right, along_h = pixel_cosine_by_hand(ref, out, -1), pixel_cosine_by_hand(ref, out, 1)
    assert abs(right - along_h) > 0.05        # the case tells the two axes apart
    assert report.final["y"]["pixel_cosine"] == pytest.approx(right, abs=1e-6)


def test_nhwc_fp16_prediction_uses_the_same_axis():
    from gancc.stages.predict import predict_fp16

    model, ref, report = run("NHWC")
    fp16 = predict_fp16(model, scaled_graph("NHWC"), {"y": ref}, 2, report.final_outputs)
    out = ref * WEIGHTS
    assert fp16["ran"]
    figure = fp16["final_vs_reference"]["y"]["pixel_cosine"]
    assert figure == pytest.approx(pixel_cosine_by_hand(ref, out, -1), abs=1e-3)


def test_nchw_figures_are_unchanged():
    model, ref, report = run("NCHW")
    assert output_channel_axis(model) == 1
    out = ref * WEIGHTS.reshape(3, 1, 1)
    assert report.final["y"]["pixel_cosine"] == pytest.approx(pixel_cosine_by_hand(ref, out, 1),
                                                             abs=1e-6)


@pytest.mark.parametrize("name, axis", [("gan", 1), ("cyclegan", 1), ("stargan", 1),
                                        ("pix2pixhd", 1), ("bigbigan", -1)])
def test_seed_models_layouts(name: str, axis: int):
    """Only BigBiGAN (TensorFlow, NHWC) moves: every PyTorch seed keeps axis 1."""
    for model in parse_file(ROOT / "specs" / f"{name}.gan").models:
        assert output_channel_axis(model) == axis
