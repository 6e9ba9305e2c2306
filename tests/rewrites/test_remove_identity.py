"""remove-identity: Identity / inference Dropout -> nothing (readers read the input), exact."""

from __future__ import annotations

import onnx
import pytest
from rewrite_testing import copy, max_diff, op_types, parse, rewrite

from gancc.graph import provenance

NAME = "remove-identity"


def test_identity_and_dropout_are_bypassed():
    model = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[2,3] x) => (float[2,3] y)
    <float ratio = {0.5}>
    {
        [id] a = Identity (x)
        [relu] b = Relu (a)
        [drop] c, mask = Dropout (b, ratio)
        [tanh] y = Tanh (c)
    }
    """)
    original = copy(model)

    result = rewrite(model, NAME)

    assert (result.matches, result.nodes_removed) == (2, 2)
    assert op_types(model) == ["Relu", "Tanh"]
    assert list(model.graph.node[0].input) == ["x"] and list(model.graph.node[1].input) == ["b"]
    assert "ratio" not in {t.name for t in model.graph.initializer}
    onnx.checker.check_model(model, full_check=True)
    assert max_diff(model, original) == 0.0


def test_identity_writing_a_graph_output_hands_its_name_to_the_producer():
    model = parse("""
    <ir_version: 8, opset_import: ["" : 11]>
    g (float[4] x) => (float[4] y)
    {
        [relu] r = Relu (x)
        [id] y = Identity (r)
    }
    """)
    original = copy(model)
    assert rewrite(model, NAME).matches == 1
    (relu,) = model.graph.node
    assert list(relu.output) == ["y"] and provenance(relu) == [NAME]
    assert max_diff(model, original) == 0.0


def test_dropout_opset_12_with_constant_false_training_mode():
    model = parse("""
    <ir_version: 8, opset_import: ["" : 12]>
    g (float[4] x) => (float[4] y)
    <bool train = {0}>
    {
        [drop] d = Dropout (x, , train)
        [neg] y = Neg (d)
    }
    """)
    original = copy(model)
    assert rewrite(model, NAME).matches == 1
    assert op_types(model) == ["Neg"]
    assert max_diff(model, original) == 0.0


DECLINES = [
    ("mask-read", """
     <ir_version: 8, opset_import: ["" : 13]>
     g (float[4] x) => (float[4] y, bool[4] m)
     {
         [drop] d, m = Dropout (x)
         y = Neg (d)
     }
     """, "drop", "Dropout's mask output is read"),
    ("training", """
     <ir_version: 8, opset_import: ["" : 13]>
     g (float[4] x, bool t) => (float[4] y)
     {
         [drop] d = Dropout (x, , t)
         y = Neg (d)
     }
     """, "drop", "Dropout's training_mode is not a constant false"),
    ("input-to-output", """
     <ir_version: 8, opset_import: ["" : 13]>
     g (float[4] x) => (float[4] y)
     {
         [id] y = Identity (x)
     }
     """, "id", "it passes a graph input or a constant to a graph output"),
    ("source-has-other-readers", """
     <ir_version: 8, opset_import: ["" : 13]>
     g (float[4] x) => (float[4] y, float[4] z)
     {
         r = Relu (x)
         [id] y = Identity (r)
         z = Neg (r)
     }
     """, "id", "it writes a graph output and its input has other readers"),
]


@pytest.mark.parametrize("text, node, reason", [c[1:] for c in DECLINES],
                         ids=[c[0] for c in DECLINES])
def test_must_not_fire(text: str, node: str, reason: str):
    model = parse(text)
    before = model.SerializeToString()
    result = rewrite(model, NAME)
    assert (result.changed, result.matches) == (False, 0)
    assert result.declined == [(node, reason)]
    assert model.SerializeToString() == before
