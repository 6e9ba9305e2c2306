"""set-batch-size: the batch axis of graph inputs and outputs -> a static size or dynamic "N",
an exact rewrite (per sample, the graph computes what it computed)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from rewrite_testing import copy, parse, random_feeds, rewrite, run

from gancc.graph.text import value_type
from gancc.passes import registry
from gancc.passes.registry import OptionError

NAME = "set-batch-size"

MODEL = """
<ir_version: 8, opset_import: ["" : 11]>
g (float[1,3,8,8] x) => (float[1,4,6,6] y, float[4] norm)
<float[4,3,3,3] w = {WEIGHTS}>
{
    c = Conv (x, w)
    [relu] y = Relu (c)
    norm = ReduceL2 <axes = [1, 2, 3], keepdims = 0> (w)
}
""".replace("WEIGHTS", ", ".join(str(v % 7 - 3) for v in range(4 * 3 * 3 * 3)))


def shapes(values) -> dict[str, list]:
    return {v.name: value_type(v)[1] for v in values}


def test_static_batch_is_set_and_value_info_reinferred():
    model = parse(MODEL)
    model.graph.value_info.extend([onnx.helper.make_tensor_value_info("c", 1, [1, 4, 6, 6])])
    original = copy(model)

    result = rewrite(model, NAME, batch=4)

    assert result.matches == 2 and (result.nodes_added, result.nodes_removed) == (0, 0)
    assert shapes(model.graph.input) == {"x": [4, 3, 8, 8]}
    assert shapes(model.graph.output) == {"y": [4, 4, 6, 6], "norm": [4]}
    # norm's axis 0 (4) was not the batch (1): not a batch axis, unchanged
    assert shapes(model.graph.value_info)["c"] == [4, 4, 6, 6]              # re-inferred
    onnx.checker.check_model(model, full_check=True)
    feeds = random_feeds(model, seed=3)
    (got, _) = run(model, feeds)
    for i in range(4):
        (want, _) = run(original, {"x": feeds["x"][i:i + 1]})
        assert np.abs(got[i:i + 1] - want).max() <= 1e-6


def test_batch_0_makes_it_dynamic_and_back():
    model = parse(MODEL)
    rewrite(model, NAME, batch=0)
    assert shapes(model.graph.input)["x"] == ["N", 3, 8, 8]
    assert shapes(model.graph.output)["y"] == ["N", 4, 6, 6]
    feeds = random_feeds(model, seed=1, batch=3)
    assert run(model, feeds)[0].shape == (3, 4, 6, 6)
    rewrite(model, NAME, batch=2)
    assert shapes(model.graph.input)["x"] == [2, 3, 8, 8]
    assert shapes(model.graph.output)["y"] == [2, 4, 6, 6]


def test_does_not_fire_at_the_same_batch():
    model = parse(MODEL)
    before = model.SerializeToString()
    result = rewrite(model, NAME, batch=1)
    assert (result.changed, result.matches) == (False, 0)
    assert result.declined == [("(graph)", "the batch is already 1")]
    assert model.SerializeToString() == before


def test_declines_when_the_graph_hard_codes_the_batch():
    model = parse("""
    <ir_version: 8, opset_import: ["" : 11]>
    g (float[1,3,4] x) => (float[1,12] y)
    <int64[2] shape = {1, 12}>
    {
        y = Reshape (x, shape)
    }
    """)
    before = model.SerializeToString()
    result = rewrite(model, NAME, batch=2)
    assert result.matches == 0
    ((node, reason),) = result.declined
    assert node == "(graph)" and reason.startswith("the graph does not check with batch 2: ")
    assert model.SerializeToString() == before


def test_negative_batch_is_refused():
    with pytest.raises(OptionError, match="batch must be >= 1, or 0 for a dynamic batch"):
        registry.make_pass(NAME, {"batch": -1})
