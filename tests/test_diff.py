"""`gancc diff`: structural matching, what is (and is not) a change, output forms, exit codes.

The model-level tests use the small generator (ngf 8, 2 blocks, 64x64), built once per
module with its IR dumped; the matcher tests use graphs of a few nodes built by hand.
"""

from __future__ import annotations

import json
import random
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from gancc.cli import main
from gancc.diff import diff_models
from gancc.diff.text import render_text, to_json
from gancc.errors import GraphError
from tests.conftest import import_bench, write_spec


# --- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The small model's build folder, with its IR dumped into ir/."""
    folder = tmp_path_factory.mktemp("diffbuild")
    spec = write_spec(folder)
    assert main(["build", str(spec), "-o", str(folder / "out"), "--no-atc", "--no-cache",
                 "--dump-dir", "-q"]) == 0
    return folder / "out" / "small"


def rename_everything(model: onnx.ModelProto, seed: int = 0) -> onnx.ModelProto:
    """A copy as another exporter would write it: every node and internal tensor renamed,
    initializers shuffled, one initializer duplicated under a new name (and read through it),
    one moved into a Constant node. Graph inputs and outputs keep their names (the interface)."""
    rng = random.Random(seed)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    keep = {v.name for v in g.input} | {v.name for v in g.output}
    names: dict[str, str] = {}

    def new(name: str) -> str:
        if not name or name in keep:
            return name
        return names.setdefault(name, f"v{len(names)}")

    for t in g.initializer:
        t.name = new(t.name)
    for v in g.value_info:
        v.name = new(v.name)
    for k, node in enumerate(g.node):
        node.name = f"n{k}"
        node.input[:] = [new(x) for x in node.input]
        node.output[:] = [new(x) for x in node.output]
    inits = list(g.initializer)
    rng.shuffle(inits)
    # de-duplicated weights in A are duplicated here: one reader gets its own copy
    reader = next(n for n in g.node if n.op_type == "Conv")
    dup = onnx.TensorProto()
    dup.CopyFrom(next(t for t in inits if t.name == reader.input[1]))
    dup.name = "copy_of_weight"
    reader.input[1] = dup.name
    # and one small initializer becomes a Constant node
    small = next(t for t in inits if len(t.dims) == 1 and t.name != dup.name)
    inits.remove(small)
    const = helper.make_node("Constant", [], [small.name], name="lifted", value=small)
    del g.initializer[:]
    g.initializer.extend(inits + [dup])
    g.node.insert(0, const)
    return out


def run(*args, capsys=None) -> tuple[int, str, str]:
    code = main(["diff", *[str(a) for a in args]])
    if capsys is None:
        return code, "", ""
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- whole models -----------------------------------------------------------------------------
def test_renamed_reshuffled_copy_is_equal(built: Path, tmp_path: Path, capsys):
    a = onnx.load(str(built / "ir" / "03-fuse-pad-into-conv.onnx"))
    b = rename_everything(a)
    onnx.checker.check_model(b)
    onnx.save(b, str(tmp_path / "b.onnx"))
    code, out, _ = run(built / "ir" / "03-fuse-pad-into-conv.onnx", tmp_path / "b.onnx",
                       "--json", capsys=capsys)
    report = json.loads(out)
    assert code == 0 and report["equal"] is True
    assert report["summary"]["renamed"] == len(a.graph.node)
    assert report["nodes"]["changed"] == report["nodes"]["added"] == report["nodes"]["removed"] == []
    code, out, _ = run(built / "ir" / "03-fuse-pad-into-conv.onnx", tmp_path / "b.onnx",
                       capsys=capsys)
    assert code == 0 and "\nequal (29 node(s) renamed, which is not a change)" in out


