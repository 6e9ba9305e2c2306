"""reflect-pad-exact: Pad(mode="reflect") -> Slice + Concat per padded axis, an exact rewrite.

Exact here means bit-identical: the lowering only copies elements, so every positive case
asserts a max abs difference of 0 under onnxruntime, and agreement with numpy's reflect pad.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from rewrite_testing import copy, max_diff, op_types, parse, random_feeds, rewrite, run

from gancc.graph import Graph, provenance

NAME = "reflect-pad-exact"


def pad_conv(pads: str = "0, 0, 2, 3, 0, 0, 1, 2", out: str = "1,4,9,11",
             opset: int = 11) -> str:
    return f"""
    <ir_version: 8, opset_import: ["" : {opset}]>
    pad_conv (float[1,3,8,8] x, float[4,3,3,3] w) => (float[{out}] y)
    <int64[8] pads = {{{pads}}}>
    {{
        [pad] p = Pad <mode = "reflect"> (x, pads)
        [conv] y = Conv (p, w)
    }}
    """


def test_reflect_pad_becomes_slices_and_concats_bit_identical():
    model = parse(pad_conv())
    original = copy(model)

    result = rewrite(model, NAME)

    assert (result.changed, result.matches, result.declined) == (True, 1, [])
    # H: 2 rows before, 1 after; W: 3 before, 2 after; one Concat per axis
    assert op_types(model) == ["Slice"] * 3 + ["Concat"] + ["Slice"] * 5 + ["Concat", "Conv"]
    assert "Pad" not in op_types(model)
    concats = [n for n in model.graph.node if n.op_type == "Concat"]
    assert [Graph.attr(n, "axis") for n in concats] == [2, 3]
    assert concats[-1].output[0] == "p"                     # the Pad's tensor, same name
    assert all(provenance(n) == [NAME] for n in model.graph.node if n.op_type != "Conv")
    for node in model.graph.node:
        if node.op_type == "Slice":
            assert len(node.input) == 4                     # no steps: unit steps only
    onnx.checker.check_model(model, full_check=True)
    assert max_diff(model, original) == 0.0


def test_matches_numpy_reflect_pad():
    model = parse("""
    <ir_version: 8, opset_import: ["" : 11]>
    g (float[2,3,5,6] x) => (float[2,3,9,7] y)
    <int64[8] pads = {0, 0, 4, 0, 0, 0, 0, 1}>
    {
        [pad] y = Pad <mode = "reflect"> (x, pads)
    }
    """)
    rewrite(model, NAME)
    x = random_feeds(model)["x"]
    (got,) = run(model, {"x": x})
    want = np.pad(x, [(0, 0), (0, 0), (4, 0), (0, 1)], mode="reflect")
    assert np.array_equal(got, want)
    assert model.graph.output[0].name == model.graph.node[-1].output[0] == "y"   # graph output


def test_many_pads_get_unique_names():
    # five reflect Pads named alike (and unnamed): the lowering must not clash on names
    body = "\n".join(f"p{i} = Pad <mode = \"reflect\"> ({'x' if i == 0 else f'r{i - 1}'}, one)\n"
                     f"[relu{i}] r{i} = Relu (p{i})" for i in range(5))
    model = parse(f"""
    <ir_version: 8, opset_import: ["" : 11]>
    g (float[1,2,6,6] x) => (float[1,2,16,16] r4)
    <int64[8] one = {{0, 0, 1, 1, 0, 0, 1, 1}}>
    {{
        {body}
    }}
    """)
    original = copy(model)

    result = rewrite(model, NAME)

    assert result.matches == 5
    names = [n.name for n in model.graph.node]
    assert len(names) == len(set(names)) and all(names)
    tensors = [o for n in model.graph.node for o in n.output]
    inits = [t.name for t in model.graph.initializer]
    assert len(set(tensors) | set(inits)) == len(tensors) + len(inits)
    assert max_diff(model, original) == 0.0


def test_opset_10_pads_as_attributes():
    model = parse("""
    <ir_version: 8, opset_import: ["" : 10]>
    g (float[1,2,5,5] x) => (float[1,2,7,9] y)
    {
        [pad] y = Pad <mode = "reflect", pads = [0, 0, 1, 2, 0, 0, 1, 2]> (x)
    }
    """)
    original = copy(model)
    assert rewrite(model, NAME).matches == 1
    assert set(op_types(model)) == {"Slice", "Concat"}
    assert max_diff(model, original) == 0.0


def test_shape_from_inference_when_not_declared():
    # the Pad reads a Conv output that has no value_info: shape inference supplies its size
    model = parse("""
    <ir_version: 8, opset_import: ["" : 11]>
    g (float[1,3,8,8] x, float[2,3,3,3] w) => (float[1,2,10,10] y)
    <int64[8] pads = {0, 0, 2, 2, 0, 0, 2, 2}>
    {
        c = Conv (x, w)
        [pad] y = Pad <mode = "reflect"> (c, pads)
    }
    """)
    assert not model.graph.value_info
    original = copy(model)
    assert rewrite(model, NAME).matches == 1
    assert max_diff(model, original) == 0.0


# -- must not fire ---------------------------------------------------------------------------

DECLINES = [
    ("constant-mode", pad_conv().replace('"reflect"', '"constant"'),
     "mode is 'constant', not 'reflect'"),
    ("negative-pads", pad_conv(pads="0, 0, 1, -1, 0, 0, 1, -1", out="1,4,8,4"),
     "negative pads (cropping) are not lowered"),
    ("all-zero", pad_conv(pads="0, 0, 0, 0, 0, 0, 0, 0", out="1,4,6,6"), "all pads are zero"),
    ("pad-equals-dim", pad_conv(pads="0, 0, 8, 0, 0, 0, 0, 0", out="1,4,14,6"),
     "pad 8 on axis 2 is not smaller than its size 8"),
    ("pads-at-run-time", """
     <ir_version: 8, opset_import: ["" : 11]>
     g (float[1,3,8,8] x, int64[8] pads) => (float[1,3,?,?] y)
     {
         [pad] y = Pad <mode = "reflect"> (x, pads)
     }
     """, "pads are computed at run time, not a constant"),
    ("unknown-dim", """
     <ir_version: 8, opset_import: ["" : 11]>
     g (float[1,3,H,8] x) => (float[1,3,?,8] y)
     <int64[8] pads = {0, 0, 1, 0, 0, 0, 1, 0}>
     {
         [pad] y = Pad <mode = "reflect"> (x, pads)
     }
     """, "the size of axis 2 of 'x' is unknown"),
    ("opset-9", """
     <ir_version: 8, opset_import: ["" : 9]>
     g (float[1,3,8,8] x) => (float[1,3,10,8] y)
     {
         [pad] y = Pad <mode = "reflect", pads = [0, 0, 1, 0, 0, 0, 1, 0]> (x)
     }
     """, "opset 9: Slice takes starts and ends as inputs from 10"),
    ("axes-input-opset-18", """
     <ir_version: 8, opset_import: ["" : 18]>
     g (float[1,3,8,8] x) => (float[1,3,8,10] y)
     <int64[2] pads = {1, 1}, int64[1] axes = {3}>
     {
         [pad] y = Pad <mode = "reflect"> (x, pads, , axes)
     }
     """, "the Pad has an axes input; only pads over every axis are lowered"),
]


@pytest.mark.parametrize("text, reason", [c[1:] for c in DECLINES], ids=[c[0] for c in DECLINES])
def test_must_not_fire(text: str, reason: str):
    model = parse(text)
    before = model.SerializeToString()

    result = rewrite(model, NAME)

    assert (result.changed, result.matches) == (False, 0)
    assert result.declined == [("pad", reason)]
    assert model.SerializeToString() == before


# -- property: bit-identical and idempotent on random reflect pads ---------------------------

@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(data=st.data(), rank=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_lowering_is_bit_identical(data, rank, seed):
    dims = data.draw(st.lists(st.integers(1, 5), min_size=rank, max_size=rank))
    # reflect allows pads up to size - 1 on each side
    pads = [data.draw(st.integers(0, d - 1)) for d in dims] + \
           [data.draw(st.integers(0, d - 1)) for d in dims]
    if not any(pads):
        pads[0 if dims[0] > 1 else -1] = min(1, dims[0 if dims[0] > 1 else -1] - 1)
    out_dims = [d + pads[i] + pads[rank + i] for i, d in enumerate(dims)]
    g = helper.make_graph(
        [helper.make_node("Pad", ["x", "pads"], ["y"], name="pad", mode="reflect")], "prop",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_dims)],
        [numpy_helper.from_array(np.array(pads, np.int64), "pads")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)], ir_version=8)
    x = np.random.default_rng(seed).standard_normal(dims).astype(np.float32)
    want = np.pad(x, list(zip(pads[:rank], pads[rank:])), mode="reflect")

    result = rewrite(model, NAME)

    if not any(pads):
        assert result.matches == 0
        return
    assert result.matches == 1 and "Pad" not in op_types(model)
    (got,) = run(model, {"x": x})
    assert np.array_equal(got, want)
