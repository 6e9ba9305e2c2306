"""The graph core (gancc.graph) and the pass manager's verification of what a rewrite made."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.parser
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from gancc.graph import (PROVENANCE_KEY, FrozenTensor, Graph, ReadOnlyError, lift_constants,
                         op_histogram, provenance)
from gancc.passes.base import Rewrite
from gancc.passes.manager import PassVerificationError, VerifyOptions, run_pipeline, verify
from gancc.passes.registry import Registry

# y = relu((x + bias) * k), with bias an initializer and k a Constant node.
SMALL = """
<ir_version: 8, opset_import: ["" : 13]>
small (float[2,3] x) => (float[2,3] y)
<float[3] bias = {1.0, 2.0, 3.0}>
{
    [const] k = Constant <value = float[3] {0.5, -1.0, 2.0}> ()
    [add] a = Add (x, bias)
    [mul] m = Mul (a, k)
    [relu] y = Relu (m)
}
"""


def small() -> onnx.ModelProto:
    model = onnx.parser.parse_model(SMALL)
    onnx.checker.check_model(model, full_check=True)
    return model


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def x_value(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((2, 3), dtype=np.float32)


def reference(x: np.ndarray) -> np.ndarray:
    return np.maximum((x + np.array([1, 2, 3], np.float32)) * np.array([0.5, -1, 2], np.float32),
                      0)


def assert_topologically_sorted(model: onnx.ModelProto) -> None:
    known = {i.name for i in model.graph.input} | {t.name for t in model.graph.initializer}
    for node in model.graph.node:
        missing = [i for i in node.input if i and i not in known]
        assert not missing, f"{node.name} reads {missing} before they are made"
        known.update(node.output)


@pytest.fixture
def fresh() -> Registry:
    """A registry of the built-ins for test-only rewrites; the default one stays as it is."""
    own = Registry()
    own.load_builtin()
    return own


# -- queries ----------------------------------------------------------------------------------

def test_the_small_model_computes_what_it_says():
    x = x_value()
    np.testing.assert_allclose(run(small(), x), reference(x), rtol=1e-6)


def test_producer_and_consumers():
    g = Graph(small())
    assert g.producer("a").name == "add"
    assert g.producer("k").op_type == "Constant"
    assert g.producer("x") is None and g.producer("bias") is None
    assert [n.name for n in g.consumers("x")] == ["add"]
    assert [n.name for n in g.consumers("a")] == ["mul"]
    assert g.consumers("y") == []
    assert g.is_graph_input("x") and not g.is_graph_input("a")
    assert g.is_graph_output("y") and not g.is_graph_output("m")
    assert [n.name for n in g.nodes("Mul")] == ["mul"]


def test_const_value_from_initializer_and_constant_node():
    g = Graph(small())
    np.testing.assert_array_equal(g.const_value("bias"), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(g.const_value("k"), [0.5, -1.0, 2.0])
    assert g.const_value("x") is None          # a graph input
    assert g.const_value("a") is None          # computed
    assert g.const_value("no_such_tensor") is None
    assert g.initializer("bias") is not None and g.initializer("k") is None


def test_attributes_read_set_and_remove():
    model = onnx.parser.parse_model("""
    <ir_version: 8, opset_import: ["" : 11]>
    g (float[1,1,4,4] x, float[1,1,3,3] w) => (float[1,1,4,4] y)
    {
        [conv] y = Conv <pads = [1, 1, 1, 1], auto_pad = "NOTSET"> (x, w)
    }
    """)
    conv = model.graph.node[0]
    assert Graph.attr(conv, "pads") == [1, 1, 1, 1]
    assert Graph.attr(conv, "auto_pad") == "NOTSET"          # bytes come back as str
    assert Graph.attr(conv, "strides", "default") == "default"
    g = Graph(model)
    g.set_attr(conv, "pads", [0, 1, 0, 1])
    assert Graph.attr(conv, "pads") == [0, 1, 0, 1]
    assert [a.name for a in conv.attribute].count("pads") == 1
    g.remove_attr(conv, "auto_pad")
    assert Graph.attr(conv, "auto_pad") is None
    assert provenance(conv) == []              # a Graph without an author tags nothing


# -- edits ------------------------------------------------------------------------------------

def test_add_node_before_an_anchor_keeps_topological_order():
    model = small()
    g = Graph(model)
    mul = g.producer("m")
    neg = g.add_node("Neg", ["a"], ["neg_a"], before=mul, tag="test-rewrite")
    g.set_input(mul, 0, "neg_a")

    # pending until commit, but already indexed
    assert neg not in model.graph.node
    assert g.producer("neg_a") is neg and g.consumers("neg_a") == [mul]
    assert g.consumers("a") == [neg]
    g.commit()

    assert [n.op_type for n in model.graph.node] == ["Constant", "Add", "Neg", "Mul", "Relu"]
    assert_topologically_sorted(model)
    onnx.checker.check_model(model, full_check=True)
    assert provenance(model.graph.node[2]) == ["test-rewrite"]
    x = x_value()
    expected = np.maximum(-(x + np.array([1, 2, 3], np.float32)) * np.array([0.5, -1, 2],
                                                                             np.float32), 0)
    np.testing.assert_allclose(run(model, x), expected, rtol=1e-6)
    # the indexes were rebuilt over the committed nodes
    assert Graph(model).producer("neg_a").op_type == "Neg"
    assert g.producer("neg_a").op_type == "Neg" and g.consumers("neg_a")[0].op_type == "Mul"


def test_add_node_without_anchor_appends():
    model = small()
    g = Graph(model)
    g.add_node("Identity", ["y"], ["y2"])
    g.commit()
    assert [n.op_type for n in model.graph.node][-1] == "Identity"
    assert_topologically_sorted(model)


def test_nodes_inserted_before_the_same_anchor_keep_their_order():
    model = small()
    g = Graph(model)
    mul = g.producer("m")
    g.add_node("Neg", ["a"], ["n1"], before=mul)
    g.add_node("Abs", ["n1"], ["n2"], before=mul)
    g.set_input(mul, 0, "n2")
    g.commit()
    assert [n.op_type for n in model.graph.node] == ["Constant", "Add", "Neg", "Abs", "Mul",
                                                      "Relu"]
    onnx.checker.check_model(model, full_check=True)


def test_remove_node_and_commit_drops_unused_initializers():
    model = small()
    g = Graph(model)
    add = g.producer("a")
    g.replace_uses("a", "x")
    g.remove_node(add)
    assert g.is_removed(add) and g.producer("a") is None
    assert g.nodes_removed == 1
    g.commit()

    assert [n.op_type for n in model.graph.node] == ["Constant", "Mul", "Relu"]
    assert [t.name for t in model.graph.initializer] == []          # bias had no reader left
    onnx.checker.check_model(model, full_check=True)
    x = x_value()
    np.testing.assert_allclose(run(model, x), np.maximum(x * np.array([0.5, -1, 2], np.float32),
                                                         0), rtol=1e-6)


def test_commit_keeps_initializers_that_are_still_read_or_are_outputs():
    model = onnx.parser.parse_model("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[3] x) => (float[3] y, float[3] c)
    <float[3] c = {1.0, 2.0, 3.0}, float[3] d = {4.0, 5.0, 6.0}, float[3] unused = {0.0, 0.0, 0.0}>
    {
        [n] t = Neg (x)
        [add] y = Add (x, d)
    }
    """)
    g = Graph(model)
    g.remove_node(g.producer("t"))
    g.commit()
    assert sorted(t.name for t in model.graph.initializer) == ["c", "d"]


