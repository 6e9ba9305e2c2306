"""`gancc diff` against graphs from outside gancc: changes are credited to a rewrite only by
the provenance tags gancc wrote, onnxsim's folding of computed pads is untagged, and a
renamed symbolic batch dim (`N` vs the recipes' `-1`) is not an interface change.

The graphs are built here: a "recipe-like" export (torch's opset-11 ReflectionPad2d: each
Pad's pads computed by a ConstantOfShape/Concat/Reshape/Slice/Transpose/Reshape/Cast chain
of Constant nodes, reflect mode, batch dim named "-1"), the same after onnxsim-style
folding (pads as initializers, no tags), and that after gancc's reflect-pad-to-constant.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from gancc.cli import main
from gancc.diff import diff_models
from gancc.diff.compare import UNTAGGED
from gancc.diff.html import render_html
from gancc.diff.text import render_text, to_json
from gancc.graph import PROVENANCE_KEY
from gancc.passes import registry
from gancc.passes.base import run_rewrite

PADS = 3                  # Pad nodes in the test graphs
CHAIN = 7                 # the nodes (besides Constants) that compute one Pad's pads
REWRITE = "reflect-pad-to-constant"


def _i64(name: str, values) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], name=f"{name}_const",
                            value=numpy_helper.from_array(np.array(values, np.int64), name))


def _pads_chain(k: int) -> tuple[list[onnx.NodeProto], str]:
    """torch's opset-11 computation of ReflectionPad2d(1)'s pads [0,0,1,1,0,0,1,1]."""
    p = f"/pad{k}/"
    nodes = [
        _i64(p + "given", [1, 1, 1, 1]), _i64(p + "four", [4]),
        helper.make_node("ConstantOfShape", [p + "four"], [p + "zeros"], name=p + "ConstantOfShape",
                         value=numpy_helper.from_array(np.zeros(1, np.int64))),
        helper.make_node("Concat", [p + "given", p + "zeros"], [p + "all"], name=p + "Concat",
                         axis=0),
        _i64(p + "pairs_shape", [-1, 2]),
        helper.make_node("Reshape", [p + "all", p + "pairs_shape"], [p + "pairs"], name=p + "Reshape"),
        _i64(p + "start", [-1]), _i64(p + "end", [-9223372036854775807]), _i64(p + "axes", [0]),
        _i64(p + "step", [-1]),
        helper.make_node("Slice", [p + "pairs", p + "start", p + "end", p + "axes", p + "step"],
                         [p + "reversed"], name=p + "Slice"),
        helper.make_node("Transpose", [p + "reversed"], [p + "t"], name=p + "Transpose", perm=[1, 0]),
        _i64(p + "flat", [-1]),
        helper.make_node("Reshape", [p + "t", p + "flat"], [p + "pads_i"], name=p + "Reshape_1"),
        helper.make_node("Cast", [p + "pads_i"], [p + "pads"], name=p + "Cast", to=TensorProto.INT64),
    ]
    return nodes, p + "pads"


def recipe_export(mode: str = "reflect", batch: str | int | None = "-1") -> onnx.ModelProto:
    """x -> PADS x (Pad(reflect, computed pads) -> Conv 3x3) -> y, opset 11."""
    rng = np.random.default_rng(0)
    nodes, inits, h = [], [], "x"
    for k in range(PADS):
        chain, pads = _pads_chain(k)
        nodes += chain
        nodes.append(helper.make_node("Pad", [h, pads], [f"/pad{k}/out"], name=f"/pad{k}/Pad",
                                      mode=mode))
        inits.append(numpy_helper.from_array(rng.standard_normal((3, 3, 3, 3)).astype(np.float32),
                                             f"conv{k}.weight"))
        h = "y" if k == PADS - 1 else f"/conv{k}/out"
        nodes.append(helper.make_node("Conv", [f"/pad{k}/out", f"conv{k}.weight"], [h],
                                      name=f"/conv{k}/Conv", kernel_shape=[3, 3]))

    def io(name):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch, 3, 8, 8])

    model = helper.make_model(helper.make_graph(nodes, "recipe", [io("x")], [io("y")], inits),
                              opset_imports=[helper.make_opsetid("", 11)])
    onnx.checker.check_model(model)
    return model


def onnxsim_folded(model: onnx.ModelProto) -> onnx.ModelProto:
    """What onnxsim makes of it: each pads chain computed once and stored as an initializer
    (named as onnxsim names folded tensors), the chain's nodes gone. No gancc tag."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    names = [f"/pad{k}/pads" for k in range(PADS)]
    session = ort.InferenceSession(_with_outputs(model, names).SerializeToString())
    values = dict(zip(names, session.run(names, {"x": _x()})))
    keep = [n for n in g.node if n.op_type in ("Pad", "Conv")]
    for node in keep:
        if node.op_type == "Pad":
            node.input[1] = f"onnx::Pad_{node.name}"
            g.initializer.append(numpy_helper.from_array(values[model_input(model, node)],
                                                         node.input[1]))
    del g.node[:]
    g.node.extend(keep)
    onnx.checker.check_model(out)
    return out


