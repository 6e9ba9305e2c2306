"""The catalogue's pattern rules (examples/rules/catalogue.gan) on the seed models' exports:
each rule and its built-in, run on copies of the same graph, leave the same graph (op
histogram, attributes, output names) computing the same numbers (within 1e-6).

The exports are the build's export + simplify route (gancc.stages.export, .simplify) at a
tiny size: ResnetGenerator (CycleGAN), StarGAN, pix2pixHD's LocalEnhancer and the MNIST GAN's
MLP; BigBiGAN's TensorFlow graph (tf2onnx) when TensorFlow is installed. Each is tried as
exported and after reflect-pad-to-constant (so the zero Pads the fuse rules want exist).

Match counts may differ by design and are not compared: a rule counts one match per root
node (a Pad fused into two Convs is two matches of fuse-pad-into-conv-dsl), a Python rewrite
one per anchor node (one match of fuse-pad-into-conv).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from gancc.graph import Graph, op_histogram
from gancc.passes import registry
from gancc.passes.manager import VerifyOptions, run_pipeline
from gancc.passes.rules import make_rule_pass
from gancc.spec import parse_text
from tests.rewrites.rewrite_testing import copy, run

REPO = Path(__file__).resolve().parents[1]
CATALOGUE = REPO / "examples" / "rules" / "catalogue.gan"
RULES = {r.name: r for r in parse_text(CATALOGUE.read_text(), str(CATALOGUE)).rules}

# each built-in, and the catalogue rules that together do what it does
PAIRS = [
    ("reflect-pad-to-constant", ["reflect-pad-to-constant-dsl"]),
    ("fuse-pad-into-conv", ["fuse-pad-into-conv-dsl"]),
    ("fuse-pad-into-avgpool", ["fuse-pad-into-avgpool-dsl"]),
    ("fold-batchnorm-into-conv", ["fold-batchnorm-into-conv-dsl", "fold-batchnorm-into-gemm-dsl"]),
    ("remove-identity", ["remove-identity-dsl"]),
    ("resize-to-nearest", ["resize-to-nearest-dsl"]),
    ("conv-transpose-kernel-shape", ["conv-transpose-kernel-shape-dsl"]),
]
# (architecture call, inputs) at a tiny size
SEEDS = {
    "cyclegan": ("resnet_generator(ngf=4, n_blocks=1)", "image: float32[N, 3, 32, 32]"),
    "stargan": ("stargan_generator(conv_dim=4, c_dim=5, repeat_num=1)",
                "real_img: float32[N, 3, 32, 32]", "attr: float32[N, 5]"),
    "pix2pixhd": ("pix2pixhd_local_enhancer(input_nc=4, ngf=4, n_downsample_global=1, "
                  "n_blocks_global=1, n_blocks_local=1)", "label: float32[N, 4, 32, 32]"),
    "gan": ("mnist_mlp_generator(latent_dim=8, img_size=8)", "z: float32[N, 8]"),
}
SPEC = "model m {\n    source pytorch {\n        arch %s\n    }\n%s\n    output out\n}\n"


def _export_pytorch(arch: str, *inputs: str) -> onnx.ModelProto:
    from gancc import archs
    from gancc.stages import export, simplify
    from gancc.stages.weights import init_random

    lines = "\n".join(f"    input {i} batch 1" for i in inputs)
    model = parse_text(SPEC % (arch, lines), "seed.gan").models[0]
    name, _, args = arch.partition("(")
    kwargs = {k.strip(): int(v) for k, v in (a.split("=") for a in args.rstrip(")").split(","))}
    module = archs.get(name).build(**kwargs)
    init_random(module, 0)
    exported = export.export(module.eval(), model)
    final, _ = simplify.simplify(exported.graph, "m")
    export.attach_weights(final, exported.weights)
    return final


def _export_bigbigan(folder: Path) -> onnx.ModelProto:
    from gancc.stages import simplify
    from gancc.stages.tensorflow import convert, read_graph_def
    from gancc.tf_bigbigan import write_pb

    pb = write_pb(folder / "bigbigan.pb", batch=4, ch=16, seed=1)
    text = (REPO / "specs" / "bigbigan.gan").read_text() \
        .replace("float32[256, 100] batch 256", "float32[4, 100] batch 4") \
        .replace("int32[256] batch 256", "int32[4] batch 4")
    model = parse_text(text, str(folder / "bigbigan.gan")).models[0]
    return simplify.simplify(convert(model, read_graph_def(pb, None)), "bigbigan")[0]


@pytest.fixture(scope="module")
def exports() -> dict[str, onnx.ModelProto]:
    return {name: _export_pytorch(*seed) for name, seed in SEEDS.items()}


def _attributes(model: onnx.ModelProto) -> list[dict]:
    return [{a.name: Graph.attr(n, a.name) for a in n.attribute} for n in model.graph.node]


def _feeds(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    inits = {t.name for t in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name not in inits:
            tensor = vi.type.tensor_type
            dims = [d.dim_value or 1 for d in tensor.shape.dim]
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)
            feeds[vi.name] = rng.integers(0, 10, dims).astype(dtype) if dtype.kind in "iu" \
                else rng.standard_normal(dims).astype(dtype)
    return feeds


def compare(model: onnx.ModelProto, builtin: str, rules: list[str]) -> tuple[int, int]:
    """Run `builtin` and `rules` on copies of `model`; assert the same graph and numbers.
    Returns (matches of the built-in, matches of the rules)."""
    by_python, by_rules = copy(model), copy(model)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    (p,) = run_pipeline(by_python, [registry.make_pass(builtin)], VerifyOptions())
    results = run_pipeline(by_rules, [make_rule_pass(RULES[r], opset, prove=False)
                                      for r in rules], VerifyOptions(idempotent=True))
    assert op_histogram(by_rules) == op_histogram(by_python), builtin
    assert _attributes(by_rules) == _attributes(by_python), builtin
    assert [o.name for o in by_rules.graph.output] == [o.name for o in by_python.graph.output]
    feeds = _feeds(model)
    for a, b in zip(run(by_rules, feeds), run(by_python, feeds)):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0, err_msg=builtin)
    return p.matches, sum(r.matches for r in results)


def _prepared(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` after reflect-pad-to-constant: zero constant Pads, as the fuse rules want."""
    prepared = copy(model)
    run_pipeline(prepared, [registry.make_pass("reflect-pad-to-constant")], VerifyOptions())
    return prepared


