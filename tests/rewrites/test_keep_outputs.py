"""keep-outputs: drop the other graph outputs and the nodes only they needed, exact for the
outputs kept."""

from __future__ import annotations

import onnx
import pytest
from rewrite_testing import copy, op_types, parse, random_feeds, rewrite, run

from gancc.errors import GraphError

NAME = "keep-outputs"

MODEL = """
<ir_version: 8, opset_import: ["" : 11]>
g (float[1,3,4,4] x, float[2,3,4,4] unused) => (float[1,3,4,4] maps, float[1,3,4,4] feat,
                                               float[1,3,4,4] extra)
<float[1] two = {2.0}>
{
    [relu] h = Relu (x)
    [tanh] maps = Tanh (h)
    [neg] n = Neg (h)
    [mul] feat = Mul (n, two)
    [exp] extra = Exp (x)
}
"""


def test_other_outputs_and_their_nodes_are_dropped():
    model = parse(MODEL)
    original = copy(model)

    result = rewrite(model, NAME, names="maps")

    assert result.matches == 2 and result.nodes_removed == 3
    assert [o.name for o in model.graph.output] == ["maps"]
    assert op_types(model) == ["Relu", "Tanh"]
    assert [t.name for t in model.graph.initializer] == []             # 'two' only fed Mul
    assert [i.name for i in model.graph.input] == ["x", "unused"]      # inputs all stay
    onnx.checker.check_model(model, full_check=True)
    feeds = random_feeds(original)
    assert (run(model, feeds)[0] == run(original, feeds)[0]).all()


def test_order_follows_the_names():
    model = parse(MODEL)
    rewrite(model, NAME, names="extra; maps")
    assert [o.name for o in model.graph.output] == ["extra", "maps"]
    assert op_types(model) == ["Relu", "Tanh", "Exp"]


def test_declines_when_the_outputs_are_already_these():
    model = parse(MODEL)
    result = rewrite(model, NAME, names="maps;feat;extra")
    assert result.declined == [("(graph)", "the graph has exactly these outputs already")]
    assert rewrite(model, NAME).declined == [("(graph)", "no output names given")]


def test_unknown_output_is_an_error_naming_it():
    with pytest.raises(GraphError, match="no graph output is named 'mpas'"):
        rewrite(parse(MODEL), NAME, names="mpas")