def test_two_exports_with_different_names_are_equal(tmp_path: Path, capsys):
    """The same weights exported as `module` and as `Sequential(module)`: every node and
    weight name differs (/0/model/... vs /model/..., 0.model.1.weight vs model.1.weight)."""
    import torch

    from gancc import archs
    from gancc.spec import parse_file
    from gancc.stages import export, simplify
    from gancc.stages.weights import init_random

    model = parse_file(write_spec(tmp_path)).models[0]
    module = archs.get("resnet_generator").build(ngf=8, n_blocks=2)
    init_random(module, 1)
    first = export.export(module.eval(), model).with_weights()
    second = export.export(torch.nn.Sequential(module).eval(), model).with_weights()

    def convs(m):
        return {n.name for n in m.graph.node if n.op_type == "Conv"}

    assert convs(first) and not convs(first) & convs(second)          # really renamed
    for label, m in (("a", first), ("b", second)):
        onnx.save(simplify.simplify(m, label)[0], str(tmp_path / f"{label}.onnx"))
    code, out, _ = run(tmp_path / "a.onnx", tmp_path / "b.onnx", "--json", capsys=capsys)
    assert code == 0, out
    assert json.loads(out)["summary"]["renamed"] > 0


def test_reflect_to_constant_is_exactly_the_pad_modes(built: Path, capsys):
    code, out, _ = run(f"{built}:reflect-pad-to-constant", "--json", capsys=capsys)
    assert code == 1
    report = json.loads(out)
    assert report["a"]["label"].endswith(":simplify")
    assert report["summary"] == {"changed": 6, "added": 0, "removed": 0, "renamed": 0, "io": 0,
                                 "initializers": 0}
    for change in report["nodes"]["changed"]:
        assert change["op_type"] == "Pad" and change["a"] == change["b"]
        assert change["attributes"] == {"mode": {"old": "reflect", "new": "constant"}}
        assert change["inputs"] == [] and change["rewrites"] == ["reflect-pad-to-constant"]
    assert list(report["by_rewrite"]) == ["reflect-pad-to-constant"]
    assert sorted(report["by_rewrite"]["reflect-pad-to-constant"]["changed"]) == \
        sorted(c["b"] for c in report["nodes"]["changed"])
    assert report["op_histogram"]["Pad"] == {"a": 6, "b": 6, "delta": 0}
    code, text, _ = run(f"{built}:simplify", f"{built}:reflect-pad-to-constant", capsys=capsys)
    assert code == 1
    assert "rewrite reflect-pad-to-constant: 6 changed" in text
    assert text.count('mode: "reflect" -> "constant"') == 6


def test_fuse_pad_into_conv_removals_are_credited_to_it(built: Path, capsys):
    code, out, _ = run(f"{built}:02", f"{built}:final", "--json", capsys=capsys)
    report = json.loads(out)
    assert code == 1
    s = report["summary"]
    assert (s["changed"], s["removed"], s["added"], s["initializers"]) == (6, 6, 0, 0)
    assert {c["op_type"] for c in report["nodes"]["changed"]} == {"Conv"}
    assert {r["op_type"] for r in report["nodes"]["removed"]} == {"Pad"}
    group = report["by_rewrite"]["fuse-pad-into-conv"]
    assert len(group["changed"]) == 6 and len(group["removed"]) == 6
    assert list(report["by_rewrite"]) == ["fuse-pad-into-conv"]
    first = next(c for c in report["nodes"]["changed"] if c["b"] == "/model/model.1/Conv")
    assert first["attributes"]["pads"] == {"old": [0, 0, 0, 0], "new": [3, 3, 3, 3]}
    assert first["inputs"][0]["slot"] == 0 and first["inputs"][0]["new"].startswith("img ")


def test_json_schema(built: Path, capsys):
    _, out, _ = run(f"{built}:simplify", f"{built}:final", "--json", capsys=capsys)
    report = json.loads(out)
    assert report["schema"] == "gancc.diff/1"
    assert set(report) == {"schema", "a", "b", "equal", "summary", "io", "dims_renamed", "nodes",
                           "initializers", "op_histogram", "by_rewrite", "untagged", "match"}
    assert report["dims_renamed"] == []
    assert report["untagged"] == {"changed": [], "added": [], "removed": [], "initializers": []}
    assert set(report["a"]) == {"label", "nodes", "count", "bytes"}
    assert set(report["nodes"]) == {"changed", "added", "removed", "renamed"}
    assert set(report["summary"]) == {"changed", "added", "removed", "renamed", "io", "initializers"}
    for c in report["nodes"]["changed"]:
        assert {"a", "b", "op_type", "attributes", "inputs", "rewrites", "untagged"} <= set(c)
        assert all(set(inp) == {"slot", "old", "new", "folded"} for inp in c["inputs"])
        for value in c["attributes"].values():
            assert set(value) == {"old", "new"}
    for r in report["nodes"]["removed"] + report["nodes"]["added"]:
        assert set(r) == {"name", "op_type", "rewrites"}
    for group in report["by_rewrite"].values():
        assert set(group) == {"changed", "added", "removed", "initializers"}
    assert report["op_histogram"]["Pad"] == {"a": 6, "b": 0, "delta": -6}
    assert isinstance(report["match"]["seconds"], float)


