"""fuse-pad-into-conv: Pad(zero) + Conv(pads) -> Conv(pads + pad amounts), an exact rewrite.

Exact means the rewritten graph computes what the original computed: every positive case
compares the two under onnxruntime on seeded random inputs.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx.parser
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from gancc.graph import Graph, provenance
from gancc.passes import registry
from gancc.passes.base import PassResult, run_rewrite

import rewrite_testing as shared  # noqa: E402
from rewrite_testing import parse, run  # noqa: E402

NAME = "fuse-pad-into-conv"


def rewrite(model: onnx.ModelProto, **options) -> PassResult:
    return shared.rewrite(model, NAME, **options)


def random_feeds(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded standard-normal values for every float graph input (shapes must be static)."""
    rng = np.random.default_rng(seed)
    out = {}
    for vi in model.graph.input:
        shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        out[vi.name] = rng.standard_normal(shape, dtype=np.float32)
    return out


def max_diff(a: onnx.ModelProto, b: onnx.ModelProto, seed: int = 0) -> float:
    feeds = random_feeds(b, seed)
    return max(float(np.abs(x - y).max()) for x, y in zip(run(a, feeds), run(b, feeds)))


def copy(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


# Pad 1/2 (top/left) and 3/1 (bottom/right) in front of a Conv that already pads 1,1,0,2.
FUSABLE = """
<ir_version: 8, opset_import: ["" : 11]>
fusable (float[1,2,6,6] x, float[3,2,3,3] w, float[3] b) => (float[1,3,9,10] y)
<int64[8] pads = {0, 0, 1, 2, 0, 0, 3, 1}>
{
    [pad] p = Pad <mode = "constant"> (x, pads)
    [conv] y = Conv <pads = [1, 1, 0, 2]> (p, w, b)
}
"""


def test_zero_pad_folds_into_conv_pads():
    model = parse(FUSABLE)
    original = copy(model)

    result = rewrite(model)

    assert (result.changed, result.matches, result.nodes_removed) == (True, 1, 1)
    assert [n.op_type for n in model.graph.node] == ["Conv"]
    (conv,) = model.graph.node
    assert list(conv.input) == ["x", "w", "b"]
    assert Graph.attr(conv, "pads") == [1 + 1, 1 + 2, 0 + 3, 2 + 1]
    assert provenance(conv) == [NAME]
    assert "pads" not in {t.name for t in model.graph.initializer}   # dropped with the Pad
    onnx.checker.check_model(model, full_check=True)
    assert max_diff(model, original) <= 1e-5


def test_explicit_zero_constant_value_and_conv_without_pads():
    model = parse("""
    <ir_version: 8, opset_import: ["" : 11]>
    g (float[1,2,6,6] x, float[3,2,3,3] w) => (float[1,3,6,6] y)
    <int64[8] pads = {0, 0, 1, 1, 0, 0, 1, 1}, float zero = {0.0}>
    {
        p = Pad <mode = "constant"> (x, pads, zero)
        y = Conv (p, w)
    }
    """)
    original = copy(model)
    assert rewrite(model).matches == 1
    (conv,) = model.graph.node
    assert Graph.attr(conv, "pads") == [1, 1, 1, 1]
    assert max_diff(model, original) <= 1e-5


def test_opset_10_pad_with_attributes_fuses():
    model = parse("""
    <ir_version: 8, opset_import: ["" : 10]>
    g (float[1,2,6,6] x, float[3,2,3,3] w) => (float[1,3,3,3] y)
    {
        p = Pad <mode = "constant", pads = [0, 0, 1, 0, 0, 0, 0, 1], value = 0.0> (x)
        y = Conv <strides = [2, 2]> (p, w)
    }
    """)
    original = copy(model)
    assert rewrite(model).matches == 1
    assert Graph.attr(model.graph.node[0], "pads") == [1, 0, 0, 1]
    assert max_diff(model, original) <= 1e-5


def test_one_pad_read_by_two_convs_fuses_into_both():
    model = parse("""
    <ir_version: 8, opset_import: ["" : 11]>
    shared (float[1,2,6,6] x, float[3,2,3,3] w1, float[2,2,1,1] w2)
        => (float[1,3,6,6] y1, float[1,2,5,5] y2)
    <int64[8] pads = {0, 0, 1, 1, 0, 0, 1, 1}>
    {
        p = Pad (x, pads)
        [c1] y1 = Conv (p, w1)
        [c2] y2 = Conv <pads = [1, 1, 1, 1], strides = [2, 2]> (p, w2)
    }
    """)
    original = copy(model)

    result = rewrite(model)

    assert result.matches == 1 and result.nodes_removed == 1
    convs = {n.name: n for n in model.graph.node}
    assert sorted(convs) == ["c1", "c2"]
    assert Graph.attr(convs["c1"], "pads") == [1, 1, 1, 1]
    assert Graph.attr(convs["c2"], "pads") == [2, 2, 2, 2]
    assert all(n.input[0] == "x" and provenance(n) == [NAME] for n in convs.values())
    assert max_diff(model, original) <= 1e-5


def test_conv_1d_fuses():
    model = parse("""
    <ir_version: 8, opset_import: ["" : 11]>
    g (float[1,2,7] x, float[3,2,3] w) => (float[1,3,9] y)
    <int64[6] pads = {0, 0, 2, 0, 0, 2}>
    {
        p = Pad (x, pads)
        y = Conv <pads = [0, 0]> (p, w)
    }
    """)
    original = copy(model)
    assert rewrite(model).matches == 1
    assert Graph.attr(model.graph.node[0], "pads") == [2, 2]
    assert max_diff(model, original) <= 1e-5


# -- must not fire ---------------------------------------------------------------------------

def graph(body: str, inputs: str = "float[1,2,6,6] x, float[3,2,3,3] w",
          outputs: str = "float[1,3,6,6] y", pads: str = "0, 0, 1, 1, 0, 0, 1, 1",
          extra_init: str = "", opset: int = 11) -> str:
    return f"""
    <ir_version: 8, opset_import: ["" : {opset}]>
    g ({inputs}) => ({outputs})
    <int64[{len(pads.split(','))}] pads = {{{pads}}}{extra_init}>
    {{
        {body}
    }}
    """


DECLINES = [
    ("reflect-mode", graph('[pad] p = Pad <mode = "reflect"> (x, pads)\n y = Conv (p, w)'),
     {}, "mode is 'reflect', not 'constant'"),
    ("non-zero-value", graph("[pad] p = Pad (x, pads, cv)\n y = Conv (p, w)",
                             extra_init=", float cv = {0.5}"),
     {}, "pad value is 0.5, not 0"),
    ("value-at-run-time", graph("[pad] p = Pad (x, pads, cv)\n y = Conv (p, w)",
                                inputs="float[1,2,6,6] x, float[3,2,3,3] w, float cv"),
     {}, "pad value is None, not 0"),
    ("channel-axis", graph("[pad] p = Pad (x, pads)\n y = Conv (p, w)",
                           inputs="float[1,2,6,6] x, float[3,4,3,3] w",
                           pads="0, 1, 1, 1, 0, 1, 1, 1"),
     {}, "pads touch the batch or channel axis"),
    ("negative-pads", graph("[pad] p = Pad (x, pads)\n y = Conv (p, w)",
                            outputs="float[1,3,6,2] y", pads="0, 0, 1, -1, 0, 0, 1, -1"),
     {}, "negative pads (cropping) cannot become Conv pads"),
    ("read-by-conv-transpose",
     graph("[pad] p = Pad (x, pads)\n [deconv] y = ConvTranspose (p, w)",
           inputs="float[1,2,6,6] x, float[2,3,3,3] w", outputs="float[1,3,10,10] y"),
     {}, "reader 'deconv' is ConvTranspose, not Conv"),
    ("also-read-by-relu",
     graph("[pad] p = Pad (x, pads)\n y = Conv (p, w)\n [relu] r = Relu (p)",
           outputs="float[1,3,6,6] y, float[1,2,8,8] r"),
     {}, "reader 'relu' is Relu, not Conv"),
    ("pad-read-as-weight",
     graph("[pad] p = Pad (w, pads)\n [conv] y = Conv (x, p)",
           inputs="float[1,2,6,6] x, float[3,2,1,1] w", outputs="float[1,3,4,4] y",
           pads="0, 0, 1, 1, 0, 0, 1, 1"),
     {}, "reader 'conv' reads the Pad as a weight, not as data"),
    ("pad-is-graph-output", graph("[pad] p = Pad (x, pads)\n y = Conv (p, w)",
                                  outputs="float[1,3,6,6] y, float[1,2,8,8] p"),
     {}, "the Pad output is a graph output"),
    ("auto-pad-same-upper",
     graph('[pad] p = Pad (x, pads)\n [conv] y = Conv <auto_pad = "SAME_UPPER"> (p, w)',
           outputs="float[1,3,8,8] y"),
     {}, "reader 'conv' uses auto_pad"),
    ("max-pad-exceeded",
     graph("[pad] p = Pad (x, pads)\n y = Conv <pads = [1, 1, 1, 1]> (p, w)",
           outputs="float[1,3,8,8] y"),
     {"max_pad": 1}, "fused pads [2, 2, 2, 2] exceed max_pad=1"),
    ("pads-at-run-time", """
     <ir_version: 8, opset_import: ["" : 11]>
     g (float[1,2,6,6] x, float[3,2,3,3] w, int64[8] pads) => (float[1,3,?,?] y)
     {
         [pad] p = Pad (x, pads)
         y = Conv (p, w)
     }
     """, {}, "pads are computed at run time, not a constant"),
    ("axes-input-opset-18", graph("[pad] p = Pad (x, pads, , axes)\n y = Conv (p, w)",
                                  outputs="float[1,3,4,6] y", pads="1, 1",
                                  extra_init=", int64[1] axes = {3}", opset=18),
     {}, "the Pad has an axes input; only pads over every axis are fused"),
]


@pytest.mark.parametrize("text, options, reason", [c[1:] for c in DECLINES],
                         ids=[c[0] for c in DECLINES])
def test_must_not_fire(text: str, options: dict, reason: str):
    model = parse(text)
    before = model.SerializeToString()

    result = rewrite(model, **options)

    assert (result.changed, result.matches) == (False, 0)
    assert result.declined == [("pad", reason)]
    assert model.SerializeToString() == before


def test_unread_pad_is_left_alone():
    model = parse(graph("[pad] p = Pad (x, pads)\n y = Conv (x, w)",
                        outputs="float[1,3,4,4] y"))
    result = rewrite(model)
    assert result.declined == [("pad", "the Pad output is not read")]


def test_max_pad_allows_pads_up_to_the_limit():
    text = graph("p = Pad (x, pads)\n y = Conv <pads = [1, 1, 1, 1]> (p, w)",
                 outputs="float[1,3,8,8] y")
    model = parse(text)
    assert rewrite(model, max_pad=2).matches == 1
    assert Graph.attr(model.graph.node[0], "pads") == [2, 2, 2, 2]
    assert max_diff(model, parse(text)) <= 1e-5


# -- property: exact and idempotent on small random Pad + Conv graphs ------------------------

def pad_conv_model(channels_in: int, channels_out: int, height: int, width: int,
                   pad: list[int], conv_pads: list[int], kernel: tuple[int, int],
                   stride: int, seed: int) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((channels_out, channels_in, *kernel), dtype=np.float32)
    bias = rng.standard_normal(channels_out, dtype=np.float32)
    top, left, bottom, right = pad
    out_h = (height + top + bottom + conv_pads[0] + conv_pads[2] - kernel[0]) // stride + 1
    out_w = (width + left + right + conv_pads[1] + conv_pads[3] - kernel[1]) // stride + 1
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"], name="pad", mode="constant"),
        helper.make_node("Conv", ["p", "w", "b"], ["y"], name="conv", pads=conv_pads,
                         strides=[stride, stride], kernel_shape=list(kernel)),
    ]
    g = helper.make_graph(
        nodes, "random_pad_conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels_in, height, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                       [1, channels_out, out_h, out_w])],
        [numpy_helper.from_array(np.array([0, 0, top, left, 0, 0, bottom, right], np.int64),
                                 "pads"),
         numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)], ir_version=8)
    onnx.checker.check_model(model, full_check=True)
    return model


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(channels_in=st.integers(1, 4), channels_out=st.integers(1, 4),
       height=st.integers(5, 9), width=st.integers(5, 9),
       pad=st.lists(st.integers(0, 3), min_size=4, max_size=4),
       conv_pads=st.lists(st.integers(0, 2), min_size=4, max_size=4),
       kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       stride=st.integers(1, 2), seed=st.integers(0, 2**16))
