"""The rewrite contract the engine enforces (docs/rewrites.md, "The contract"): each violation
is a ContractError naming the rewrite, its file:line, and what it did; a rewrite that keeps
the contract gets its provenance tags without writing them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnx.parser
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from gancc.graph import provenance
from gancc.passes.base import GraphPass, Rewrite, run_rewrite
from gancc.passes.contract import ContractError
from gancc.passes.manager import VerifyOptions, run_pipeline
from gancc.passes.registry import Registry

HERE = str(Path(__file__).resolve())

# y = Conv(x, w) + b, with a weight big enough to count as one (2048 floats, 8 KiB)
CONV = """
<ir_version: 8, opset_import: ["" : 13]>
g (float[1,8,6,6] x) => (float[1,32,6,6] y)
{
    [conv] c = Conv <pads = [1, 1, 1, 1]> (x, w)
    [add] y = Add (c, b)
}
"""


def conv_model() -> onnx.ModelProto:
    model = onnx.parser.parse_model(CONV)
    rng = np.random.default_rng(0)
    model.graph.initializer.extend([
        numpy_helper.from_array(rng.standard_normal((32, 8, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.standard_normal((1, 32, 1, 1)).astype(np.float32), "b")])
    onnx.checker.check_model(model, full_check=True)
    return model


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


X = np.random.default_rng(1).standard_normal((1, 8, 6, 6)).astype(np.float32)


@pytest.fixture
def fresh() -> Registry:
    own = Registry()
    own.load_builtin()
    return own


def assert_names_the_rewrite(err: ContractError, name: str, cls: type) -> None:
    """The message names the rewrite and where it is defined (this file, its line)."""
    assert f"rewrite '{name}' ({HERE}:" in err.message
    assert cls.source.startswith(HERE + ":")
    assert err.pass_name == name


# -- initializers are read-only ---------------------------------------------------------------

def scale_in_place(fresh: Registry, name: str, field: str = "raw_data"):
    @fresh.rewrite(name)
    class ScaleInPlace(Rewrite):
        """Doubles a Conv weight by editing the initializer in the model directly."""
        anchor = "Conv"

        def match(self, graph, node):
            return self.decline("done") if graph.attr(node, "dilations") else True

        def apply(self, graph, node, match):
            graph.set_attr(node, "dilations", [1, 1])
            tensor = next(t for t in graph.model.graph.initializer if t.name == node.input[1])
            if field == "raw_data":            # the same bytes count: only a digest sees it
                tensor.raw_data = (numpy_helper.to_array(tensor) * 2).tobytes()
            else:                              # a different shape: the default check sees it
                tensor.dims[0] = 16
    return ScaleInPlace


def test_a_weight_edited_in_place_is_caught_in_strict_mode(fresh: Registry):
    cls = scale_in_place(fresh, "scale-weight-in-place-for-test")
    model = conv_model()
    with pytest.raises(ContractError) as info:
        run_pipeline(model, [fresh.make_pass(cls.name)], VerifyOptions(idempotent=True))
    err = info.value
    assert_names_the_rewrite(err, cls.name, cls)
    assert "changed initializer 'w' in place (its values)" in err.message
    assert "Graph.add_initializer" in err.hint
    # what a build does by default: name, dtype and dims only for a weight this size
    assert run_rewrite(fresh.make_pass(cls.name), conv_model()).matches == 1


def test_a_weight_reshaped_in_place_is_caught_by_default(fresh: Registry):
    cls = scale_in_place(fresh, "reshape-weight-in-place-for-test", field="dims")
    with pytest.raises(ContractError, match=r"changed initializer 'w' in place "
                                            r"\(dims \[32, 8, 3, 3\] -> \[16, 8, 3, 3\]\)"):
        run_rewrite(fresh.make_pass(cls.name), conv_model())


def test_a_small_constant_edited_in_place_is_caught_by_default(fresh: Registry):
    @fresh.rewrite("bump-bias-for-test")
    class BumpBias(Rewrite):
        """Edits a small initializer (the bias, 128 bytes) in place."""
        anchor = "Add"

        def match(self, graph, node):
            return True

        def apply(self, graph, node, match):
            bias = next(t for t in graph.model.graph.initializer if t.name == "b")
            bias.raw_data = np.ones(32, np.float32).tobytes()

    with pytest.raises(ContractError) as info:
        run_rewrite(fresh.make_pass(BumpBias.name), conv_model())
    assert_names_the_rewrite(info.value, BumpBias.name, BumpBias)
    assert "changed initializer 'b' in place (its values)" in info.value.message


@pytest.mark.parametrize("how", ["initializer", "const_value"])
def test_writing_through_what_the_graph_hands_out_is_caught(fresh: Registry, how: str):
    @fresh.rewrite(f"write-{how.replace('_', '-')}-for-test")
    class WriteThrough(Rewrite):
        """Writes into the weight the Graph handed out."""
        anchor = "Conv"

        def match(self, graph, node):
            return True

        def apply(self, graph, node, match):
            if how == "initializer":
                graph.initializer(node.input[1]).raw_data = b""
            else:
                graph.const_value(node.input[1])[...] *= 2

    model = conv_model()
    before = model.SerializeToString()
    with pytest.raises(ContractError) as info:
        run_pipeline(model, [fresh.make_pass(WriteThrough.name)])
    err = info.value
    assert_names_the_rewrite(err, WriteThrough.name, WriteThrough)
    wrote = "wrote into an initializer at node 'conv'" if how == "initializer" else \
        "wrote into a constant from Graph.const_value at node 'conv'"
    assert wrote in err.message
    assert model.SerializeToString() == before          # nothing was written, nothing changed


def test_the_contract_way_to_change_a_weight_runs_and_gives_the_numbers(fresh: Registry):
    @fresh.rewrite("double-weight-for-test")
    class DoubleWeight(Rewrite):
        """Doubles a Conv weight the contract's way: a new initializer, the reader rewired."""
        anchor = "Conv"

        def match(self, graph, node):
            if node.input[1].startswith("doubled"):
                return self.decline("already doubled")
            return graph.const_value(node.input[1])

        def apply(self, graph, node, weight):
            graph.set_input(node, 1, graph.add_initializer(weight * 2, "doubled"))

    model, original = conv_model(), conv_model()
    (result,) = run_pipeline(model, [fresh.make_pass(DoubleWeight.name)],
                             VerifyOptions(idempotent=True))
    assert result.matches == 1
    assert list(model.graph.node[0].input) == ["x", "doubled"]
    onnx.checker.check_model(model, full_check=True)
    bias = numpy_helper.to_array(original.graph.initializer[-1])
    np.testing.assert_allclose(run(model, X) - bias, 2 * (run(original, X) - bias), rtol=1e-5,
                               atol=1e-5)
    assert provenance(model.graph.node[0]) == [DoubleWeight.name]     # tagged by the engine


