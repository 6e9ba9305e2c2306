"""The export stage: weight-free export, reduced-size tracing and its fallbacks, weights
attached after onnxsim (gancc/stages/export.py).

The reference for every check is the classic route: the generator exported at the spec's
size with its weights (`export_params=True`), then onnxsim. The weight-free route must give
the same graph (gancc diff finds no change) and the same numbers in onnxruntime."""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from gancc import archs
from gancc.diff import diff_models
from gancc.spec import parse_text
from gancc.stages import export, simplify
from gancc.stages.weights import init_random

SPEC = """\
model m {
    source pytorch {
        arch resnet_generator(ngf=4, n_blocks=1)
    }
%(inputs)s
    output out
}
"""


def _model(inputs: str):
    return parse_text(SPEC % {"inputs": inputs}, "t.gan").models[0]


def _classic(module, model) -> onnx.ModelProto:
    """Export at the spec's size with the weights in the graph, then onnxsim."""
    dummies = [torch.randn(inp.concrete_shape(1)) for inp in model.inputs]
    axes = {i.name: {0: "N"} for i in model.inputs} | {o: {0: "N"} for o in model.output_names}
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, tuple(dummies), buffer, opset_version=11, dynamo=False,
                          input_names=model.input_names, output_names=model.output_names,
                          dynamic_axes=axes, do_constant_folding=True)
    return simplify.simplify(onnx.load_from_string(buffer.getvalue()), "classic")[0]


def _weightless_route(module, model) -> tuple[onnx.ModelProto, export.ExportedGraph]:
    exported = export.export(module, model)
    final, _ = simplify.simplify(exported.graph, "weightless")
    assert simplify.weight_only_reader(final, set(exported.weights)) is None
    export.attach_weights(final, exported.weights)
    return final, exported


def _run(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    return ort.InferenceSession(model.SerializeToString()).run(None, feeds)


def _resnet():
    module = archs.get("resnet_generator").build(ngf=4, n_blocks=1)
    init_random(module, 3)
    return module.eval()


def test_reduced_size_trace_gives_the_classic_graph():
    model = _model("    input img: float32[N, 3, 128, 128] batch 1")
    module = _resnet()
    final, exported = _weightless_route(module, model)
    assert exported.reduced and exported.traced_at == {"img": [1, 3, 32, 32]}
    assert exported.fallback is None
    onnx.checker.check_model(final, full_check=True)
    classic = _classic(module, model)
    assert diff_models(classic, final).equal
    assert final.graph.input == classic.graph.input and final.graph.output == classic.graph.output
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 128, 128)).astype(np.float32)
    got, want = _run(final, {"img": x})[0], _run(classic, {"img": x})[0]
    assert got.shape == (2, 3, 128, 128)
    np.testing.assert_array_equal(got, want)
    with torch.no_grad():
        np.testing.assert_allclose(got, module(torch.from_numpy(x)).numpy(), atol=1e-5)


def test_small_inputs_are_traced_at_their_own_size():
    model = _model("    input img: float32[N, 3, 64, 64] batch 1")   # 64 / 8 < 16: not reduced
    exported = export.export(_resnet(), model)
    assert not exported.reduced and exported.fallback is None
    assert exported.traced_at == {"img": [1, 3, 64, 64]}


class _SizeBaked(nn.Module):
    """Adds a constant computed from the traced size: the graph depends on the input size."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return self.conv(x) + float(int(x.shape[-1]))   # int(): the tracer bakes the value


class _FixedSizeOnly(nn.Module):
    """Refuses any size but the spec's, as some hand-written generators do."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        if int(x.shape[-1]) != 128:
            raise ValueError("this generator runs at 128x128 only")
        return self.conv(x)


@pytest.mark.parametrize("module, because", [(_SizeBaked(), "depends on the input size"),
                                             (_FixedSizeOnly(), "reduced-size trace failed")])
def test_size_dependent_graphs_are_traced_at_the_spec_size(module, because):
    model = _model("    input img: float32[N, 3, 128, 128] batch 1")
    module.eval()
    final, exported = _weightless_route(module, model)
    assert not exported.reduced and because in exported.fallback
    assert exported.traced_at == {"img": [1, 3, 128, 128]}
    x = np.random.default_rng(1).standard_normal((1, 3, 128, 128)).astype(np.float32)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(_run(final, {"img": x})[0], want, atol=1e-5)


def test_stargan_two_inputs_match_the_classic_graph():
    """An image and an attribute vector tiled over it: only the image has spatial dims."""
    model = _model("    input real_img: float32[N, 3, 128, 128] batch 1\n"
                   "    input attr: float32[N, 5] batch 1")
    module = archs.get("stargan_generator").build(conv_dim=4, c_dim=5, repeat_num=1)
    init_random(module, 0)
    module.eval()
    final, exported = _weightless_route(module, model)
    classic = _classic(module, model)
    rng = np.random.default_rng(2)
    feeds = {"real_img": rng.uniform(-1, 1, (2, 3, 128, 128)).astype(np.float32),
             "attr": (rng.random((2, 5)) < 0.5).astype(np.float32)}
    np.testing.assert_allclose(_run(final, feeds)[0], _run(classic, feeds)[0], atol=1e-6)
    if exported.reduced:         # the tiling reads the size through Shape: graphs are equal
        assert diff_models(classic, final).equal


