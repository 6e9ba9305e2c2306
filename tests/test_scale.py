"""What keeps rewriting cheap on large models, checked for behaviour (speed is in bench/):
the pass manager's weight-free snapshot and verification, and the graph's consumer index."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from gancc.graph import Graph
from gancc.passes.base import Rewrite
from gancc.passes.manager import PassVerificationError, VerifyOptions, run_pipeline, verify
from gancc.passes.registry import Registry


@pytest.fixture
def scratch_registry() -> Registry:
    """A registry of its own for test-only rewrites; the default one stays as it is."""
    return Registry()


def two_matmuls(n: int = 64) -> onnx.ModelProto:
    """x -> MatMul(w1) -> MatMul(w2) -> y, with weights large enough to count as weights."""
    rng = np.random.default_rng(0)
    w = [numpy_helper.from_array(rng.standard_normal((n, n)).astype(np.float32), f"w{i}")
         for i in (1, 2)]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"),
             helper.make_node("MatMul", ["h", "w2"], ["y"], name="mm2")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])],
                              initializer=w)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], ir_version=7)


def test_a_failed_pass_restores_dropped_and_added_initializers(scratch_registry):
    @scratch_registry.rewrite("swap-weight-badly-for-test")
    class SwapWeight(Rewrite):
        """Gives mm2 a new weight of the wrong shape; w2 loses its reader and is dropped."""
        anchor = "MatMul"

        def match(self, graph, node):
            return True if node.name == "mm2" else self.decline("not mm2")

        def apply(self, graph, node, match):
            bad = graph.add_initializer(np.zeros((32, 64), np.float32), "w_bad")
            graph.set_input(node, 1, bad)

    model = two_matmuls()
    original = model.SerializeToString()
    with pytest.raises(PassVerificationError) as info:
        run_pipeline(model, [scratch_registry.make_pass("swap-weight-badly-for-test")])
    assert info.value.pass_name == "swap-weight-badly-for-test"
    assert [t.name for t in model.graph.initializer] == ["w1", "w2"]
    assert model.SerializeToString() == original          # weights, nodes, everything
    assert info.value.before is model


def test_verification_without_weights_still_catches_shape_errors():
    model = two_matmuls()
    assert verify(model, VerifyOptions()) is None
    # the second weight no longer fits: the graph is wrong, and the check (weights seen as
    # inputs of the same dtype and shape) must say so, as it does with the weights
    w2 = next(t for t in model.graph.initializer if t.name == "w2")
    w2.CopyFrom(numpy_helper.from_array(np.zeros((32, 64), np.float32), "w2"))
    problem = verify(model, VerifyOptions(onnxruntime=False))
    assert problem is not None and "w2" not in str(model.graph.input)
    assert verify(model, VerifyOptions(checker=False)) is not None     # onnxruntime's loader too


def test_consumers_are_unique_and_rewiring_keeps_them_right():
    model = onnx.parser.parse_model("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[3] x, float[3] z) => (float[3] y)
    {
        [sq] a = Mul (x, x)
        [neg] b = Neg (x)
        [add] y = Add (a, b)
    }
    """)
    g = Graph(model)
    assert [n.name for n in g.consumers("x")] == ["sq", "neg"]       # Mul(x, x) once
    sq = g.producer("a")
    g.set_input(sq, 0, "z")
    assert [n.name for n in g.consumers("x")] == ["sq", "neg"]       # sq still reads x
    g.replace_uses("x", "z")
    assert g.consumers("x") == []
    assert [n.name for n in g.consumers("z")] == ["sq", "neg"]
    assert list(sq.input) == ["z", "z"]


def test_indexes_are_built_on_first_use_and_see_pending_nodes():
    model = two_matmuls()
    g = Graph(model)
    mm2 = g.nodes("MatMul")[1]
    relu = g.add_node("Relu", ["h"], ["h_relu"], before=mm2)        # before any index exists
    g.set_input(mm2, 0, "h_relu")
    assert g.producer("h_relu") is relu
    assert [n.name for n in g.consumers("h")] == [relu.name]
    assert g.initializer("w1") is not None
    g.commit()
    assert [n.op_type for n in model.graph.node] == ["MatMul", "Relu", "MatMul"]
    onnx.checker.check_model(model, full_check=True)