# -- match and run return something ----------------------------------------------------------

def test_a_match_that_falls_off_its_end_is_an_error(fresh: Registry):
    @fresh.rewrite("forgetful-match-for-test")
    class Forgetful(Rewrite):
        """Its match forgets to return when the Conv has pads."""
        anchor = "Conv"

        def match(self, graph, node):
            if not graph.attr(node, "pads"):
                return self.decline("no pads")

        def apply(self, graph, node, match):
            raise AssertionError("never applied")

    with pytest.raises(ContractError) as info:
        run_rewrite(fresh.make_pass(Forgetful.name), conv_model())
    err = info.value
    assert_names_the_rewrite(err, Forgetful.name, Forgetful)
    assert "match returned None for node 'conv' (Conv): it fell off its end" in err.message
    assert 'self.decline("why")' in err.hint


def test_a_graph_pass_that_falls_off_its_end_is_an_error(fresh: Registry):
    @fresh.rewrite("forgetful-run-for-test")
    class ForgetfulRun(GraphPass):
        """Renames the graph and forgets to say so."""

        def run(self, model):
            model.graph.name = "renamed"

    with pytest.raises(ContractError) as info:
        run_rewrite(fresh.make_pass(ForgetfulRun.name), conv_model())
    assert_names_the_rewrite(info.value, ForgetfulRun.name, ForgetfulRun)
    assert "run returned None: it fell off its end" in info.value.message


# -- provenance is the engine's ----------------------------------------------------------------

def test_nodes_a_rewrite_makes_or_edits_are_tagged_without_asking(fresh: Registry):
    @fresh.rewrite("relu-after-add-for-test")
    class ReluAfterAdd(Rewrite):
        """Puts a Relu after the Add, and renames the Conv."""
        anchor = "Conv"

        def match(self, graph, node):
            return self.decline("done") if node.name == "renamed" else True

        def apply(self, graph, node, match):
            graph.rename_node(node, "renamed")
            add = graph.producer("y")
            graph.set_output(add, 0, "pre_relu")
            graph.add_node("Relu", ["pre_relu"], ["y"], name="relu")

    model, original = conv_model(), conv_model()
    run_pipeline(model, [fresh.make_pass(ReluAfterAdd.name)], VerifyOptions(idempotent=True))
    assert {n.name: provenance(n) for n in model.graph.node} == {
        "renamed": [ReluAfterAdd.name], "add": [ReluAfterAdd.name], "relu": [ReluAfterAdd.name]}
    np.testing.assert_allclose(run(model, X), np.maximum(run(original, X), 0), rtol=1e-6)


def test_nodes_a_graph_pass_changes_are_tagged_and_the_others_are_not(fresh: Registry):
    @fresh.rewrite("retype-add-for-test")
    class RetypeAdd(GraphPass):
        """Turns the Add into a Sub, editing the model directly."""

        def run(self, model):
            add = next(n for n in model.graph.node if n.op_type == "Add")
            add.op_type = "Sub"
            return 1

    model = conv_model()
    (result,) = run_pipeline(model, [fresh.make_pass(RetypeAdd.name)])
    assert result.matches == 1 and result.nodes_added == result.nodes_removed == 0
    assert {n.name: provenance(n) for n in model.graph.node} == {
        "conv": [], "add": [RetypeAdd.name]}