class _WeightNormed(nn.Module):
    """weight_norm computes the conv weight from two parameters in every forward; the
    exporter folds that into a tensor of its own, which no parameter name reaches."""

    def __init__(self):
        super().__init__()
        self.conv = nn.utils.parametrizations.weight_norm(nn.Conv2d(3, 3, 3, padding=1))

    def forward(self, x):
        return self.conv(x)


def test_generators_with_computed_weights_are_exported_with_them():
    model = _model("    input img: float32[N, 3, 128, 128] batch 1")
    module = _WeightNormed().eval()
    exported = export.export(module, model)
    assert exported.weights == {} and "weight norm" in exported.fallback
    assert exported.traced_at == {"img": [1, 3, 128, 128]} and not exported.reduced
    final, _ = simplify.simplify(exported.with_weights(), "m")
    assert [n.op_type for n in final.graph.node] == ["Conv"]
    assert [i.name for i in final.graph.input] == ["img"]
    x = np.random.default_rng(3).standard_normal((1, 3, 128, 128)).astype(np.float32)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(_run(final, {"img": x})[0], want, atol=1e-5)


def test_weight_only_reader_finds_a_computation_on_weights_alone():
    graph = onnx.parser.parse_model("""
        <ir_version: 7, opset_import: ["" : 11]>
        g (float[1, 3, 8, 8] x, float[3, 3, 3, 3] w) => (float[1, 3, 6, 6] y) {
            wt = Transpose <perm = [1, 0, 2, 3]> (w)
            y = Conv (x, wt)
        }""")
    assert simplify.weight_only_reader(graph, {"w"}) == "wt"
    assert simplify.weight_only_reader(graph, set()) is None


def test_a_plain_generator_has_no_weight_only_computation():
    model = _model("    input img: float32[N, 3, 64, 64] batch 1")
    exported = export.export(_resnet(), model)
    weightless, _ = simplify.simplify(exported.graph, "m")
    assert simplify.weight_only_reader(weightless, set(exported.weights)) is None


def test_attach_with_release_moves_the_weights():
    model = _model("    input img: float32[N, 3, 64, 64] batch 1")
    module = _resnet()
    x = np.random.default_rng(4).uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    exported = export.export(module, model)
    final, _ = simplify.simplify(exported.graph, "m")
    added = export.attach_weights(final, exported.weights, release=True)
    assert added == len(final.graph.initializer) - sum(
        1 for t in final.graph.initializer if t.name not in exported.weights)
    # the generator is empty (but for parameters the exporter found equal to another, which
    # the graph reads under that other's name: torch deduplicates initializers)
    emptied = {name for name, p in module.named_parameters() if p.numel() == 0}
    assert emptied == set(exported.weights)
    assert [i.name for i in final.graph.input] == ["img"]
    np.testing.assert_allclose(_run(final, {"img": x})[0], want, atol=1e-5)


class _Bfloat16Buffer(nn.Module):
    """A bfloat16 buffer, which numpy cannot hold: the export must carry it itself."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.register_buffer("scale", torch.full((1, 3, 1, 1), 2.0, dtype=torch.bfloat16))

    def forward(self, x):
        return self.conv(x) * self.scale.float()


def test_bfloat16_weights_are_exported_with_the_graph():
    model = parse_text(SPEC.replace("    output out\n", "    output out\n    opset 13\n")
                       % {"inputs": "    input img: float32[N, 3, 128, 128] batch 1"},
                       "t.gan").models[0]
    module = _Bfloat16Buffer().eval()
    exported = export.export(module, model)
    assert exported.weights == {} and "export holds its weights" in exported.fallback
    final, _ = simplify.simplify(exported.with_weights(), "m")
    x = np.random.default_rng(5).standard_normal((1, 3, 128, 128)).astype(np.float32)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(_run(final, {"img": x})[0], want, atol=1e-5)


class _AlignedUpsample(nn.Module):
    """A bilinear resize with align_corners: opset 9 cannot write it, opset 11 can."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return nn.functional.interpolate(self.conv(x), scale_factor=2, mode="bilinear",
                                         align_corners=True)


def test_the_reachable_opset_is_probed_once_not_again_for_the_reduced_trace(monkeypatch):
    """The reduced-size attempt fails and falls back to the full-size trace; only that one
    exports again at newer opsets to name the one that works."""
    from gancc.errors import SpecError

    model = parse_text(SPEC.replace("    output out\n", "    output out\n    opset 9\n")
                       % {"inputs": "    input img: float32[N, 3, 128, 128] batch 1"},
                       "t.gan").models[0]
    opsets = []
    real = torch.onnx.export

    def counting(*args, **kwargs):
        opsets.append(kwargs["opset_version"])
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", counting)
    with pytest.raises(SpecError) as err:
        export.export(_AlignedUpsample().eval(), model)
    assert "the exporter reaches opset 11" in err.value.message
    assert opsets == [9, 9, 10, 11]     # reduced at 9; full size at 9, then 10 and 11