def model_input(model: onnx.ModelProto, pad: onnx.NodeProto) -> str:
    return next(n.input[1] for n in model.graph.node if n.name == pad.name)


def _with_outputs(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    out.graph.output.extend(helper.make_empty_tensor_value_info(n) for n in names)
    return out


def _x() -> np.ndarray:
    return np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)


def _run(model: onnx.ModelProto) -> np.ndarray:
    return ort.InferenceSession(model.SerializeToString()).run(["y"], {"x": _x()})[0]


def gancc_rewritten(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    assert run_rewrite(registry.make_pass(REWRITE), out).matches == PADS
    return out


def _groups(result) -> dict[str, dict[str, int]]:
    return {tag: {k: len(v) for k, v in group.items() if v}
            for tag, group in result.by_rewrite().items()}


# --- attribution ------------------------------------------------------------------------------
def test_the_test_graphs_compute_what_they_claim():
    recipe = recipe_export()
    folded = onnxsim_folded(recipe)
    np.testing.assert_array_equal(_run(recipe), _run(folded))
    pads = folded.graph.initializer[-1]
    assert numpy_helper.to_array(pads).tolist() == [0, 0, 1, 1, 0, 0, 1, 1]
    rewritten = gancc_rewritten(folded)
    assert not np.array_equal(_run(rewritten), _run(folded))           # the lossy rewrite ran
    assert all(p.key == PROVENANCE_KEY and p.value == REWRITE
               for n in rewritten.graph.node if n.op_type == "Pad" for p in n.metadata_props)
    assert not any(n.metadata_props for g in (recipe, folded) for n in g.graph.node)


def test_onnxsim_folding_without_tags_is_all_untagged():
    r = diff_models(recipe_export(), onnxsim_folded(recipe_export()))
    assert (len(r.changed), len(r.removed), len(r.added)) == (PADS, PADS * CHAIN, 0)
    assert _groups(r) == {UNTAGGED: {"changed": PADS, "removed": PADS * CHAIN}}
    for c in r.changed:
        assert c.op_type == "Pad" and not c.attributes and c.rewrites == [] and c.untagged
        assert [(i["slot"], i["folded"]) for i in c.inputs] == [(1, True)]
    text = render_text(r)
    assert f"\nuntagged: {PADS} changed, {PADS * CHAIN} removed\n" in text
    assert "rewrite " not in text and "(folded: A computed the same value from constants)" in text
    report = to_json(r)
    assert report["by_rewrite"] == {}
    assert len(report["untagged"]["changed"]) == PADS
    assert len(report["untagged"]["removed"]) == PADS * CHAIN


def test_gancc_rewrite_after_folding_is_credited_to_it():
    folded = onnxsim_folded(recipe_export())
    r = diff_models(folded, gancc_rewritten(folded))
    assert _groups(r) == {REWRITE: {"changed": PADS}}
    for c in r.changed:
        assert c.attributes == {"mode": ("reflect", "constant")} and c.rewrites == [REWRITE]
        assert not c.untagged
    assert to_json(r)["untagged"] == {"changed": [], "added": [], "removed": [], "initializers": []}


def test_recipe_export_vs_gancc_build_credits_only_what_the_rewrite_did():
    """The issue's case: the recipe's graph (after its ReflectpadDeal script: mode already
    constant, pads still computed) against gancc's (folded by onnxsim, Pads tagged by
    reflect-pad-to-constant). The Pads carry a new tag, but all that differs is onnxsim's
    folding: nothing is credited to the rewrite."""
    build = gancc_rewritten(onnxsim_folded(recipe_export()))
    r = diff_models(recipe_export(mode="constant"), build)
    assert _groups(r) == {UNTAGGED: {"changed": PADS, "removed": PADS * CHAIN}}
    assert all(c.rewrites == [] for c in r.changed)
    assert f"rewrite {REWRITE}" not in render_text(r)
    # against the unedited recipe export, the mode flip is the rewrite's and the folding is not
    r = diff_models(recipe_export(), build)
    assert _groups(r) == {REWRITE: {"changed": PADS},
                          UNTAGGED: {"changed": PADS, "removed": PADS * CHAIN}}
    text = render_text(r)
    rewrite_part, untagged_part = text.split(f"\nrewrite {REWRITE}: ")[1].split("\nuntagged: ")
    assert rewrite_part.count('mode: "reflect" -> "constant"') == PADS
    assert "input 1" not in rewrite_part and "mode" not in untagged_part
    assert untagged_part.count("input 1: /pad") == PADS
    report = to_json(r)
    assert sorted(report["by_rewrite"][REWRITE]["changed"]) == sorted(report["untagged"]["changed"])
    assert all(c["untagged"] and c["rewrites"] == [REWRITE] for c in report["nodes"]["changed"])
    page = render_html(r)
    assert "<td>untagged</td><td>changed</td>" in page and f"<td>{REWRITE}</td>" in page


def test_folded_to_another_value_is_not_a_fold():
    """B's constant differs from what A's chain computes: a real change, credited to the
    node's new tag like any other, and the chain's nodes are credited with it."""
    recipe = recipe_export()
    build = gancc_rewritten(onnxsim_folded(recipe))
    for t in build.graph.initializer:
        if t.name.startswith("onnx::Pad_"):
            t.CopyFrom(numpy_helper.from_array(np.array([0, 0, 2, 2, 0, 0, 2, 2], np.int64), t.name))
    r = diff_models(recipe, build)
    assert _groups(r) == {REWRITE: {"changed": PADS, "removed": PADS}, UNTAGGED: {
        "removed": PADS * (CHAIN - 1)}}      # the Cast next to each Pad, through its new tag
    assert all(not i["folded"] for c in r.changed for i in c.inputs)


def test_a_tag_that_a_already_carries_credits_nothing():
    tagged = gancc_rewritten(onnxsim_folded(recipe_export()))
    pads_changed = onnx.ModelProto()
    pads_changed.CopyFrom(tagged)
    assert diff_models(tagged, pads_changed).equal
    next(n for n in pads_changed.graph.node if n.op_type == "Pad").attribute[0].s = b"edge"
    r = diff_models(tagged, pads_changed)
    assert _groups(r) == {UNTAGGED: {"changed": 1}}


# --- symbolic dims ----------------------------------------------------------------------------
def test_batch_dim_renamed_is_not_an_interface_change(tmp_path, capsys):
    folded = onnxsim_folded(recipe_export(batch="N"))
    for batch, shown in (("-1", "-1"), (None, "(unnamed)")):
        other = onnxsim_folded(recipe_export(batch=batch))
        r = diff_models(folded, other)
        assert r.equal and r.io == []
        assert r.dims_renamed == [
            {"kind": "input", "position": 0, "name": "x", "dim": 0, "old": "N", "new": batch},
            {"kind": "output", "position": 0, "name": "y", "dim": 0, "old": "N", "new": batch}]
        text = render_text(r)
        assert "equal (2 symbolic dim(s) renamed, which is not a change)" in text
        assert "symbolic dims renamed (not an interface change)" in text
        assert f"dim 0 of input x: N -> {shown}" in text and "graph inputs/outputs" not in text
        assert to_json(r)["dims_renamed"] == r.dims_renamed
        assert "Symbolic dims renamed" in render_html(r)
    onnx.save(folded, str(tmp_path / "a.onnx"))
    onnx.save(onnxsim_folded(recipe_export(batch=None)), str(tmp_path / "b.onnx"))
    assert main(["diff", str(tmp_path / "a.onnx"), str(tmp_path / "b.onnx"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["equal"] is True and report["io"] == [] and len(report["dims_renamed"]) == 2


def test_fixed_batch_is_an_interface_change_and_renames_are_listed_beside_it():
    named = onnxsim_folded(recipe_export(batch="N"))
    r = diff_models(named, onnxsim_folded(recipe_export(batch=1)))
    assert not r.equal and r.dims_renamed == []
    assert r.io[0]["shape"] == {"old": ["N", 3, 8, 8], "new": [1, 3, 8, 8]}
    wider = onnxsim_folded(recipe_export(batch="-1"))
    wider.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 16
    r = diff_models(named, wider)
    assert [e["kind"] for e in r.io] == ["input"] and "shape" in r.io[0]
    assert [(e["kind"], e["old"], e["new"]) for e in r.dims_renamed] == [
        ("input", "N", "-1"), ("output", "N", "-1")]
