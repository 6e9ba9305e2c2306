"""fold-batchnorm-into-conv: Conv/Gemm + BatchNormalization -> Conv/Gemm with folded weight
and bias, an exact rewrite (within 1e-5 under onnxruntime: the folding reorders float
arithmetic)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from rewrite_testing import copy, max_diff, op_types, parse, rewrite

from gancc.graph import Graph, provenance

NAME = "fold-batchnorm-into-conv"


def bn_inits(channels: int, rng: np.random.Generator) -> list[onnx.TensorProto]:
    return [numpy_helper.from_array(rng.uniform(0.5, 1.5, channels).astype(np.float32), "scale"),
            numpy_helper.from_array(rng.standard_normal(channels).astype(np.float32), "beta"),
            numpy_helper.from_array(rng.standard_normal(channels).astype(np.float32), "mean"),
            numpy_helper.from_array(rng.uniform(0.1, 2.0, channels).astype(np.float32), "var")]


def conv_bn(c_in: int = 4, c_out: int = 6, group: int = 2, kernel: int = 3, bias: bool = True,
            size: int = 7, eps: float = 1e-5, seed: int = 0, opset: int = 11) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    out = size - kernel + 1
    inits = [numpy_helper.from_array(
        rng.standard_normal((c_out, c_in // group, kernel, kernel)).astype(np.float32), "w")]
    conv_inputs = ["x", "w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(c_out).astype(np.float32), "b"))
        conv_inputs.append("b")
    nodes = [helper.make_node("Conv", conv_inputs, ["c"], name="conv", group=group),
             helper.make_node("BatchNormalization", ["c", "scale", "beta", "mean", "var"], ["y"],
                              name="bn", epsilon=eps)]
    g = helper.make_graph(
        nodes, "conv_bn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, c_in, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, c_out, out, out])],
        inits + bn_inits(c_out, rng))
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    onnx.checker.check_model(model, full_check=True)
    return model


def test_batchnorm_folds_into_conv():
    model = conv_bn()
    original = copy(model)

    result = rewrite(model, NAME)

    assert (result.matches, result.nodes_removed) == (1, 1)
    assert op_types(model) == ["Conv"]
    (conv,) = model.graph.node
    assert list(conv.output) == ["y"] and conv.input[0] == "x"
    assert Graph.attr(conv, "group") == 2 and provenance(conv) == [NAME]
    assert {t.name for t in model.graph.initializer} == {conv.input[1], conv.input[2]}
    onnx.checker.check_model(model, full_check=True)
    assert max_diff(model, original) <= 1e-5


def test_conv_without_bias_gets_one():
    model = conv_bn(bias=False, group=1)
    original = copy(model)
    assert rewrite(model, NAME).matches == 1
    assert len(model.graph.node[0].input) == 3
    assert max_diff(model, original) <= 1e-5


@pytest.mark.parametrize("trans_b, c_shape",
                         [(0, "6"), (1, "6"), (1, "1,6"), (0, "3,1"), (0, None)])
def test_batchnorm_folds_into_gemm(trans_b: int, c_shape: str | None):
    w_shape = "6,5" if trans_b else "5,6"
    c_decl = f", float[{c_shape}] c" if c_shape else ""
    c_arg = ", c" if c_shape else ""
    model = parse(f"""
    <ir_version: 8, opset_import: ["" : 11]>
    g (float[3,5] a, float[{w_shape}] w{c_decl}, float[6] scale, float[6] beta, float[6] mean,
       float[6] var) => (float[3,6] y)
    {{
        [gemm] m = Gemm <transB = {trans_b}, alpha = 0.5, beta = 2.0> (a, w{c_arg})
        [bn] y = BatchNormalization (m, scale, beta, mean, var)
    }}
    """)
    # make the weights constants: the parser's graph inputs become initializers
    rng = np.random.default_rng(1)
    names = ["w", "c", "scale", "beta", "mean", "var"]
    for vi in list(model.graph.input):
        if vi.name in names:
            dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
            low = 0.5 if vi.name in ("scale", "var") else -1.0
            model.graph.initializer.append(numpy_helper.from_array(
                rng.uniform(low, 1.5, dims).astype(np.float32), vi.name))
            model.graph.input.remove(vi)
    original = copy(model)

    assert rewrite(model, NAME).matches == 1

    (gemm,) = model.graph.node
    assert gemm.op_type == "Gemm" and list(gemm.output) == ["y"]
    assert Graph.attr(gemm, "beta") == 1.0 and Graph.attr(gemm, "alpha") == 0.5
    assert max_diff(model, original) <= 1e-5


# -- must not fire ---------------------------------------------------------------------------

def conv_bn_text(extra_out: str = "", extra_body: str = "", stats_input: str = "",
                 producer: str = "[conv] c = Conv (x, w)") -> str:
    stats_init = "" if stats_input else ", float[2] mean = {0.1, 0.2}"
    return f"""
    <ir_version: 8, opset_import: ["" : 11]>
    g (float[1,2,4,4] x{stats_input}) => (float[1,2,4,4] y{extra_out})
    <float[2,2,1,1] w = {{1, 2, 3, 4}}, float[2] s = {{1, 2}}, float[2] b = {{0, 1}},
     float[2] v = {{1, 1}}{stats_init}>
    {{
        {producer}
        [bn] y = BatchNormalization (c, s, b, mean, v)
        {extra_body}
    }}
    """


DECLINES = [
    ("conv-output-read-elsewhere", conv_bn_text(", float[1,2,4,4] r", "[relu] r = Relu (c)"),
     "the output of 'conv' has other readers"),
    ("conv-output-is-graph-output", conv_bn_text(", float[1,2,4,4] c"),
     "the output of 'conv' has other readers"),
    ("stats-not-constant", conv_bn_text(stats_input=", float[2] mean"),
     "its scale, bias, mean or variance is not a constant"),
    ("after-relu", conv_bn_text(producer="[relu] c = Relu (x)"),
     "its input comes from Relu, not Conv or Gemm"),
    ("after-conv-transpose", conv_bn_text(producer="[deconv] c = ConvTranspose (x, w)"),
     "its input comes from ConvTranspose, not Conv or Gemm"),
]


@pytest.mark.parametrize("text, reason", [c[1:] for c in DECLINES], ids=[c[0] for c in DECLINES])
def test_must_not_fire(text: str, reason: str):
    model = parse(text)
    before = model.SerializeToString()
    result = rewrite(model, NAME)
    assert (result.changed, result.matches) == (False, 0)
    assert result.declined == [("bn", reason)]
    assert model.SerializeToString() == before


def test_shared_weight_is_not_modified():
    model = parse(conv_bn_text(", float[1,2,4,4] z", "[other] z = Conv (x, w)"))
    original = copy(model)
    assert rewrite(model, NAME).matches == 1
    other = next(n for n in model.graph.node if n.name == "other")
    assert other.input[1] == "w"
    assert max_diff(model, original) <= 1e-5


# -- property: exact on random Conv + BN ------------------------------------------------------

@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(group=st.integers(1, 3), per_group_in=st.integers(1, 3), per_group_out=st.integers(1, 3),
       kernel=st.integers(1, 3), bias=st.booleans(), eps=st.sampled_from([1e-5, 1e-3, 0.1]),
       seed=st.integers(0, 2**16))
def test_folding_is_exact(group, per_group_in, per_group_out, kernel, bias, eps, seed):
    model = conv_bn(c_in=group * per_group_in, c_out=group * per_group_out, group=group,
                    kernel=kernel, bias=bias, size=5, eps=eps, seed=seed)
    original = copy(model)
    assert rewrite(model, NAME).matches == 1
    assert op_types(model) == ["Conv"]
    assert max_diff(model, original, seed=seed) <= 1e-5
