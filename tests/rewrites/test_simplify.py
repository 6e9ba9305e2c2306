"""simplify: onnxsim as a pipeline pass, exact (constant folding and dead-node removal)."""

from __future__ import annotations

import onnx
from rewrite_testing import copy, max_diff, op_types, parse, rewrite

from gancc.graph import Graph, provenance
from gancc.passes import registry
from gancc.passes.manager import run_pipeline

NAME = "simplify"

# the legacy exporter's pads chain in small: pads computed from constants at run time, and a
# dead branch
COMPUTED_PADS = """
<ir_version: 8, opset_import: ["" : 11]>
g (float[1,2,6,6] x, float[3,2,3,3] w) => (float[1,3,6,6] y)
<int64[4] half = {0, 0, 1, 1}>
{
    [concat] pads = Concat <axis = 0> (half, half)
    [pad] p = Pad <mode = "reflect"> (x, pads)
    [conv] y = Conv (p, w)
    [dead] unused = Relu (x)
}
"""


def test_constant_pads_are_folded_and_dead_nodes_dropped():
    model = parse(COMPUTED_PADS)
    original = copy(model)

    result = rewrite(model, NAME)

    assert result.changed and result.nodes_removed == 2
    assert op_types(model) == ["Pad", "Conv"]
    pad = model.graph.node[0]
    assert Graph(model).const_value(pad.input[1]).tolist() == [0, 0, 1, 1, 0, 0, 1, 1]
    assert pad.input[1] in {t.name for t in model.graph.initializer}    # an initializer
    assert not any(p.key.startswith("onnxsim") for p in model.metadata_props)
    onnx.checker.check_model(model, full_check=True)
    assert max_diff(model, original) <= 1e-6


def test_placed_in_a_pipeline_it_makes_pads_constant_for_the_next_rewrite():
    model = parse(COMPUTED_PADS)
    original = copy(model)
    results = run_pipeline(model, [registry.make_pass("reflect-pad-exact")])
    assert results[0].declined == [("pad", "pads are computed at run time, not a constant")]

    results = run_pipeline(model, [registry.make_pass(NAME),
                                   registry.make_pass("reflect-pad-exact")])

    assert [r.changed for r in results] == [True, True]
    assert "Pad" not in op_types(model)
    assert all(provenance(n) == ["reflect-pad-exact"] for n in model.graph.node
               if n.op_type in ("Slice", "Concat"))
    assert max_diff(model, original) == 0.0


def test_declines_when_nothing_is_left_to_simplify():
    model = parse(COMPUTED_PADS)
    rewrite(model, NAME)
    before = model.SerializeToString()
    result = rewrite(model, NAME)
    assert (result.changed, result.matches) == (False, 0)
    assert result.declined == [("(graph)", "nothing to simplify")]
    assert model.SerializeToString() == before


def test_provenance_of_earlier_rewrites_survives():
    # onnxsim drops node metadata; the pass puts the tags back by node name
    model = parse(COMPUTED_PADS)
    # (a non-zero value, or onnxsim would fuse the Pad into the Conv)
    run_pipeline(model, [registry.make_pass("reflect-pad-to-constant", {"value": 0.5}),
                         registry.make_pass(NAME)])
    pad = next(n for n in model.graph.node if n.op_type == "Pad")
    assert provenance(pad)[0] == "reflect-pad-to-constant"
