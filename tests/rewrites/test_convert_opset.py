"""convert-opset: the graph at another ai.onnx opset through onnx.version_converter, exact."""

from __future__ import annotations

import onnx
import pytest
from rewrite_testing import copy, max_diff, op_types, parse, rewrite

from gancc.errors import GraphError
from gancc.graph import Graph, provenance
from gancc.passes import registry
from gancc.passes.registry import OptionError

NAME = "convert-opset"

OPSET_13 = """
<ir_version: 8, opset_import: ["" : 13]>
g (float[1,3,1,4] x) => (float[3,2] a, float[3,2] b)
<int64[1] axes = {0}, int64[1] ax1 = {1}, int64[2] split = {2, 2}>
{
    [sq0] s = Squeeze (x, axes)
    [sq1] y = Squeeze (s, ax1)
    [split] a, b = Split <axis = 1> (y, split)
}
"""


def opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def test_opset_13_inputs_become_opset_11_attributes():
    model = parse(OPSET_13)
    original = copy(model)

    result = rewrite(model, NAME)

    assert result.matches >= 1 and opset(model) == 11
    assert op_types(model) == ["Squeeze", "Squeeze", "Split"]
    nodes = {n.name: n for n in model.graph.node}
    assert Graph.attr(nodes["sq0"], "axes") == [0] and list(nodes["sq0"].input) == ["x"]
    assert Graph.attr(nodes["split"], "split") == [2, 2]
    assert provenance(nodes["sq0"]) == [NAME]
    onnx.checker.check_model(model, full_check=True)
    assert max_diff(model, original) == 0.0


def test_opset_11_up_to_13():
    model = parse("""
    <ir_version: 8, opset_import: ["" : 11]>
    g (float[1,3,1,4] x) => (float[3,4] y)
    {
        [sq] s = Squeeze <axes = [0, 2]> (x)
        [relu] y = Relu (s)
    }
    """)
    original = copy(model)
    assert rewrite(model, NAME, target=13).matches >= 1
    assert opset(model) == 13
    squeeze = model.graph.node[0]
    assert Graph.attr(squeeze, "axes") is None and len(squeeze.input) == 2    # now an input
    assert provenance(model.graph.node[-1]) == []                              # Relu unchanged
    assert max_diff(model, original) == 0.0


def test_does_not_fire_at_the_target_opset():
    model = parse(OPSET_13)
    before = model.SerializeToString()
    result = rewrite(model, NAME, target=13)
    assert (result.changed, result.matches) == (False, 0)
    assert result.declined == [("(graph)", "the model is at opset 13 already")]
    assert model.SerializeToString() == before


@pytest.mark.parametrize("text, node, op", [
    ("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2,4] x, float[4] s) => (float[2,4] y)
    {
        [ln] y = LayerNormalization (x, s)
    }
    """, "ln", "LayerNormalization"),
    # measured with onnx 1.23: no down adapter for Relu 13 -> 12 (see the rewrite's docstring)
    ("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[2,4] x) => (float[2,4] y)
    {
        [relu] y = Relu (x)
    }
    """, "relu", "Relu"),
], ids=["no-previous-version", "no-down-adapter"])
def test_unsupported_conversion_is_a_graph_error_naming_the_node(text: str, node: str, op: str):
    model = parse(text)
    opset_before = opset(model)
    before = model.SerializeToString()
    with pytest.raises(GraphError) as info:
        rewrite(model, NAME)
    assert info.value.node == node
    assert f"cannot convert from opset {opset_before} to 11" in info.value.message
    assert op in info.value.message
    assert model.SerializeToString() == before


def test_target_out_of_range_is_an_option_error():
    with pytest.raises(OptionError, match="target must be an ai.onnx opset"):
        registry.make_pass(NAME, {"target": 99})