def test_exit_codes_and_error_messages(built: Path, tmp_path: Path, capsys):
    final = built / "small.onnx"
    assert run(final, built, capsys=capsys)[0] == 0          # a build folder means its final graph
    code, out, err = run(final, tmp_path / "missing.onnx", capsys=capsys)
    assert code == 2 and out == ""
    assert f"error: no such file: {tmp_path / 'missing.onnx'}" in err and "Traceback" not in err
    code, _, err = run(f"{built}:no-such-pass", final, capsys=capsys)
    assert code == 2 and "no stage 'no-such-pass'" in err
    assert "00-export, 01-simplify, 02-reflect-pad-to-constant, 03-fuse-pad-into-conv" in err
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\xffnot a model")
    code, _, err = run(junk, final, capsys=capsys)
    assert code == 2 and f"{junk}: cannot read as ONNX" in err
    code, _, err = run(f"{built}:export", capsys=capsys)
    assert code == 2 and "'export' is the first stage" in err
    code, _, err = run(final, capsys=capsys)
    assert code == 2 and "one operand given" in err
    code, _, err = run(f"{tmp_path}:simplify", final, capsys=capsys)
    assert code == 2 and "holds no IR dump" in err and "--dump-dir" in err


def test_colour_only_when_asked(built: Path, capsys):
    _, plain, _ = run(f"{built}:final", f"{built}:02", "--color", "never", capsys=capsys)
    _, coloured, _ = run(f"{built}:final", f"{built}:02", "--color", "always", capsys=capsys)
    assert "\x1b[" not in plain and "\x1b[32m  + Pad" in coloured      # added in green
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_html_diff_is_self_contained_with_highlights(built: Path, tmp_path: Path, capsys):
    page = tmp_path / "d.html"
    code, out, _ = run(f"{built}:02", f"{built}:03", "--html", page, capsys=capsys)
    assert code == 1 and f"wrote {page}" in out
    text = page.read_text()
    parser = _Collect()
    parser.feed(text)
    tags = [t for t, _ in parser.tags]
    assert tags.count("svg") == 1 and "script" not in tags
    assert not re.search(r"(src|href)=\"(https?:)?//", text)
    classes = [a.get("class", "") for t, a in parser.tags if t == "g"]
    assert classes.count("node removed") == 6 and classes.count("node changed") == 6 * 2
    assert "pads: [0, 0, 0, 0] -&gt; [3, 3, 3, 3]" in text          # the change, in the gutter
    assert "Changes by rewrite" in text and "fuse-pad-into-conv" in text


