"""fuse-pad-into-avgpool: Pad(zero) + AveragePool(count_include_pad=1) -> AveragePool(pads),
an exact rewrite, and the count_include_pad=0 case it must refuse (a pool with pads of its own:
that fusion changes the border averages; the test measures by how much)."""

from __future__ import annotations

import onnx
import pytest
from rewrite_testing import copy, max_diff, op_types, parse, rewrite

from gancc.graph import Graph, provenance

NAME = "fuse-pad-into-avgpool"


def pad_pool(include: int = 1, pads: str = "0, 0, 1, 2, 0, 0, 1, 0", pool_pads: str = "1, 0, 0, 1",
             out: str = "1,2,4,4", extra: str = "", opset: int = 11) -> str:
    return f"""
    <ir_version: 8, opset_import: ["" : {opset}]>
    g (float[1,2,6,6] x) => (float[{out}] y)
    <int64[8] pads = {{{pads}}}>
    {{
        [pad] p = Pad (x, pads)
        [pool] y = AveragePool <kernel_shape = [3, 3], strides = [2, 2], pads = [{pool_pads}],
                               count_include_pad = {include}{extra}> (p)
    }}
    """


def test_zero_pad_folds_into_pool_pads():
    model = parse(pad_pool())
    original = copy(model)

    result = rewrite(model, NAME)

    assert (result.matches, result.nodes_removed) == (1, 1)
    assert op_types(model) == ["AveragePool"]
    (pool,) = model.graph.node
    assert list(pool.input) == ["x"]
    assert Graph.attr(pool, "pads") == [2, 2, 1, 1]
    assert Graph.attr(pool, "count_include_pad") == 1
    assert provenance(pool) == [NAME]
    onnx.checker.check_model(model, full_check=True)
    assert max_diff(model, original) <= 1e-6


def test_opset_10_attribute_pads():
    text = """
    <ir_version: 8, opset_import: ["" : 10]>
    g (float[1,2,6,6] x) => (float[1,2,6,6] y)
    {
        [pad] p = Pad <pads = [0, 0, 1, 1, 0, 0, 1, 1]> (x)
        [pool] y = AveragePool <kernel_shape = [3, 3], count_include_pad = 1> (p)
    }
    """
    model = parse(text)
    assert rewrite(model, NAME).matches == 1
    assert Graph.attr(model.graph.node[0], "pads") == [1, 1, 1, 1]
    assert max_diff(model, parse(text)) <= 1e-6


def test_count_include_pad_0_without_own_pads_fuses_as_count_include_pad_1():
    text = pad_pool(include=0, pool_pads="0, 0, 0, 0", out="1,2,3,3")
    model = parse(text)
    assert rewrite(model, NAME).matches == 1
    (pool,) = model.graph.node
    assert Graph.attr(pool, "pads") == [1, 2, 1, 0]
    assert Graph.attr(pool, "count_include_pad") == 1
    assert max_diff(model, parse(text)) <= 1e-6


def test_count_include_pad_0_with_own_pads_declines_and_fusing_it_would_be_wrong():
    text = pad_pool(include=0)
    model = parse(text)

    result = rewrite(model, NAME)

    assert result.matches == 0
    assert result.declined == [("pad", "reader 'pool' has count_include_pad=0 and pads of its "
                                       "own: border averages would change")]
    # what onnxoptimizer's fusion would make: the same pool with the pads added
    naive = parse(text.replace("(p)", "(x)").replace("pads = [1, 0, 0, 1]", "pads = [2, 2, 1, 1]")
                  .replace("[pad] p = Pad (x, pads)", ""))
    assert max_diff(naive, model) > 0.05


DECLINES = [
    ("reflect", pad_pool().replace("Pad (x, pads)", 'Pad <mode = "reflect"> (x, pads)'), {},
     "mode is 'reflect', not 'constant'"),
    ("ceil-mode", pad_pool(extra=", ceil_mode = 1"), {},
     "reader 'pool' has ceil_mode=1"),
    ("channel-axis", pad_pool(pads="0, 1, 0, 0, 0, 0, 0, 0", pool_pads="0, 0, 0, 0",
                              out="1,3,2,2"), {}, "pads touch the batch or channel axis"),
    ("reaches-kernel", pad_pool(pads="0, 0, 2, 0, 0, 0, 0, 0", out="1,2,4,3"), {},
     "fused pads [3, 0, 0, 1] of reader 'pool' reach its kernel [3, 3]"),
    ("max-pool-reader", """
     <ir_version: 8, opset_import: ["" : 11]>
     g (float[1,2,6,6] x) => (float[1,2,6,6] y)
     <int64[8] pads = {0, 0, 1, 1, 0, 0, 1, 1}>
     {
         [pad] p = Pad (x, pads)
         [pool] y = MaxPool <kernel_shape = [3, 3]> (p)
     }
     """, {}, "reader 'pool' is MaxPool, not AveragePool"),
]


@pytest.mark.parametrize("text, options, reason", [c[1:] for c in DECLINES],
                         ids=[c[0] for c in DECLINES])
def test_must_not_fire(text: str, options: dict, reason: str):
    model = parse(text)
    before = model.SerializeToString()
    result = rewrite(model, NAME, **options)
    assert (result.changed, result.matches) == (False, 0)
    assert result.declined == [("pad", reason)]
    assert model.SerializeToString() == before
