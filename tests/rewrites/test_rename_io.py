"""rename-io: graph input / output names -> new names everywhere they are used, exact."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.numpy_helper
import pytest
from rewrite_testing import copy, parse, random_feeds, rewrite, run

from gancc.errors import GraphError
from gancc.passes import registry
from gancc.passes.pipeline_text import parse_pipeline
from gancc.passes.registry import OptionError

NAME = "rename-io"

MODEL = """
<ir_version: 8, opset_import: ["" : 11]>
g (float[1,3,4,4] img, float[3,3,1,1] w) => (float[1,3,4,4] out)
<float[1] one = {1.0}>
{
    [conv] h = Conv (img, w)
    [add] s = Add (h, img)
    [tanh] out = Tanh (s)
}
"""


def test_inputs_and_outputs_are_renamed_everywhere():
    model = parse(MODEL)
    model.graph.value_info.extend([onnx.helper.make_tensor_value_info("out", 1, [1, 3, 4, 4])])
    original = copy(model)

    result = rewrite(model, NAME, map="img:input;out:maps")

    assert result.matches == 2 and (result.nodes_added, result.nodes_removed) == (0, 0)
    assert [i.name for i in model.graph.input] == ["input", "w"]
    assert [o.name for o in model.graph.output] == ["maps"]
    nodes = {n.name: n for n in model.graph.node}
    assert list(nodes["conv"].input) == ["input", "w"]
    assert list(nodes["add"].input) == ["h", "input"]
    assert list(nodes["tanh"].output) == ["maps"]
    assert [v.name for v in model.graph.value_info] == ["maps"]
    onnx.checker.check_model(model, full_check=True)
    feeds = random_feeds(original)
    (want,) = run(original, feeds)
    (got,) = run(model, {"input": feeds["img"], "w": feeds["w"]})
    assert (got == want).all()


def test_pipeline_text_carries_the_map():
    ((name, options),) = parse_pipeline('rename-io{map="img:input;out:maps"}')
    rule = registry.make_pass(name, options)
    assert rule.map == "img:input;out:maps"
    assert rule.pipeline_text() == 'rename-io{map="img:input;out:maps"}'


def test_second_run_declines():
    model = parse(MODEL)
    rewrite(model, NAME, map="img:input")
    before = model.SerializeToString()
    result = rewrite(model, NAME, map="img:input")
    assert result.declined == [("(graph)", "every name in the map is renamed already")]
    assert model.SerializeToString() == before


def test_empty_map_declines():
    assert rewrite(parse(MODEL), NAME).declined == [("(graph)", "the map is empty")]


@pytest.mark.parametrize("mapping, message", [
    ("nope:x", "no graph input or output is named 'nope'"),
    ("img:h", "cannot rename 'img' to 'h': the graph already has a tensor named 'h'"),
])
def test_errors_name_the_tensor(mapping: str, message: str):
    with pytest.raises(GraphError, match=message):
        rewrite(parse(MODEL), NAME, map=mapping)


@pytest.mark.parametrize("mapping", ["img", "img:", "a:b;;c:d", "a:b;a:c"])
def test_malformed_map_is_an_option_error(mapping: str):
    with pytest.raises(OptionError):
        registry.make_pass(NAME, {"map": mapping})


def test_an_input_with_an_initializer_of_the_same_name_is_renamed_with_it():
    model = parse(MODEL)
    weight = onnx.numpy_helper.from_array(np.ones((3, 3, 1, 1), np.float32), "w")
    model.graph.initializer.append(weight)            # w: an input with a default value
    original = copy(model)
    rewrite(model, NAME, map="w:weight")
    assert [t.name for t in model.graph.initializer] == ["one", "weight"]
    assert next(n for n in model.graph.node if n.name == "conv").input[1] == "weight"
    feeds = {"img": random_feeds(original)["img"]}
    assert (run(model, feeds)[0] == run(original, feeds)[0]).all()