def test_fusion_is_exact_and_idempotent(channels_in, channels_out, height, width, pad,
                                        conv_pads, kernel, stride, seed):
    model = pad_conv_model(channels_in, channels_out, height, width, pad, conv_pads, kernel,
                           stride, seed)
    original = copy(model)

    result = rewrite(model)                   # VerifyOptions(idempotent=True) checks a rerun

    assert result.matches == 1
    (conv,) = model.graph.node
    assert conv.input[0] == "x"
    assert Graph.attr(conv, "pads") == [conv_pads[0] + pad[0], conv_pads[1] + pad[1],
                                        conv_pads[2] + pad[2], conv_pads[3] + pad[3]]
    fused = copy(model)
    assert run_rewrite(registry.make_pass(NAME), model).matches == 0
    assert model == fused                     # applying it twice equals applying it once
    feeds = {"x": np.random.default_rng(seed + 1).standard_normal(
        (1, channels_in, height, width), dtype=np.float32)}
    (want,), (got,) = run(original, feeds), run(model, feeds)
    assert got.shape == want.shape
    assert float(np.abs(got - want).max()) <= 1e-5


@pytest.mark.parametrize("max_pad", [-1, 256, 10**6])
def test_max_pad_out_of_range_is_refused_at_the_option(max_pad: int):
    from gancc.passes.registry import OptionError, make_pass

    with pytest.raises(OptionError, match="option 'max_pad' is"):
        make_pass("fuse-pad-into-conv", {"max_pad": max_pad})
