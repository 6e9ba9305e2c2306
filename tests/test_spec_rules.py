"""Declarative rules in the spec (`rule NAME { match ... where ... ACTION }`): their errors
point at file:line:col against the ONNX schemas, and a rule runs through the same pass
machinery as a Python rewrite (statistics, provenance, verification, builds).

Bad specs mark with `@` where the error must point, as in test_spec_parse.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnx.parser
import pytest

from gancc.cli import main
from gancc.errors import SpecError
from gancc.graph import Graph, provenance
from gancc.passes import registry
from gancc.passes.manager import VerifyOptions, run_pipeline
from gancc.checks import check_spec
from gancc.passes.factory import make_passes
from gancc.passes.rules import make_rule_pass
from gancc.spec import parse_text
from tests.rewrites.rewrite_testing import copy, parse, run


def rule_pass(spec_text: str, name: str, opset: int = 11):
    rules = parse_text(spec_text + MODEL, "rules.gan").rules
    rule = next(r for r in rules if r.name == name)
    return make_rule_pass(rule, opset)


def apply(spec_text: str, name: str, model: onnx.ModelProto):
    (result,) = run_pipeline(model, [rule_pass(spec_text, name)], VerifyOptions(idempotent=True))
    return result


MODEL = '\nmodel m {\n    source onnx "m.onnx"\n}\n'

PAD_GRAPH = """
<ir_version: 8, opset_import: ["" : 11]>
pad_conv (float[1,3,8,8] x, float[4,3,3,3] w) => (float[1,4,10,10] y)
<int64[8] pads = {0, 0, 2, 2, 0, 0, 2, 2}>
{
    [pad] p = Pad <mode = "MODE"> (x, pads)
    [conv] y = Conv (p, w)
}
"""

DROPOUT_GRAPH = """
<ir_version: 8, opset_import: ["" : 11]>
g (float[1,4,6,6] x) => (float[1,4,6,6] y)
{
    [relu] r = Relu (x)
    [drop] d = Dropout <ratio = 0.5> (r)
    [tanh] y = Tanh (d)
}
"""

RULES = """
rule pads-to-zero "Reflect padding becomes zero padding" {
    match Pad where mode == "reflect"
    set mode = "constant"
}
rule drop-dropout { match Dropout  bypass }
rule cast-out { match Tanh  insert after Cast(to=float16) }
rule relu-before-clip {
    match Relu as r -> Clip where input[1] == 0
    bypass on r
}
"""


# -- errors ---------------------------------------------------------------------------------

def unmark(text: str) -> tuple[str, int, int]:
    assert text.count("@") == 1
    before, after = text.split("@")
    return before + after, before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


BAD_RULES = [
    ("unknown-op", "rule a { match @Conb  bypass }", "unknown ONNX operator 'Conb'",
     "did you mean 'Conv'?"),
    ("unknown-op-in-chain", "rule a { match Conv -> @Rleu  bypass }",
     "unknown ONNX operator 'Rleu'", "did you mean 'Relu'?"),
    ("unknown-attribute", 'rule a { match Pad where @mdoe == "reflect"  bypass }',
     "Pad has no attribute 'mdoe'", "did you mean 'mode'?"),
    ("unknown-attribute-far", "rule a { match Identity  set @zzz = 1 }",
     "Identity has no attribute 'zzz'", "Identity has no attributes"),
    ("unknown-attribute-lists-them", "rule a { match Pad  set @zzz = 1 }",
     "Pad has no attribute 'zzz'", "Pad has attributes: mode, paddings, pads, value"),
    ("wrong-value-type", "rule a { match Pad where mode == @3  bypass }",
     "attribute 'mode' of Pad takes a \"string\", got 3", None),
    ("wrong-list-type", 'rule a { match Conv  set pads = @"1" }',
     "attribute 'pads' of Conv takes a list of integers", None),
    ("insert-missing-attribute", "rule a { match Tanh  insert after @Cast() }",
     "Cast needs attribute 'to'", "Cast(to=...)"),
    ("insert-wrong-type", 'rule a { match Tanh  insert after Cast(@to="x") }',
     "attribute 'to' of Cast takes an integer", "dtype names"),
    ("unknown-op-action", "rule a { match Relu  op @Sigmod }", "unknown ONNX operator 'Sigmod'",
     "did you mean 'Sigmoid'?"),
    ("unknown-dtype", "rule a { match Relu where dtype == @flaot32  bypass }",
     'unknown dtype "flaot32"', "did you mean 'float32'?"),
    ("unknown-label", "rule a { match Pad as p -> Conv  set @q.group = 1 }",
     "no node of this match is labelled 'q'", "labels: p"),
    ("input-predicate-spelling", "rule a { match Clip where @inputs[1] is constant  bypass }",
     "'inputs[...]' is not a predicate", "input[i]"),
    ("bypass-then-set", "rule a { match Relu  bypass  set @alpha = 1 }",
     "this node is bypassed at line 1", "put `bypass` last"),
    ("twice", "rule a { match Relu  bypass }\nrule @a { match Tanh  bypass }",
     "rule 'a' is declared twice", "the first is at line 1"),
    ("not-kebab", "rule @drop_dropout { match Dropout  bypass }",
     "rule name 'drop_dropout' is not kebab-case", "drop-dropout"),
    ("misspelt-keyword", "rule a { @mach Relu  bypass }", "unexpected 'mach'",
     "did you mean 'match'?"),
    ("syntax", "rule a { match Relu where alpha @= 1  bypass }",
     "unexpected '='", None),
]


@pytest.mark.parametrize("marked, message, hint", [c[1:] for c in BAD_RULES],
                         ids=[c[0] for c in BAD_RULES])
def test_bad_rule_points_at_the_mistake(marked: str, message: str, hint: str | None):
    text, line, col = unmark(marked)
    with pytest.raises(SpecError) as info:
        parse_text(text + MODEL, "specs/bad.gan")
    err = info.value
    assert (err.span.line, err.span.col) == (line, col), err.render()
    rendered = err.render().split("\n")
    assert rendered[0].startswith(f"specs/bad.gan:{line}:{col}: error: ")
    assert message in rendered[0]
    assert "^" in rendered[2]
    if hint is not None:
        assert hint in rendered[-1]


def test_a_rule_may_not_take_the_name_of_a_registered_rewrite():
    """Checked where the passes are made (the registry is known only once the spec's user
    code is loaded), at the rule's name, with the spec's text for the caret."""
    text, line, col = unmark("rule @fuse-pad-into-conv { match Pad  bypass }")
    spec = parse_text(text + MODEL, "specs/bad.gan")        # parsing runs no registry check
    with pytest.raises(SpecError) as info:
        check_spec(spec)
    err = info.value
    assert (err.span.line, err.span.col) == (line, col)
    rendered = err.render().split("\n")
    assert rendered[0].startswith(f"specs/bad.gan:{line}:{col}: error: rule 'fuse-pad-into-conv'"
                                  " has the name of the rewrite defined at")
    assert "^" in rendered[2] and rendered[-1] == "hint: rename the rule"


@pytest.mark.parametrize("rule, opset, message, hint", [
    ("rule a { match Pad  set @pads = [0, 0, 1, 1, 0, 0, 1, 1] }", 13,
     "Pad at opset 13 has no attribute 'pads'", "has attributes: mode"),
    ("rule a { match Relu  op @Gelu }", 11, "Gelu does not exist at opset 11",
     "defined from opset 20"),
    ("rule a { match @Gelu  bypass }", 11, "Gelu does not exist at opset 11", None),
], ids=["attribute-gone-at-opset", "op-action-too-new", "anchor-too-new"])
def test_rule_is_checked_at_the_model_opset(rule: str, opset: int, message: str, hint):
    text, line, col = unmark(rule)
    spec = parse_text(text + MODEL.replace("source", f"opset {opset}\n    rewrite {{ a }}\n"
                                                     "    source"), "op.gan")
    with pytest.raises(SpecError) as info:
        check_spec(spec)
    err = info.value
    assert (err.span.line, err.span.col) == (line, col)
    assert message in err.message
    if hint:
        assert hint in err.hint


def test_a_rule_takes_no_options():
    spec = parse_text("rule a { match Relu  bypass }" +
                      MODEL.replace("}\n", "    rewrite { a{x=1} }\n}\n", 1), "o.gan")
    with pytest.raises(SpecError, match="rule 'a' takes no options"):
        make_passes(spec.models[0])


def test_misspelt_rule_in_the_pipeline_suggests_it():
    spec = parse_text("rule drop-dropout { match Dropout  bypass }" +
                      MODEL.replace("}\n", "    rewrite { drop-dropuot }\n}\n", 1), "o.gan")
    with pytest.raises(SpecError) as info:
        make_passes(spec.models[0])
    assert info.value.hint == "did you mean 'drop-dropout'?"


# -- rules at work --------------------------------------------------------------------------

def test_bypassing_dropout_is_exact_under_onnxruntime():
    model = parse(DROPOUT_GRAPH)
    original = copy(model)
    result = apply(RULES, "drop-dropout", model)
    assert (result.matches, result.nodes_removed) == (1, 1)
    assert [n.op_type for n in model.graph.node] == ["Relu", "Tanh"]
    assert list(model.graph.node[1].input) == ["r"]
    assert provenance(model.graph.node[1]) == ["drop-dropout"]     # the rewired reader
    x = np.random.default_rng(0).standard_normal((1, 4, 6, 6), dtype=np.float32)
    np.testing.assert_array_equal(run(model, {"x": x})[0], run(original, {"x": x})[0])


def test_bypass_declines_when_the_output_is_a_graph_output():
    model = parse("""
    <ir_version: 8, opset_import: ["" : 11]>
    g (float[2] x) => (float[2] y)
    { [drop] y = Dropout (x) }
    """)
    result = apply(RULES, "drop-dropout", model)
    assert result.declined == [("drop", "the Dropout output is a graph output")]


def test_insert_after_cast_changes_the_output_dtype():
    model = parse(DROPOUT_GRAPH)
    result = apply(RULES, "cast-out", model)
    assert (result.matches, result.nodes_added) == (1, 1)
    assert [n.op_type for n in model.graph.node] == ["Relu", "Dropout", "Tanh", "Cast"]
    cast = model.graph.node[-1]
    assert list(cast.output) == ["y"] and Graph.attr(cast, "to") == onnx.TensorProto.FLOAT16
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    onnx.checker.check_model(model, full_check=True)
    x = np.ones((1, 4, 6, 6), np.float32)
    assert run(model, {"x": x})[0].dtype == np.float16
    # the idempotence check above ran it again: the Tanh, already rewritten, declines
    again = apply(RULES, "cast-out", model)
    assert again.declined == [("tanh", "'tanh' was already rewritten by cast-out")]


def test_set_rule_equals_reflect_pad_to_constant():
    by_rule, by_python = parse(PAD_GRAPH.replace("MODE", "reflect")), \
        parse(PAD_GRAPH.replace("MODE", "reflect"))
    rule_result = apply(RULES, "pads-to-zero", by_rule)
    (python_result,) = run_pipeline(by_python, [registry.make_pass("reflect-pad-to-constant")])
    assert rule_result.matches == python_result.matches == 1
    for a, b in zip(by_rule.graph.node, by_python.graph.node):
        assert (a.op_type, list(a.input), list(a.output)) == \
            (b.op_type, list(b.input), list(b.output))
        assert {x.name: Graph.attr(a, x.name) for x in a.attribute} == \
            {x.name: Graph.attr(b, x.name) for x in b.attribute}
    feeds = {"x": np.random.default_rng(1).standard_normal((1, 3, 8, 8), dtype=np.float32),
             "w": np.random.default_rng(2).standard_normal((4, 3, 3, 3), dtype=np.float32)}
    np.testing.assert_array_equal(run(by_rule, feeds)[0], run(by_python, feeds)[0])
    # and both say the same when they leave a Pad alone
    edge_rule, edge_python = parse(PAD_GRAPH.replace("MODE", "edge")), \
        parse(PAD_GRAPH.replace("MODE", "edge"))
    assert apply(RULES, "pads-to-zero", edge_rule).declined == \
        run_pipeline(edge_python, [registry.make_pass("reflect-pad-to-constant")])[0].declined


def test_rules_show_in_pass_results_and_provenance():
    spec = parse_text(RULES + MODEL.replace(
        "}\n", "    rewrite { pads-to-zero fuse-pad-into-conv }\n}\n", 1), "r.gan")
    passes = make_passes(spec.models[0])
    assert [p.name for p in passes] == ["pads-to-zero", "fuse-pad-into-conv"]
    assert passes[0].source == "r.gan:2" and passes[0].pipeline_text() == "pads-to-zero"
    model = parse(PAD_GRAPH.replace("MODE", "reflect"))
    results = run_pipeline(model, passes, VerifyOptions(idempotent=True))
    stats = [r.to_json() for r in results]
    assert stats[0]["pass"] == "pads-to-zero" and stats[0]["matches"] == 1
    assert stats[1]["pass"] == "fuse-pad-into-conv" and stats[1]["matches"] == 1
    (conv,) = model.graph.node
    assert provenance(conv) == ["fuse-pad-into-conv"]
    assert registry.summary(type(passes[0])) == "Reflect padding becomes zero padding"
    assert "match Pad where mode" in registry.description(type(passes[0]))


def test_chain_rule_bypasses_a_relu_before_a_clip_at_zero():
    text = """
    <ir_version: 8, opset_import: ["" : 11]>
    g (float[8] x) => (float[8] y)
    <float lo = {LO}, float hi = {6.0}>
    {
        [relu] r = Relu (x)
        [clip] y = Clip (r, lo, hi)
    }
    """
    model = parse(text.replace("LO", "0.0"))
    original = copy(model)
    result = apply(RULES, "relu-before-clip", model)
    assert result.matches == 1
    assert [n.op_type for n in model.graph.node] == ["Clip"]
    x = np.linspace(-3, 9, 8, dtype=np.float32)
    np.testing.assert_array_equal(run(model, {"x": x})[0], run(original, {"x": x})[0])
    other = parse(text.replace("LO", "-1.0"))
    assert apply(RULES, "relu-before-clip", other).declined == [("relu", "input 1 is -1.0, not 0")]


def test_dtype_and_constant_predicates():
    rules = """
    rule f16-relu { match Relu where dtype == float16  op Sigmoid }
    rule const-clip { match Clip where input[1] is constant and input[2] is not constant
                      rename "clipped" }
    """
    model = parse("""
    <ir_version: 8, opset_import: ["" : 11]>
    g (float[4] x, float hi) => (float[4] y)
    <float lo = {0.0}>
    {
        [relu] r = Relu (x)
        [clip] y = Clip (r, lo, hi)
    }
    """)
    assert apply(rules, "f16-relu", model).declined == [("relu", "input 0 is float32, not float16")]
    result = apply(rules, "const-clip", model)
    assert result.matches == 1 and model.graph.node[1].name == "clipped"
    assert provenance(model.graph.node[1]) == ["const-clip"]


def test_rewrites_statement_loads_a_folder_when_passes_are_made(tmp_path: Path, monkeypatch):
    from tests.test_registry import USER_REWRITE

    # a registry of this test's own: what the folder registers stays out of the default one
    monkeypatch.setattr(registry, "DEFAULT", registry.Registry())
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "remove_identity_for_test.py").write_text(USER_REWRITE)
    spec_text = 'rewrites "mine/"\n' + MODEL.replace(
        "}\n", "    rewrite { remove-identity-for-test }\n}\n", 1)
    spec = parse_text(spec_text, tmp_path / "s.gan")
    assert "remove-identity-for-test" not in registry.all_rewrites(), \
        "parsing a spec runs none of its user code"
    assert [p.name for p in make_passes(spec.models[0])] == ["remove-identity-for-test"]

    missing = parse_text('\nrewrites "missing/"' + MODEL, tmp_path / "s.gan")
    assert missing.rewrite_dirs[0].path == tmp_path / "missing"
    with pytest.raises(SpecError) as info:
        make_passes(missing.models[0])
    assert (info.value.span.line, info.value.span.col) == (2, 1)
    assert "rewrite folder not found" in info.value.message
    assert info.value.hint == "the path is relative to the spec file's folder"


def test_entry_point_packages_are_loaded(monkeypatch):
    """A distribution declaring `gancc.rewrites` entry points has them imported."""
    loaded = []

    class FakeEntryPoint:
        name = "fake-pack"

        def load(self):
            loaded.append(self.name)

    calls = []

    def fake_entry_points(group):
        calls.append(group)
        return [FakeEntryPoint()]

    # only the entry points, into a registry of the test's own
    monkeypatch.setattr(registry.pkgutil, "iter_modules", lambda path: [])
    monkeypatch.setattr(registry, "entry_points", fake_entry_points)
    registry.Registry().load_builtin()
    assert calls == ["gancc.rewrites"] and loaded == ["fake-pack"]

    class Broken(FakeEntryPoint):
        def load(self):
            raise ImportError("no module named fake_pack")

    monkeypatch.setattr(registry, "entry_points", lambda group: [Broken()])
    with pytest.raises(registry.RegistryError, match="'fake-pack' failed to load"):
        registry.Registry().load_builtin()


def test_a_rule_in_a_build(tmp_path: Path):
    model = parse(DROPOUT_GRAPH.replace("1,4,6,6", "N,4,6,6"))
    onnx.save(model, str(tmp_path / "drop.onnx"))
    spec = tmp_path / "drop.gan"
    spec.write_text(RULES + """