# --- the matcher on small hand-built graphs ---------------------------------------------------
def _model(nodes, inits=(), inputs=("x",), outputs=("y",)) -> onnx.ModelProto:
    def vi(n):
        return helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4])

    graph = helper.make_graph(nodes, "g", [vi(n) for n in inputs], [vi(n) for n in outputs],
                              list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _w(name: str, value: float = 1.0):
    return numpy_helper.from_array(np.full([4], value, np.float32), name)


def test_replaced_op_is_a_change_not_remove_and_add():
    a = _model([helper.make_node("Relu", ["x"], ["h"], name="act"),
                helper.make_node("Neg", ["h"], ["y"], name="out")])
    b = _model([helper.make_node("LeakyRelu", ["x"], ["h2"], name="act2", alpha=0.1),
                helper.make_node("Neg", ["h2"], ["y"], name="out")])
    r = diff_models(a, b)
    assert not r.added and not r.removed and len(r.changed) == 1
    c = r.changed[0]
    assert (c.op_type_was, c.op_type, c.attributes) == ("Relu", "LeakyRelu", {"alpha": (None, 0.1)})


def test_inserted_node_is_added_and_neighbours_rewired():
    a = _model([helper.make_node("Relu", ["x"], ["h"], name="r"),
                helper.make_node("Neg", ["h"], ["y"], name="n")])
    b = _model([helper.make_node("Relu", ["x"], ["h"], name="r"),
                helper.make_node("Abs", ["h"], ["h2"], name="inserted"),
                helper.make_node("Neg", ["h2"], ["y"], name="n")])
    r = diff_models(a, b)
    assert [x.name for x in r.added] == ["inserted"] and not r.removed
    assert [c.b for c in r.changed] == ["n"] and r.changed[0].inputs[0]["slot"] == 0


def test_symmetric_branches_and_value_change():
    def graph(scale: float, names: tuple[str, str]):
        return _model([helper.make_node("Mul", ["x", "w1"], ["p"], name=names[0]),
                       helper.make_node("Mul", ["x", "w2"], ["q"], name=names[1]),
                       helper.make_node("Add", ["p", "q"], ["y"], name="sum")],
                      [_w("w1", 2.0), _w("w2", scale)])
    assert diff_models(graph(2.0, ("m1", "m2")), graph(2.0, ("k1", "k2"))).equal
    r = diff_models(graph(2.0, ("m1", "m2")), graph(3.0, ("m1", "m2")))
    assert not r.changed and len(r.initializers) == 1
    assert r.initializers[0]["b"] == "w2" and r.initializers[0]["digest"]["old"] != \
        r.initializers[0]["digest"]["new"]
    assert "initializer w2 (input 1 of m2): values #" in render_text(r)


def test_interface_changes_are_reported():
    a = _model([helper.make_node("Relu", ["x"], ["y"])])
    b = _model([helper.make_node("Relu", ["img"], ["y"])], inputs=("img",))
    r = diff_models(a, b)
    assert to_json(r)["io"] == [{"kind": "input", "position": 0, "name": {"old": "x", "new": "img"},
                                 "change": "changed"}]
    assert not r.equal and not r.changed


def test_unsorted_graph_is_sorted_and_cycle_is_an_error():
    nodes = [helper.make_node("Neg", ["h"], ["y"], name="second"),
             helper.make_node("Relu", ["x"], ["h"], name="first")]
    assert diff_models(_model(nodes), _model(list(reversed(nodes)))).equal
    loop = _model([helper.make_node("Add", ["x", "y"], ["h"], name="a"),
                   helper.make_node("Relu", ["h"], ["y"], name="b")])
    with pytest.raises(GraphError, match="cycle"):
        diff_models(loop, loop)


def test_synthetic_graph_reports_exactly_the_planted_changes():
    """The benchmark's generator at 4k nodes: renames everywhere, three real changes."""
    bench_diff = import_bench("bench_diff")
    a = bench_diff.build(4000, seed=1)
    b, _ = bench_diff.reexport(a, seed=1)
    r = diff_models(a, b)
    modes = [c for c in r.changed if c.attributes == {"mode": ("reflect", "constant")}]
    assert len(modes) == 3 and all(c.op_type == "Pad" and not c.inputs for c in modes)
    assert [x.op_type for x in r.removed] == ["Relu"] and not r.added
    rewired = [c for c in r.changed if c not in modes]       # the removed Relu's reader
    assert len(rewired) == 1 and not rewired[0].attributes and len(rewired[0].inputs) == 1
    assert len(r.initializers) == 1 and r.initializers[0]["slot"] == 1


def test_change_inside_a_subgraph_is_reported():
    def model(alpha: float) -> onnx.ModelProto:
        out = helper.make_tensor_value_info("o", TensorProto.FLOAT, [1, 4])
        body = helper.make_graph([helper.make_node("LeakyRelu", ["x"], ["o"], alpha=alpha)],
                                 "body", [], [out])
        cond = helper.make_tensor_value_info("c", TensorProto.BOOL, [])
        graph = helper.make_graph(
            [helper.make_node("If", ["c"], ["y"], then_branch=body, else_branch=body)], "g",
            [cond, helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])

    assert diff_models(model(0.1), model(0.1)).equal
    r = diff_models(model(0.1), model(0.2))
    assert [c.op_type for c in r.changed] == ["If"]
    old, new = r.changed[0].attributes["then_branch"]
    assert old.startswith("<graph body with 1 nodes #") and old != new
