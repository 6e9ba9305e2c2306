"""reflect-pad-to-constant: Pad(mode="reflect") -> Pad(mode="constant"), a lossy rewrite.

Being lossy, it is not compared with the graph it rewrote but with the graph it should
become: the same model written with constant padding from the start.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx.parser
import pytest
from onnx import numpy_helper

from gancc.graph import Graph, provenance
from gancc.passes import registry
from gancc.passes.base import PassResult

import rewrite_testing as shared  # noqa: E402
from rewrite_testing import parse, run  # noqa: E402

NAME = "reflect-pad-to-constant"


def rewrite(model: onnx.ModelProto, **options) -> PassResult:
    return shared.rewrite(model, NAME, **options)


def feeds(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((1, 3, 8, 8), dtype=np.float32),
            "w": rng.standard_normal((4, 3, 3, 3), dtype=np.float32)}


def max_diff(a: onnx.ModelProto, b: onnx.ModelProto, seed: int = 0) -> float:
    inputs = feeds(seed)
    return max(float(np.abs(x - y).max()) for x, y in zip(run(a, inputs), run(b, inputs)))


def pad_conv(mode: str, constant_value: str = "", opset: int = 11) -> str:
    """ReflectionPad2d(2) + Conv 3x3, as the CycleGAN generator starts (pads as an input)."""
    cv_decl = f", float cv = {{{constant_value}}}" if constant_value else ""
    cv_arg = ", cv" if constant_value else ""
    return f"""
    <ir_version: 8, opset_import: ["" : {opset}]>
    pad_conv (float[1,3,8,8] x, float[4,3,3,3] w) => (float[1,4,10,10] y)
    <int64[8] pads = {{0, 0, 2, 2, 0, 0, 2, 2}}{cv_decl}>
    {{
        [pad] p = Pad <mode = "{mode}"> (x, pads{cv_arg})
        [conv] y = Conv (p, w)
    }}
    """


def pad_conv_opset10(mode: str, value: float | None = None) -> str:
    """The same graph at opset 10, where pads and value are attributes."""
    value_attr = f", value = {value}" if value is not None else ""
    return f"""
    <ir_version: 8, opset_import: ["" : 10]>
    pad_conv (float[1,3,8,8] x, float[4,3,3,3] w) => (float[1,4,10,10] y)
    {{
        [pad] p = Pad <mode = "{mode}", pads = [0, 0, 2, 2, 0, 0, 2, 2]{value_attr}> (x)
        [conv] y = Conv (p, w)
    }}
    """


def pad_node(model: onnx.ModelProto) -> onnx.NodeProto:
    (node,) = [n for n in model.graph.node if n.op_type == "Pad"]
    return node


def test_reflect_pad_becomes_constant_pad():
    model = parse(pad_conv("reflect"))
    original = onnx.ModelProto()
    original.CopyFrom(model)

    result = rewrite(model)

    assert (result.changed, result.matches, result.declined) == (True, 1, [])
    assert [n.op_type for n in model.graph.node] == ["Pad", "Conv"]
    pad = pad_node(model)
    assert Graph.attr(pad, "mode") == "constant"
    assert list(pad.input) == ["x", "pads"]                  # no constant_value: zeros
    assert provenance(pad) == [NAME]
    assert provenance(model.graph.node[1]) == []             # the Conv is untouched
    onnx.checker.check_model(model, full_check=True)
    # equal to the model written with zero padding; clearly different from reflect padding
    assert max_diff(model, parse(pad_conv("constant"))) <= 1e-6
    assert max_diff(model, original) > 1e-2


def test_is_registered_as_lossy():
    assert registry.get(NAME).exact is False
    assert registry.get("fuse-pad-into-conv").exact is True


def test_only_pad_nodes_change_resize_mode_is_untouched():
    text = """
    <ir_version: 8, opset_import: ["" : 11]>
    pad_resize (float[1,3,8,8] x, float[4,3,3,3] w) => (float[1,4,20,20] y)
    <int64[8] pads = {0, 0, 2, 2, 0, 0, 2, 2}, float[0] roi = {}, float[4] scales = {1, 1, 2, 2}>
    {
        [pad] p = Pad <mode = "MODE"> (x, pads)
        [conv] c = Conv (p, w)
        [resize] y = Resize <mode = "linear"> (c, roi, scales)
    }
    """
    model = parse(text.replace("MODE", "reflect"))
    result = rewrite(model)

    assert result.matches == 1
    resize = next(n for n in model.graph.node if n.op_type == "Resize")
    assert Graph.attr(resize, "mode") == "linear"            # the recipe script clobbered this
    assert provenance(resize) == []
    assert Graph.attr(pad_node(model), "mode") == "constant"
    onnx.checker.check_model(model, full_check=True)
    assert max_diff(model, parse(text.replace("MODE", "constant"))) <= 1e-6


@pytest.mark.parametrize("mode", ["constant", "edge"])
def test_does_not_fire_on_other_pad_modes(mode: str):
    model = parse(pad_conv(mode))
    before = model.SerializeToString()

    result = rewrite(model)

    assert (result.changed, result.matches) == (False, 0)
    assert result.declined == [("pad", f"mode is '{mode}', not 'reflect'")]
    assert model.SerializeToString() == before


def test_value_option_adds_a_constant_value_input():
    model = parse(pad_conv("reflect"))
    result = rewrite(model, value=0.5)

    assert result.matches == 1
    pad = pad_node(model)
    assert len(pad.input) == 3 and pad.input[:2] == ["x", "pads"]
    value = Graph(model).const_value(pad.input[2])
    assert value is not None and value.dtype == np.float32 and value.shape == ()
    assert float(value) == 0.5
    onnx.checker.check_model(model, full_check=True)
    assert max_diff(model, parse(pad_conv("constant", constant_value="0.5"))) <= 1e-6
    assert max_diff(model, parse(pad_conv("constant"))) > 1e-2


def test_stale_constant_value_of_a_reflect_pad_does_not_leak():
    # A reflect Pad may carry a constant_value input (ignored in reflect mode). With the
    # default value=0 the constant Pad must pad with zeros, not with that stale 7.
    model = parse(pad_conv("reflect", constant_value="7.0"))
    rewrite(model)
    assert max_diff(model, parse(pad_conv("constant"))) <= 1e-6


@pytest.mark.parametrize("value, written", [(0.0, None), (0.5, 0.5)])
def test_opset_10_pads_as_attributes(value: float, written: float | None):
    model = parse(pad_conv_opset10("reflect"))
    result = rewrite(model, value=value)

    assert result.matches == 1
    pad = pad_node(model)
    assert list(pad.input) == ["x"]
    assert Graph.attr(pad, "mode") == "constant"
    assert Graph.attr(pad, "pads") == [0, 0, 2, 2, 0, 0, 2, 2]
    assert Graph.attr(pad, "value") == written
    onnx.checker.check_model(model, full_check=True)
    assert max_diff(model, parse(pad_conv_opset10("constant", value=value))) <= 1e-6


def test_opset_10_stale_value_attribute_does_not_leak():
    model = parse(pad_conv_opset10("reflect", value=7.0))
    rewrite(model)
    assert max_diff(model, parse(pad_conv_opset10("constant"))) <= 1e-6


def test_second_run_finds_nothing_and_says_why():
    model = parse(pad_conv("reflect"))
    rewrite(model)
    again = rewrite(model)
    assert again.matches == 0
    assert again.declined == [("pad", "mode is 'constant', not 'reflect'")]


def test_every_reflect_pad_of_a_chain_is_rewritten():
    model = parse("""
    <ir_version: 8, opset_import: ["" : 11]>
    chain (float[1,3,8,8] x, float[4,3,3,3] w) => (float[1,4,14,14] y)
    <int64[8] pads = {0, 0, 2, 2, 0, 0, 2, 2}, int64[8] one = {0, 0, 1, 1, 0, 0, 1, 1}>
    {
        p1 = Pad <mode = "reflect"> (x, pads)
        c1 = Conv (p1, w)
        p2 = Pad <mode = "edge"> (c1, one)
        y = Pad <mode = "reflect"> (p2, one)
    }
    """)
    result = rewrite(model)
    assert result.matches == 2 and len(result.declined) == 1
    modes = [Graph.attr(n, "mode") for n in model.graph.node if n.op_type == "Pad"]
    assert modes == ["constant", "edge", "constant"]
    assert numpy_helper.to_array(model.graph.initializer[0]).tolist() == [0, 0, 2, 2, 0, 0, 2, 2]


def test_value_takes_the_dtype_of_the_padded_tensor():
    """In an fp16 graph the constant_value input is float16: a float32 one is invalid there."""
    model = parse("""
    <ir_version: 8, opset_import: ["" : 11]>
    fp16 (float16[1,3,8,8] x) => (float16[1,3,12,12] y)
    <int64[8] pads = {0, 0, 2, 2, 0, 0, 2, 2}>
    {
        [pad] y = Pad <mode = "reflect"> (x, pads)
    }
    """)
    assert rewrite(model, value=0.5).matches == 1
    pad = model.graph.node[0]
    value = Graph(model).const_value(pad.input[2])
    assert value.dtype == np.float16 and float(value) == 0.5
    onnx.checker.check_model(model, full_check=True)
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float16)
    y = run(model, {"x": x})[0]
    assert y.dtype == np.float16 and (y[:, :, :2, :] == np.float16(0.5)).all()


def test_value_declines_when_the_dtype_is_unknown():
    """Nothing declares the Relu output's dtype (no value_info): the constant cannot be typed."""
    model = parse("""
    <ir_version: 8, opset_import: ["" : 11]>
    g (float[1,3,8,8] x) => (float[1,3,12,12] y)
    <int64[8] pads = {0, 0, 2, 2, 0, 0, 2, 2}>
    {
        r = Relu (x)
        [pad] y = Pad <mode = "reflect"> (r, pads)
    }
    """)
    result = rewrite(model, value=0.5)
    assert result.matches == 0
    assert "dtype of 'r' is not declared" in result.declined[0][1]
    assert rewrite(model).matches == 1            # value 0 needs no constant: it fires


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_a_non_finite_pad_value_is_refused_at_the_option(value: float):
    from gancc.passes.registry import OptionError, make_pass

    with pytest.raises(OptionError, match="option 'value' is"):
        make_pass("reflect-pad-to-constant", {"value": value})
