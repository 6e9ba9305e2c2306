"""Pattern rules (`rule NAME exact { match Op(..) where .. let .. => Op(..) }`): the catalogue
of built-in rewrites re-expressed as rules gives what the built-ins give, errors point at the
token, and the prover refuses a rule exact only under a condition it does not state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from gancc.errors import SpecError
from gancc.graph import Graph, op_histogram
from gancc.passes import registry
from gancc.passes.manager import VerifyOptions, run_pipeline
from gancc.passes.rules import make_rule_pass
from gancc.passes.rules_prove import prove, require_proof
from gancc.spec import parse_text
from gancc.spec.pattern_checks import FUNCTIONS
from tests.rewrites.rewrite_testing import copy, parse, random_feeds, run

CATALOGUE = Path(__file__).parent.parent / "examples" / "rules" / "catalogue.gan"
RULES = {r.name: r for r in parse_text(CATALOGUE.read_text(), str(CATALOGUE)).rules}

CONV = """
<ir_version: 8, opset_import: ["" : 11]>
g (float[1,3,8,8] x) => (float[1,4,H,W] y)
<int64[8] pads = {0, 0, 1, 2, 0, 0, 1, 2}, float[4,3,3,3] w = {WEIGHTS}, float[4] b = {1, 2, 3, 4}>
{
    [pad] p = Pad <mode = "MODE"> (x, pads)
    [conv] y = Conv <pads = [1, 0, 1, 0]> (p, w, b)
}
"""
TWO_CONVS = """
<ir_version: 8, opset_import: ["" : 11]>
g (float[1,3,8,8] x) => (float[1,4,10,10] y, float[1,4,10,10] z)
<int64[8] pads = {0, 0, 1, 2, 0, 0, 1, 2}, float[4,3,3,3] w = {WEIGHTS}>
{
    [pad] p = Pad (x, pads)
    [conv1] y = Conv <pads = [1, 0, 1, 0]> (p, w)
    [conv2] z = Conv <pads = [1, 0, 1, 0]> (p, w)
}
"""
POOL = """
<ir_version: 8, opset_import: ["" : 11]>
g (float[1,3,8,8] x) => (float[1,3,H,W] y)
<int64[8] pads = {0, 0, 1, 1, 0, 0, 1, 1}>
{
    [pad] p = Pad (x, pads)
    [pool] y = AveragePool <kernel_shape = [3, 3], count_include_pad = CIP> (p)
}
"""
BN = """
<ir_version: 8, opset_import: ["" : 11]>
g (float[1,3,8,8] x) => (float[1,4,6,6] y)
<float[4,3,3,3] w = {WEIGHTS}, float[4] b = {1, 2, 3, 4}, float[4] s = {1, 2, 0.5, 3},
 float[4] beta = {0, 1, 0, -1}, float[4] mean = {0.1, 0.2, 0.3, 0.4}, float[4] var = {1, 2, 3, 4}>
{
    [conv] c = Conv (x, w, b)
    [bn] y = BatchNormalization <epsilon = 0.001> (c, s, beta, mean, var)
}
"""
IDENTITY = """
<ir_version: 8, opset_import: ["" : 11]>
g (float[1,4,6,6] x) => (float[1,4,6,6] y, float[1,4,6,6] z)
{
    [relu] r = Relu (x)
    [id] i = Identity (r)
    [drop] d = Dropout <ratio = 0.5> (i)
    [tanh] y = Tanh (d)
    [sig] s = Sigmoid (x)
    [id2] z = Identity (s)
}
"""
RESIZE = """
<ir_version: 8, opset_import: ["" : 11]>
g (float[1,3,4,4] x) => (float[1,3,8,8] y)
<float[0] roi = {}, float[4] scales = {1, 1, 2, 2}>
{ [resize] y = Resize <mode = "MODE", cubic_coeff_a = -0.5> (x, roi, scales) }
"""
CONV_TRANSPOSE = """
<ir_version: 8, opset_import: ["" : 11]>
g (float[1,3,4,4] x) => (float[1,4,H,W] y)
<float[3,4,3,3] w = {WEIGHTS}, float[4] b = {1, 2, 3, 4}>
{ [convt] y = ConvTranspose <strides = [2, 2]KS> (x, w, b) }
"""
WEIGHTS = ", ".join(str(round(v, 3)) for v in np.random.default_rng(0).standard_normal(108))


def graphs(text: str, **subs) -> onnx.ModelProto:
    text = text.replace("WEIGHTS", WEIGHTS)
    for key, value in subs.items():
        text = text.replace(key, str(value))
    return parse(text)


# each rule, its built-in, and graphs (the rewrite tests' kinds) where both are run
CASES = [
    ("fuse-pad-into-conv", [graphs(CONV, MODE="constant", H=10, W=10),
                            graphs(CONV, MODE="reflect", H=10, W=10), graphs(TWO_CONVS)]),
    ("fuse-pad-into-avgpool", [graphs(POOL, CIP=1, H=8, W=8), graphs(POOL, CIP=0, H=8, W=8)]),
    ("fold-batchnorm-into-conv", [graphs(BN)]),
    ("remove-identity", [graphs(IDENTITY)]),
    ("resize-to-nearest", [graphs(RESIZE, MODE=m) for m in ("linear", "cubic", "nearest")]),
    ("reflect-pad-to-constant", [graphs(CONV, MODE=m, H=10, W=10) for m in ("reflect", "edge")]),
    ("conv-transpose-kernel-shape", [graphs(CONV_TRANSPOSE, KS="", H=9, W=9),
                                     graphs(CONV_TRANSPOSE, KS=", kernel_shape = [3, 3]",
                                            H=9, W=9)]),
]


def _attributes(model: onnx.ModelProto) -> list[dict]:
    return [{a.name: Graph.attr(n, a.name) for a in n.attribute} for n in model.graph.node]


@pytest.mark.parametrize("name, models", CASES, ids=[c[0] for c in CASES])
def test_catalogue_rule_does_what_its_builtin_does(name: str, models: list):
    rule = make_rule_pass(RULES[f"{name}-dsl"], 11, prove=False)
    for model in models:
        by_rule, by_python = copy(model), copy(model)
        (r,) = run_pipeline(by_rule, [rule], VerifyOptions(idempotent=True))
        (p,) = run_pipeline(by_python, [registry.make_pass(name)], VerifyOptions())
        assert bool(r.matches) == bool(p.matches)     # a rule counts roots, Python anchors
        assert op_histogram(by_rule) == op_histogram(by_python)
        assert _attributes(by_rule) == _attributes(by_python)
        assert [o.name for o in by_rule.graph.output] == [o.name for o in by_python.graph.output]
        feeds = random_feeds(model, seed=3)
        for a, b in zip(run(by_rule, feeds), run(by_python, feeds)):
            np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)


def test_a_declined_candidate_says_which_part_of_the_pattern_failed():
    rule = make_rule_pass(RULES["fuse-pad-into-conv-dsl"], 11, prove=False)
    (r,) = run_pipeline(graphs(CONV, MODE="reflect", H=10, W=10), [rule])
    assert r.declined == [("conv", 'where p.mode == "constant" and default(v, 0) == 0 and not '
                                   'is_output(p): p.mode is "reflect"')]
    (r,) = run_pipeline(graphs(BN), [rule])
    assert r.declined == [("conv", "Pad(x, pads, v?) as p: input 0 of Conv 'conv' is a graph "
                                   "input, not Pad")]


def test_the_prover_passes_an_exact_rule_and_refuses_one_missing_a_condition():
    proof = require_proof(RULES["fuse-pad-into-conv-dsl"])
    assert proof.instances == 100 and proof.counterexample is None
    text = CATALOGUE.read_text().replace('where p.mode == "constant" and', "where")
    unconditional = next(r for r in parse_text(text, "c.gan").rules
                         if r.name == "fuse-pad-into-conv-dsl")
    refused = prove(unconditional)
    assert refused.counterexample is not None
    assert 'mode="reflect"' in refused.counterexample or 'mode="edge"' in refused.counterexample
    assert "largest difference" in refused.counterexample
    with pytest.raises(SpecError, match="declared exact but changes the outputs"):
        require_proof(unconditional)


def test_lossy_rules_are_not_proven_and_say_so():
    lossy = make_rule_pass(RULES["resize-to-nearest-dsl"], 11)
    assert lossy.exact is False and make_rule_pass(RULES["remove-identity-dsl"]).exact


@pytest.mark.parametrize("marked, message, hint", [
    ("match Conv(@Paf(x, p), w)  => x", "unknown ONNX operator 'Paf'", "did you mean 'Pad'?"),
    ("match Conv(x, w) as c where @c.grop == 1  => x", "Conv has no attribute 'grop'",
     "did you mean 'group'?"),
    ("match Conv(x, w) where @lenn(w) == 1  => x", "unknown function 'lenn'", "'len'"),
    ("match Conv(x, w) where @ww == 1  => x", "'ww' is not bound", "did you mean 'w'?"),
    ("match Conv(x, w) as c  => Conv(x, w, @**d)", "no node of this pattern is labelled 'd'",
     None),
    ("match Conv(x, w)  => Conv(x, w, @grop=1)", "Conv has no attribute 'grop'", "'group'"),
])
def test_bad_pattern_rule_points_at_the_token(marked: str, message: str, hint):
    text = "rule a exact {\n    " + marked + "\n}\n"
    col = text.split("\n")[1].index("@") + 1
    with pytest.raises(SpecError) as info:
        parse_text(text.replace("@", ""), "bad.gan")
    assert (info.value.span.line, info.value.span.col) == (2, col), info.value.render()
    assert message in info.value.message
    if hint:
        assert hint in info.value.hint


def test_commutative_match_and_a_multi_node_replacement_with_new_constants():
    (rule,) = parse_text("""
