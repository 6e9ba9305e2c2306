"""cast-outputs-to-fp16: float32 graph outputs -> float16 through a Cast at the boundary
(optionally the inputs too), a lossy rewrite whose only loss is float16 rounding there:
the measured relative error must stay within float16's half-ulp, 2^-11."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto
from rewrite_testing import copy, op_types, parse, random_feeds, rewrite, run

from gancc.graph import Graph, provenance

NAME = "cast-outputs-to-fp16"

# a generator's tail: Conv, a linear Resize (scales and roi are float32 initializers), Tanh,
# and a second output read inside the graph as well
GENERATOR_TAIL = """
<ir_version: 8, opset_import: ["" : 11]>
g (float[1,3,8,8] x, float[4,3,3,3] w) => (float[1,4,12,12] y, float[1,4,6,6] feat)
<float[0] roi = {}, float[4] scales = {1, 1, 2, 2}>
{
    [conv] feat = Conv (x, w)
    [resize] up = Resize <mode = "linear"> (feat, roi, scales)
    [tanh] y = Tanh (up)
}
"""


def float16_rounding_error(got: np.ndarray, want: np.ndarray) -> float:
    """Largest error relative to the float32 value (values near 0 measured absolutely)."""
    want = want.astype(np.float64)
    return float((np.abs(got.astype(np.float64) - want) / np.maximum(np.abs(want), 1e-3)).max())


def test_outputs_become_float16_through_a_cast():
    model = parse(GENERATOR_TAIL)
    original = copy(model)

    result = rewrite(model, NAME)

    assert result.matches == 2 and result.nodes_added == 2
    assert [o.name for o in model.graph.output] == ["y", "feat"]          # names kept
    assert [o.type.tensor_type.elem_type for o in model.graph.output] == [TensorProto.FLOAT16] * 2
    casts = [n for n in model.graph.node if n.op_type == "Cast"]
    assert sorted(c.output[0] for c in casts) == ["feat", "y"]
    assert all(Graph.attr(c, "to") == TensorProto.FLOAT16 and provenance(c) == [NAME]
               for c in casts)
    # inside, the Resize still reads the float32 Conv output and float32 scales / roi
    resize = next(n for n in model.graph.node if n.op_type == "Resize")
    assert resize.input[0] == next(c.input[0] for c in casts if c.output[0] == "feat")
    scales = {t.name: t for t in model.graph.initializer}
    assert scales["scales"].data_type == scales["roi"].data_type == TensorProto.FLOAT
    assert list(resize.input[1:]) == ["roi", "scales"]
    onnx.checker.check_model(model, full_check=True)
    feeds = random_feeds(original)
    for got, want in zip(run(model, feeds), run(original, feeds)):
        assert got.dtype == np.float16
        assert float16_rounding_error(got, want) <= 2.0 ** -11


def test_inputs_option_takes_float16_inputs():
    model = parse(GENERATOR_TAIL)
    original = copy(model)

    result = rewrite(model, NAME, inputs=True)

    assert result.matches == 4
    assert [i.type.tensor_type.elem_type for i in model.graph.input] == [TensorProto.FLOAT16] * 2
    assert op_types(model)[:2] == ["Cast", "Cast"]                    # to float32, first thing
    feeds = random_feeds(original)
    half = {k: v.astype(np.float16) for k, v in feeds.items()}
    # the rewritten graph on float16 inputs = the original on those inputs, rounded at the end
    wants = run(original, {k: v.astype(np.float32) for k, v in half.items()})
    for got, want in zip(run(model, half), wants):
        assert float16_rounding_error(got, want) <= 2.0 ** -11


def test_does_not_fire_when_outputs_are_float16_already():
    model = parse(GENERATOR_TAIL)
    rewrite(model, NAME)
    before = model.SerializeToString()
    result = rewrite(model, NAME)
    assert (result.changed, result.matches) == (False, 0)
    assert result.declined == [("(graph)", "no float32 graph outputs made by a node")]
    assert model.SerializeToString() == before


def test_passthrough_and_integer_outputs_are_left_alone():
    model = parse("""
    <ir_version: 8, opset_import: ["" : 11]>
    g (float[2] x, int64[2] i) => (float[2] x, int64[2] j)
    {
        j = Neg (i)
    }
    """)
    result = rewrite(model, NAME, inputs=True)
    assert result.matches == 0
    assert result.declined == [("(graph)", "no float32 graph outputs or inputs made by a node")]