def test_every_rule_of_a_pair_is_in_the_catalogue():
    named = {r for _, rules in PAIRS for r in rules}
    assert named <= set(RULES) and {r for r in RULES if r.endswith("-dsl")} <= named


@pytest.mark.parametrize("seed", list(SEEDS))
def test_catalogue_rules_do_what_their_builtins_do_on_the_seed_exports(exports, seed):
    fired = {}
    for graph in (exports[seed], _prepared(exports[seed])):
        for builtin, rules in PAIRS:
            python_matches, rule_matches = compare(graph, builtin, rules)
            assert bool(python_matches) == bool(rule_matches), (seed, builtin)
            fired[builtin] = fired.get(builtin, 0) + python_matches
    # what these exports hold, so the comparison above is not of graphs nothing touched
    expected = {"cyclegan": ["reflect-pad-to-constant", "fuse-pad-into-conv"],
                "stargan": [], "pix2pixhd": ["reflect-pad-to-constant", "fuse-pad-into-conv"],
                "gan": ["fold-batchnorm-into-conv"]}[seed]
    assert [b for b, _ in PAIRS if fired[b]] == expected


def test_catalogue_rules_do_what_their_builtins_do_on_bigbigan(tmp_path):
    pytest.importorskip("tensorflow")
    pytest.importorskip("tf2onnx")
    model = _export_bigbigan(tmp_path)
    for graph in (model, _prepared(model)):
        for builtin, rules in PAIRS:
            python_matches, rule_matches = compare(graph, builtin, rules)
            assert bool(python_matches) == bool(rule_matches), builtin