rule hardsigmoid-expanded exact {
    match HardSigmoid(x) as h
    => Clip(Add(Mul(x, h.alpha), h.beta), 0.0, 1.0)
}
""", "r.gan").rules
    model = parse("""
    <ir_version: 8, opset_import: ["" : 11]>
    g (float[2,5] x) => (float[2,5] y) { [h] y = HardSigmoid <alpha = 0.3> (x) }
    """)
    original = copy(model)
    (r,) = run_pipeline(model, [make_rule_pass(rule, 11)], VerifyOptions(idempotent=True))
    assert r.matches == 1 and op_histogram(model) == {"Add": 1, "Clip": 1, "Mul": 1}
    assert [o.name for o in model.graph.output] == ["y"]
    feeds = {"x": np.linspace(-5, 5, 10, dtype=np.float32).reshape(2, 5)}
    np.testing.assert_allclose(run(model, feeds)[0], run(original, feeds)[0], atol=1e-6)
    (add_zero,) = parse_text("rule add-zero exact { match Add(x, z) where z == 0  => x }",
                             "r.gan").rules
    swapped = parse("""
    <ir_version: 8, opset_import: ["" : 11]>
    g (float[4] x) => (float[4] y) <float zero = {0.0}> { [a] s = Add (zero, x)
                                                           [n] y = Neg (s) }
    """)
    (r,) = run_pipeline(swapped, [make_rule_pass(add_zero, 11)])
    assert r.matches == 1 and op_histogram(swapped) == {"Neg": 1}


def test_every_function_the_front_end_knows_is_implemented():
    from gancc.passes import rules_expr

    source = Path(rules_expr.__file__).read_text()
    assert all(f'"{name}"' in source for name in FUNCTIONS)


def test_constant_only_parts_of_a_rule_are_marked_to_be_computed_once_per_pass():
    from gancc.passes.rules_pattern import source_text
    from gancc.passes.rules_pure import pure_subexpressions

    rule = RULES["fuse-pad-into-conv-dsl"]
    pure = pure_subexpressions(rule)
    texts = set()

    def walk(e):
        if id(e) in pure:
            texts.add((source_text(rule, e), pure[id(e)]))
        for a in e.args:
            if a is not None and not isinstance(a, (str, int, float)):
                walk(a)
    for step in rule.steps:
        walk(step[1] if step[0] == "where" else step[2])
    assert ("len(pads) // 2", ("pads",)) in texts                # a let of constants only
    assert ("default(v, 0) == 0", ("v",)) in texts
    assert ("pads[2:r] ++ pads[r + 2:]", ("pads",)) in texts     # through the pure let r
    assert ("zeros(2 * r - 4)", ("pads",)) in texts
    # node attributes and the graph around a node are read per candidate
    assert not any("p.mode" in t or "readers" in t or "c.pads" in t for t, _ in texts)