model drop {
    source onnx "drop.onnx"
    input x: float32[N, 4, 6, 6] batch 1
    output y
    rewrite { drop-dropout  cast-out }
    atc { soc_version Ascend310 }
    validate { reference none }
}
""")
    assert main(["build", str(spec), "-o", str(tmp_path / "out"), "--no-atc",
                 "--check-idempotent", "-q"]) == 0
    report = json.loads((tmp_path / "out" / "drop" / "report.json").read_text())
    assert report["pipeline"] == "drop-dropout,cast-out"
    assert [(p["pass"], p["matches"]) for p in report["passes"]] == [("drop-dropout", 1),
                                                                     ("cast-out", 1)]
    built = onnx.load(str(tmp_path / "out" / "drop" / "drop.onnx"))
    assert [n.op_type for n in built.graph.node] == ["Relu", "Tanh", "Cast"]
    assert provenance(built.graph.node[2]) == ["cast-out"]


def test_in_not_equal_remove_insert_before_and_op():
    rules = """
    rule pad-mode { match Pad where mode in ["edge", "reflect"] and mode != "edge"  remove mode }
    rule cast-in { match Relu  insert before Cast(to=float32) }
    rule leaky-to-relu { match LeakyRelu  op Relu }
    rule leaky-to-relu-clean { match LeakyRelu  remove alpha  op Relu }
    """
    pad = {m: parse(PAD_GRAPH.replace("MODE", m)) for m in ("reflect", "edge", "constant")}
    assert apply(rules, "pad-mode", pad["reflect"]).matches == 1
    assert Graph.attr(pad["reflect"].graph.node[0], "mode") is None
    assert apply(rules, "pad-mode", pad["edge"]).declined == [("pad", "mode is 'edge'")]
    assert apply(rules, "pad-mode", pad["constant"]).declined == [
        ("pad", 'mode is \'constant\', not one of ["edge", "reflect"]')]

    model = parse(DROPOUT_GRAPH)
    assert apply(rules, "cast-in", model).matches == 1
    cast, relu = model.graph.node[:2]
    assert cast.op_type == "Cast" and list(cast.input) == ["x"]
    assert list(relu.input) == list(cast.output) and provenance(cast) == ["cast-in"]

    leaky = """
    <ir_version: 8, opset_import: ["" : 11]>
    g (float[4] x) => (float[4] y) { [lrelu] y = LeakyRelu <alpha = 0.1> (x) }
    """
    assert apply(rules, "leaky-to-relu", parse(leaky)).declined == [
        ("lrelu", "Relu has no attribute 'alpha' (of 'lrelu')")]
    model = parse(leaky)
    assert apply(rules, "leaky-to-relu-clean", model).matches == 1
    assert [(n.op_type, len(n.attribute)) for n in model.graph.node] == [("Relu", 0)]


def test_a_file_of_rules_only_parses_for_explain_and_opt():
    spec = parse_text(RULES, "only_rules.gan")
    assert spec.models == () and [r.name for r in spec.rules][:2] == ["pads-to-zero",
                                                                        "drop-dropout"]


def test_cli_passes_opt_and_build_with_a_rules_file(tmp_path: Path, capsys):
    spec = tmp_path / "rules.gan"
    spec.write_text(RULES)
    assert main(["passes", "--spec", str(spec)]) == 0
    listed = capsys.readouterr().out
    assert "drop-dropout" in listed and "fuse-pad-into-conv" in listed
    assert main(["passes", "--spec", str(spec), "pads-to-zero"]) == 0
    described = " ".join(capsys.readouterr().out.split())      # rich wraps long lines
    assert f"defined at {spec}:2" in described and 'set mode = "constant"' in described
    assert main(["passes", "--markdown", "--spec", str(spec)]) == 0
    assert f"| `cast-out` | rule | spec rule ({spec}:7) |" in capsys.readouterr().out

    onnx.save(parse(DROPOUT_GRAPH), str(tmp_path / "m.onnx"))
    assert main(["opt", str(tmp_path / "m.onnx"), "--spec", str(spec), "--check-idempotent",
                 "--passes", "drop-dropout,cast-out", "-o", str(tmp_path / "o.onnx")]) == 0
    assert "drop-dropout: 1 match(es), -1/+0 nodes" in capsys.readouterr().out
    out = onnx.load(str(tmp_path / "o.onnx"))
    assert [n.op_type for n in out.graph.node] == ["Relu", "Tanh", "Cast"]

    assert main(["build", str(spec), "--no-atc"]) == 1
    assert "declares no model to build" in capsys.readouterr().err


def test_one_rule_pass_works_out_each_graph_afresh():
    """What a rule derives from a graph (opset, element types, node order) lives for one pass
    run, in that run's Graph memo: the same pass instance on another graph sees that graph."""
    from gancc.passes.base import run_rewrite
    from gancc.passes.rules import rule_class

    (rule,) = parse_text("rule f16-relu { match Relu where dtype == float16  op Sigmoid }",
                         "t.gan").rules
    rule_pass = make_rule_pass(rule)
    graph = """
    <ir_version: 8, opset_import: ["" : 11]>
    g (TYPE[4] x) => (TYPE[4] y) { [relu] y = Relu (x) }
    """
    f32, f16 = parse(graph.replace("TYPE", "float")), parse(graph.replace("TYPE", "float16"))
    assert run_rewrite(rule_pass, f32).declined == [("relu", "input 0 is float32, not float16")]
    assert run_rewrite(rule_pass, f16).matches == 1
    assert [n.op_type for n in f16.graph.node] == ["Sigmoid"]
    # one class per parsed rule, from a bounded cache (rules of specs read long ago go)
    assert type(rule_pass) is rule_class(rule) and rule_class.cache_info().maxsize is not None
    at_opset_6 = parse(graph.replace("TYPE", "float").replace('"" : 11', '"" : 6'))
    rule13 = parse_text("rule pads-13 { match Pad  set pads = [0, 0, 1, 1, 0, 0, 1, 1] }",
                        "t.gan").rules[0]
    with pytest.raises(SpecError, match="Pad at opset 13 has no attribute 'pads'"):
        run_rewrite(make_rule_pass(rule13), parse(PAD_GRAPH.replace("MODE", "reflect")
                                                  .replace('"" : 11', '"" : 13')))
    assert run_rewrite(rule_pass, at_opset_6).declined      # checked at each graph's opset