def test_commit_keeps_initializers_read_only_inside_a_subgraph():
    then_g = helper.make_graph([helper.make_node("Identity", ["c"], ["t"])], "then", [],
                               [helper.make_tensor_value_info("t", TensorProto.FLOAT, [1])])
    else_g = helper.make_graph([helper.make_node("Neg", ["c"], ["e"])], "else", [],
                               [helper.make_tensor_value_info("e", TensorProto.FLOAT, [1])])
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"], name="relu"),
         helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g)],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1]),
              helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1]),
         helper.make_tensor_value_info("r", TensorProto.FLOAT, [1])],
        [numpy_helper.from_array(np.array([3.0], np.float32), "c")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    g = Graph(model)
    g.add_node("Identity", ["x"], ["x2"], before=g.producer("r"))
    g.commit()
    assert [t.name for t in model.graph.initializer] == ["c"]
    onnx.checker.check_model(model, full_check=True)


def test_commit_without_edits_changes_nothing():
    model = small()
    before = model.SerializeToString()
    Graph(model).commit()
    assert model.SerializeToString() == before


def test_unique_name_never_collides():
    model = small()
    g = Graph(model)
    taken = {n.name for n in model.graph.node} | {t.name for t in model.graph.initializer}
    taken |= {i.name for i in model.graph.input} | {o.name for o in model.graph.output}
    taken |= {name for n in model.graph.node for name in (*n.input, *n.output)}
    hints = ["x", "a", "bias", "add", "k", "y", "fresh", "fresh", "add_0", "add_1"]
    names = [g.unique_name(h) for h in hints * 5]
    assert len(set(names)) == len(names)
    assert not set(names) & taken
    assert "fresh" in names                   # an unused hint is used as it is
    node = g.add_node("Relu", ["y"], [g.unique_name("y")], name="relu")
    assert node.name not in taken | set(names) and node.name.startswith("relu")


def test_tag_records_provenance_once_per_rewrite():
    model = small()
    node = model.graph.node[1]
    Graph.tag(node, "first")
    Graph.tag(node, "second")
    Graph.tag(node, "first")
    entries = [(p.key, p.value) for p in node.metadata_props]
    assert entries == [(PROVENANCE_KEY, "first,second")]
    assert PROVENANCE_KEY == "gancc.rewrite"
    # the tag is part of the saved model
    again = onnx.load_from_string(model.SerializeToString())
    assert provenance(again.graph.node[1]) == ["first", "second"]
    assert provenance(again.graph.node[0]) == []


def test_lift_constants_makes_initializers_with_the_same_output():
    model = onnx.parser.parse_model("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1,1,3,3] x) => (float[1,1,5,5] y)
    {
        pads = Constant <value = int64[8] {0, 0, 1, 1, 0, 0, 1, 1}> ()
        scale = Constant <value = float[1] {2.5}> ()
        two = Constant <value_float = 2.0> ()
        p = Pad (x, pads)
        s = Mul (p, scale)
        y = Add (s, two)
    }
    """)
    x = np.random.default_rng(1).standard_normal((1, 1, 3, 3), dtype=np.float32)
    before = run(model, x)

    assert lift_constants(model) == 2

    assert op_histogram(model) == {"Add": 1, "Constant": 1, "Mul": 1, "Pad": 1}
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    assert sorted(inits) == ["pads", "scale"]
    assert inits["pads"].tolist() == [0, 0, 1, 1, 0, 0, 1, 1]
    onnx.checker.check_model(model, full_check=True)
    np.testing.assert_array_equal(run(model, x), before)
    assert Graph(model).const_value("pads").tolist() == [0, 0, 1, 1, 0, 0, 1, 1]
    assert lift_constants(model) == 0


# -- the pass manager keeps the last good graph --------------------------------------------

PAD_RELU = """
<ir_version: 8, opset_import: ["" : 11]>
g (float[1,1,4,4] x) => (float[1,1,6,6] y)
<int64[8] pads = {0, 0, 1, 1, 0, 0, 1, 1}>
{
    [pad] p = Pad <mode = "reflect"> (x, pads)
    [relu] y = Relu (p)
}
"""


def test_a_rewrite_that_breaks_the_graph_is_caught_and_undone(fresh: Registry):
    @fresh.rewrite("break-graph-for-test")
    class BreakGraph(Rewrite):
        """Rewires every Relu to a tensor nobody makes."""
        anchor = "Relu"

        def match(self, graph, node):
            return True

        def apply(self, graph, node, match):
            graph.set_input(node, 0, "no_such_tensor")      # tagged by the engine

    model = onnx.parser.parse_model(PAD_RELU)
    passes = [fresh.make_pass("reflect-pad-to-constant"), fresh.make_pass("break-graph-for-test")]
    seen = []
    with pytest.raises(PassVerificationError) as info:
        run_pipeline(model, passes, after_pass=lambda rule, result, m: seen.append(rule.name))

    err = info.value
    assert err.pass_name == "break-graph-for-test"
    assert "rewrite 'break-graph-for-test' produced an invalid graph" in err.render()
    assert "node 'relu' was made by break-graph-for-test" in err.message
    assert "graph from before this pass was kept" in err.hint
    assert seen == ["reflect-pad-to-constant"]
    # the model is the graph after the first pass: its Pad is rewritten, its Relu untouched
    assert Graph.attr(model.graph.node[0], "mode") == "constant"
    assert list(model.graph.node[1].input) == ["p"] and provenance(model.graph.node[1]) == []
    assert err.before == model
    onnx.checker.check_model(model, full_check=True)


def test_a_rewrite_that_never_settles_fails_the_idempotence_check(fresh: Registry):
    @fresh.rewrite("retag-forever-for-test")
    class RetagForever(Rewrite):
        """Matches every Relu, every time."""
        anchor = "Relu"

        def match(self, graph, node):
            return True

        def apply(self, graph, node, match):
            graph.tag(node, self.name)

    model = onnx.parser.parse_model(PAD_RELU)
    assert run_pipeline(model, [fresh.make_pass("retag-forever-for-test")])[0].matches == 1
    with pytest.raises(PassVerificationError, match="not idempotent: a second run matched 1"):
        run_pipeline(model, [fresh.make_pass("retag-forever-for-test")],
                     VerifyOptions(idempotent=True))


def test_verify_reports_what_is_wrong():
    model = onnx.parser.parse_model(PAD_RELU)
    assert verify(model, VerifyOptions()) is None
    model.graph.node[1].op_type = "NoSuchOp"
    problem = verify(model, VerifyOptions())
    assert problem is not None and "NoSuchOp" in problem


# -- the per-pass context and read-only initializers ------------------------------------------

def test_memo_computes_once_per_pass_and_commit_empties_it():
    model = small()
    g = Graph(model)
    calls = []
    table = g.memo("test.table", lambda: calls.append(1) or {"n": len(g.nodes())})
    assert g.memo("test.table", dict) is table and calls == [1]
    g.remove_node(g.producer("y"))
    g.commit()
    # the node list changed: what was derived from the old one is gone, and rebuilt on demand
    assert g.memo("test.table", lambda: {"n": len(g.nodes())}) == {"n": 3}


def test_commit_rebuilds_indexes_and_keeps_the_author():
    model = small()
    g = Graph(model, author="test-author")
    g.add_node("Neg", ["y"], ["neg"], name="neg")
    g.commit()
    assert g.author == "test-author"
    assert g.producer("neg").op_type == "Neg" and g.consumers("y")[0].name == "neg"
    added = g.add_node("Abs", ["neg"], ["abs"], name="abs")
    g.commit()
    assert provenance(added) == ["test-author"]
    assert [provenance(n) for n in model.graph.node][-2:] == [["test-author"], ["test-author"]]


def test_edits_through_an_authored_graph_are_tagged_but_rewired_readers_are_not():
    model = small()
    g = Graph(model, author="test-author")
    add, mul, relu = g.producer("a"), g.producer("m"), g.producer("y")
    g.set_attr(relu, "unused_for_test", 1)
    g.replace_uses("a", "x")                   # mul now reads x: it computes the same
    g.remove_node(add)
    g.set_input(mul, 1, "k")
    assert provenance(relu) == ["test-author"] and provenance(mul) == ["test-author"]
    mul2 = g.producer("m")
    g.commit()
    assert provenance(mul2) == ["test-author"]


def test_initializer_is_a_frozen_view_and_const_value_is_read_only():
    model = small()
    g = Graph(model)
    view = g.initializer("bias")
    assert isinstance(view, FrozenTensor) and view.name == "bias" and view.dims == (3,)
    np.testing.assert_array_equal(numpy_helper.to_array(view), [1.0, 2.0, 3.0])
    with pytest.raises(ReadOnlyError, match="initializer 'bias' is read-only"):
        view.raw_data = b"\0" * 12
    with pytest.raises(ReadOnlyError):
        view.CopyFrom(onnx.TensorProto())
    with pytest.raises(ReadOnlyError):
        view.ClearField("raw_data")
    copy = view.copy()
    copy.name = "other"                        # a copy is the rewrite's own to change
    for tensor in ("bias", "k"):               # an initializer, a Constant node's value
        with pytest.raises(ValueError, match="read-only"):
            g.const_value(tensor)[0] = 9.0
    assert numpy_helper.to_array(model.graph.initializer[0]).tolist() == [1.0, 2.0, 3.0]
