"""Bring your own generator: `arch "file.py:Name"(...)`, `source torchscript`, `source exported`,
`archs "dir/"`. Every generator is written by the test into its folder, built through the
whole pipeline, and its final graph matched against the module in onnxruntime."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from safetensors.torch import save_file

from gancc.cli import main
from gancc.errors import SpecError
from gancc.checks import check_spec
from gancc.spec import parse_text

NETS = '''
import torch
from torch import nn
import torch.nn.functional as F


class UNet(nn.Module):
    """Skip connections, BatchNorm, Dropout."""

    def __init__(self, in_ch: int = 3, out_ch: int = 3, ngf: int = 4):
        super().__init__()
        self.down1 = nn.Sequential(nn.Conv2d(in_ch, ngf, 4, 2, 1), nn.LeakyReLU(0.2))
        self.down2 = nn.Sequential(nn.Conv2d(ngf, ngf * 2, 4, 2, 1), nn.BatchNorm2d(ngf * 2),
                                   nn.LeakyReLU(0.2))
        self.up2 = nn.Sequential(nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1),
                                 nn.BatchNorm2d(ngf), nn.Dropout(0.5), nn.ReLU())
        self.up1 = nn.Sequential(nn.ConvTranspose2d(ngf * 2, out_ch, 4, 2, 1), nn.Tanh())

    def forward(self, x):
        d1 = self.down1(x)
        return self.up1(torch.cat([self.up2(self.down2(d1)), d1], 1))


class ShapeResNet(nn.Module):
    """A ResNet generator whose constructor takes the image shape as a list."""

    def __init__(self, shape: list, n_blocks: int = 2, ngf: int = 4):
        super().__init__()
        channels, _, _ = shape
        self.head = nn.Conv2d(channels, ngf, 3, padding=1)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Conv2d(ngf, ngf, 3, padding=1),
                                                  nn.InstanceNorm2d(ngf), nn.ReLU())
                                    for _ in range(n_blocks))
        self.tail = nn.Conv2d(ngf, channels, 3, padding=1)

    def forward(self, x):
        h = self.head(x)
        for block in self.blocks:
            h = h + block(h)
        return torch.tanh(self.tail(h))


class TwoInputs(nn.Module):
    """An image and a smaller conditioning map, upsampled and concatenated."""

    def __init__(self, ngf: int = 4):
        super().__init__()
        self.cond = nn.Conv2d(2, ngf, 1)
        self.body = nn.Conv2d(3 + ngf, 3, 3, padding=1)

    def forward(self, img, cond):
        c = F.interpolate(self.cond(cond), scale_factor=4, mode="nearest")
        return self.body(torch.cat([img, c], 1))


class SuperRes4x(nn.Module):
    def __init__(self, nf: int = 4):
        super().__init__()
        self.head = nn.Conv2d(3, nf, 3, padding=1)
        self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                nn.Conv2d(nf, nf, 3, padding=1), nn.LeakyReLU(0.2),
                                nn.Upsample(scale_factor=2, mode="nearest"),
                                nn.Conv2d(nf, 3, 3, padding=1))

    def forward(self, x):
        return self.up(self.head(x))


class ReflectGroup(nn.Module):
    def __init__(self, ngf: int = 4):
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(2), nn.Conv2d(3, ngf, 5),
                                  nn.GroupNorm(2, ngf), nn.ReLU(), nn.Conv2d(ngf, 3, 3, 2, 1))

    def forward(self, x):
        y = self.body(x)
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=True)


def make_generator(act: str = "relu", norm: str = "batch", width: int = 4):
    """A factory taking string options."""
    acts = {"relu": nn.ReLU(), "lrelu": nn.LeakyReLU(0.2), "silu": nn.SiLU()}
    norms = {"batch": nn.BatchNorm2d(width), "instance": nn.InstanceNorm2d(width, affine=True)}
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), norms[norm], acts[act],
                         nn.Conv2d(width, 3, 1))


class StarLike(nn.Module):
    """InstanceNorm that tracks running statistics, run in train mode upstream (StarGAN)."""

    def __init__(self, ngf: int = 4):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, ngf, 3, padding=1),
                                  nn.InstanceNorm2d(ngf, affine=True, track_running_stats=True),
                                  nn.ReLU(), nn.Conv2d(ngf, 3, 3, padding=1))

    def forward(self, x):
        return self.body(x)


class Broken(nn.Module):
    def __init__(self, ngf: int = 4):
        super().__init__()
        print("noise from the constructor")
        raise ValueError(f"ngf must be even, got {ngf}")
'''

# model name -> (arch line, inputs)
MODELS = {
    "unet": ('"nets.py:UNet"(ngf=4)', ["img: float32[1, 3, 32, 32]"]),
    "resnet": ('"nets.py:ShapeResNet"(shape=[3, 32, 32], n_blocks=2)',
               ["img: float32[1, 3, 32, 32]"]),
    "two": ('"nets.py:TwoInputs"()', ["img: float32[1, 3, 32, 32]", "cond: float32[1, 2, 8, 8]"]),
    "sr": ('"nets.py:SuperRes4x"(nf=4)', ["img: float32[1, 3, 16, 16]"]),
    "reflect": ('"nets.py:ReflectGroup"()', ["img: float32[1, 3, 32, 32]"]),
    "factory": ('"nets.py:make_generator"(act="lrelu", norm="instance")',
                ["img: float32[1, 3, 32, 32]"]),
}
# How each generator's checkpoint is saved: a plain state_dict .pth; a training-loop dict
# {"params_ema": sd, "iter": 5}, picked by `key "params_ema"` for half the generators and
# unwrapped by gancc without `key` for the other half; a .safetensors file.
FORMATS = ("plain", "wrapped", "safetensors")
BUILDS = [(name, form) for name in MODELS for form in FORMATS]
WRAPPED_WITHOUT_KEY = set(list(MODELS)[1::2])


def _spec(name: str, arch: str, inputs: list[str], weights: str, extra: str = "") -> str:
    lines = "\n".join(f"    input {i}" for i in inputs)
    return textwrap.dedent(f"""\
        model {name} {{
            source pytorch {{
                arch {arch}
                weights {weights}
                {extra}
            }}
        """) + lines + "\n    output out\n    atc { soc_version Ascend310P3 }\n}\n"


def _import_nets(folder: Path):
    sys.path.insert(0, str(folder))
    try:
        import importlib.util
        spec = importlib.util.spec_from_file_location("nets_under_test", folder / "nets.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(folder))


def _module(nets, arch: str):
    """The module an arch line builds, with seeded non-trivial weights and statistics."""
    call = parse_text(_spec("m", arch, ["x: float32[1, 3, 8, 8]"], '"x.pth"')).models[0]
    ref = call.source.user
    kwargs = {k: (list(v) if isinstance(v, tuple) else v) for k, v in call.source.arch.kwargs().items()}
    torch.manual_seed(0)
    module = getattr(nets, ref.attr)(**kwargs)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 1.5)
    return module


def _write_checkpoint(folder: Path, name: str, module, form: str) -> str:
    """The checkpoint in `form`, and the spec's `weights` clause that loads it."""
    state = module.state_dict()
    if form == "plain":
        torch.save(state, folder / f"{name}.pth")
        return f'"{name}.pth"'
    if form == "wrapped":
        torch.save({"params_ema": state, "iter": 5}, folder / f"{name}_wrapped.pth")
        key = "" if name in WRAPPED_WITHOUT_KEY else ' key "params_ema"'
        return f'"{name}_wrapped.pth"{key}'
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / f"{name}.safetensors"))
    return f'"{name}.safetensors"'


def _feeds(inputs: list[str]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    out = {}
    for line in inputs:
        name, shape = line.split(": float32")
        dims = [int(d) for d in shape.strip("[]").split(",")]
        out[name] = rng.uniform(-1, 1, dims).astype(np.float32)
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """All six generators, each from each checkpoint form, in one spec built once:
    (folder, modules by name). A generator's three builds load the same weights from three
    files; the build cache keys an export by the checkpoint's bytes (and `key`), so each is
    exported anew (nothing is reused across forms). Each build's validation runs the module
    gancc loaded from that checkpoint against the final graph, and the test below runs the
    graph against the module it built itself: each form's numbers are checked."""
    folder = tmp_path_factory.mktemp("own")
    (folder / "nets.py").write_text(NETS)
    nets = _import_nets(folder)
    modules, text = {}, ""
    for name, (arch, inputs) in MODELS.items():
        modules[name] = _module(nets, arch).eval()
        for form in FORMATS:
            weights = _write_checkpoint(folder, name, modules[name], form)
            text += _spec(f"{name}_{form}", arch, inputs, weights)
    (folder / "own.gan").write_text(text)
    # a module-scoped fixture runs before conftest's per-test isolation: isolate it here
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GANCC_CACHE_DIR", str(tmp_path_factory.mktemp("gancc-cache")))
        patch.setenv("GANCC_CHECK_IDEMPOTENT", "1")
        assert main(["check", str(folder / "own.gan")]) == 0
        assert main(["build", str(folder / "own.gan"), "-o", str(folder / "out"), "--no-atc",
                     "--samples", "1", "--no-fp16-foresight"]) == 0
    return folder, modules


@pytest.mark.parametrize("name, form", BUILDS, ids=[f"{n}-{f}" for n, f in BUILDS])
def test_each_generator_matches_its_module_in_onnxruntime(built, name, form):
    folder, modules = built
    build = folder / "out" / f"{name}_{form}"
    feeds = _feeds(MODELS[name][1])
    session = ort.InferenceSession(str(build / f"{name}_{form}.onnx"))
    (got,) = session.run(None, feeds)
    with torch.no_grad():
        want = modules[name](*[torch.from_numpy(v) for v in feeds.values()]).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    report = json.loads((build / "report.json").read_text())
    assert report["source"]["arch"] == MODELS[name][0].split("(")[0].strip('"')
    assert report["validation"]["final_vs_reference"]["out"]["max_abs"] < 1e-5
    assert report["weights"]["kind"] == "checkpoint"
    assert report["weights"].get("key") == ("params_ema" if form == "wrapped" else None)
    assert report["weights"]["path"].endswith(".safetensors" if form == "safetensors" else ".pth")


def test_super_resolution_output_is_four_times_the_input(built):
    folder, _ = built
    session = ort.InferenceSession(str(folder / "out" / "sr_plain" / "sr_plain.onnx"))
    assert session.get_outputs()[0].shape == [1, 3, 64, 64]


def _check(folder: Path, text: str) -> SpecError:
    path = folder / "bad.gan"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        from gancc.spec import parse_file
        check_spec(parse_file(path))
    return info.value


@pytest.fixture
def nets_dir(tmp_path) -> Path:
    (tmp_path / "nets.py").write_text(NETS)
    return tmp_path


def test_arguments_are_checked_against_the_signature(nets_dir):
    img = ["img: float32[1, 3, 32, 32]"]
    err = _check(nets_dir, _spec("m", '"nets.py:UNet"(ngff=4)', img, '"g.pth" else random(seed=0)'))
    assert "no argument 'ngff'" in err.message and "ngf" in err.hint
    assert (err.span.line, err.span.col) == (3, 29)
    err = _check(nets_dir, _spec("m", '"nets.py:ShapeResNet"(ngf=4)', img, '"g.pth"'))
    assert "needs argument(s) shape" in err.message
    err = _check(nets_dir, _spec("m", '"nets.py:UNet"(ngf="four")', img, '"g.pth"'))
    assert "'ngf' takes int, got 'four'" in err.message and err.span.col == 29
    err = _check(nets_dir, _spec("m", '"nets.py:UNet"(ngf=true)', img, '"g.pth"'))
    assert "takes int, got true" in err.message
    err = _check(nets_dir, _spec("m", '"nets.py:Unet"()', img, '"g.pth"'))
    assert "has no 'Unet'" in err.message and "UNet" in err.hint
    err = _check(nets_dir, _spec("m", '"other.py:UNet"()', img, '"g.pth"'))
    assert "architecture file not found" in err.message


def test_a_constructor_that_raises_is_reported_at_the_arch_line(nets_dir, capsys):
    err = _check(nets_dir, _spec("m", '"nets.py:Broken"(ngf=3)', ["img: float32[1, 3, 32, 32]"],
                                 '"g.pth"'))
    assert "raised ValueError: ngf must be even, got 3" in err.message
    assert "noise from the constructor" in err.message and err.span.line == 3
    assert "noise" not in capsys.readouterr().out


def test_declared_inputs_and_outputs_are_checked_by_a_meta_trace(nets_dir):
    err = _check(nets_dir, _spec("m", '"nets.py:UNet"()', ["img: float32[1, 4, 32, 32]"], '"g.pth"'))
    assert "cannot take the declared input(s) (img [1, 4, 32, 32])" in err.message
    assert err.span.line == 7         # the `input` line
    text = _spec("m", '"nets.py:UNet"()', ["img: float32[1, 3, 32, 32]"], '"g.pth"')
    err = _check(nets_dir, text.replace("output out", "output out, extra"))
    assert "returns 1 output(s), the model declares 2" in err.message and err.span.line == 8


def test_zero_sizes_of_built_in_architectures_are_refused(tmp_path):
    for arg in ("ngf=0", "input_nc=0"):
        text = _spec("m", f"resnet_generator({arg}, n_blocks=1)",
                     ["img: float32[1, 3, 32, 32]"], '"g.pth"')
        err = _check(tmp_path, text)
        assert "is a size and cannot be 0" in err.message
        assert err.span.col == 31 and err.span.end_col == 31 + len(arg)     # the argument


def test_mode_train_export_and_reference_agree(nets_dir):
    nets = _import_nets(nets_dir)
    module = nets.StarLike()
    with torch.no_grad():
        module.body[1].running_mean.fill_(5.0)     # eval mode would use these: far off
    save_file(module.state_dict(), str(nets_dir / "star.safetensors"))
    (nets_dir / "star.gan").write_text(_spec("star", '"nets.py:StarLike"()',
                                             ["img: float32[1, 3, 32, 32]"],
                                             '"star.safetensors"', "mode train"))
    out = nets_dir / "out"
    assert main(["build", str(nets_dir / "star.gan"), "-o", str(out), "--no-atc"]) == 0
    feeds = _feeds(["img: float32[1, 3, 32, 32]"])
    (got,) = ort.InferenceSession(str(out / "star" / "star.onnx")).run(None, feeds)
    module.train()
    with torch.no_grad():
        want = module(torch.from_numpy(feeds["img"])).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_editing_the_architecture_file_re_exports(nets_dir):
    (nets_dir / "g.gan").write_text(_spec("g", '"nets.py:ReflectGroup"()',
                                          ["img: float32[1, 3, 32, 32]"],
                                          '"g.pth" else random(seed=0)'))
    out = nets_dir / "out"

    def cache_status() -> str:
        assert main(["build", str(nets_dir / "g.gan"), "-o", str(out), "--no-atc"]) == 0
        return json.loads((out / "g" / "report.json").read_text())["cache"]["export"]

    assert cache_status() == "stored"
    assert cache_status() == "hit"
    (nets_dir / "nets.py").write_text(NETS.replace("nn.GroupNorm(2, ngf)", "nn.GroupNorm(1, ngf)"))
    assert cache_status() == "stored"        # a new key: exported again


def test_torchscript_and_exported_programs_build(tmp_path):
    (tmp_path / "nets.py").write_text(NETS)
    nets = _import_nets(tmp_path)
    torch.manual_seed(0)
    module = nets.ReflectGroup().eval()
    example = torch.zeros(1, 3, 32, 32)
    torch.jit.save(torch.jit.trace(module, example), str(tmp_path / "g.pt"))
    torch.export.save(torch.export.export(module, (example,)), str(tmp_path / "g.pt2"))
    text = ""
    for name, kind, path in (("ts", "torchscript", "g.pt"), ("ep", "exported", "g.pt2")):
        text += (f'model {name} {{ source {kind} "{path}"\n input img: float32[1, 3, 32, 32]\n'
                 " output out\n atc { soc_version Ascend310P3 } }\n")
    (tmp_path / "saved.gan").write_text(text)
    out = tmp_path / "out"
    assert main(["build", str(tmp_path / "saved.gan"), "-o", str(out), "--no-atc"]) == 0
    feeds = _feeds(["img: float32[1, 3, 32, 32]"])
    with torch.no_grad():
        want = module(torch.from_numpy(feeds["img"])).numpy()
    for name in ("ts", "ep"):
        (got,) = ort.InferenceSession(str(out / name / f"{name}.onnx")).run(None, feeds)
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
        report = json.loads((out / name / "report.json").read_text())
        assert report["validation"]["final_vs_reference"]["out"]["max_abs"] < 1e-5


class _Einsum(torch.nn.Module):
    """aten::einsum: the legacy exporter writes it from opset 12 on, not at the default 11."""

    def forward(self, x):
        return torch.einsum("bchw->bchw", x) * 2


def test_an_opset_the_exporter_cannot_reach_names_the_one_it_can(tmp_path, capsys):
    (tmp_path / "nets.py").write_text(NETS)
    nets = _import_nets(tmp_path)
    example = torch.zeros(1, 3, 32, 32)
    # the bilinear resize with align_corners exports from opset 11 on, not at 7
    torch.jit.save(torch.jit.trace(nets.ReflectGroup().eval(), example), str(tmp_path / "g.pt"))
    torch.export.save(torch.export.export(_Einsum(), (example,)), str(tmp_path / "e.pt2"))
    (tmp_path / "old.gan").write_text(
        'model ts {\n source torchscript "g.pt"\n opset 7\n input img: float32[1, 3, 32, 32]\n'
        ' output out\n atc { soc_version Ascend310P3 } }\n'
        'model ep {\n source exported "e.pt2"\n input img: float32[1, 3, 32, 32]\n'
        ' output out\n atc { soc_version Ascend310P3 } }\n')
    spec = str(tmp_path / "old.gan")
    for model, where, reached in (("ts", "old.gan:3:2", 11), ("ep", "old.gan:8:2", 12)):
        assert main(["build", spec, "--model", model, "-o", str(tmp_path / "out"),
                     "--no-atc"]) == 1
        err = capsys.readouterr().err
        at = 7 if model == "ts" else 11
        assert f"{where}: error: model '{model}': ONNX export failed at opset {at}" in err
        assert f"the exporter reaches opset {reached}" in err
        assert f"hint: write `opset {reached}` in model '{model}'" in err
        assert "[Caused by" not in err and "Please feel free" not in err     # one line


def test_batchnorm_after_a_conv_is_exported_with_its_weights_and_says_why(tmp_path):
    """In eval mode the exporter fuses Conv+BatchNorm into new Conv tensors that are no
    parameter of the generator, so no weight-free, reduced-size export: the full-size one,
    with the reason, and still the module's numbers."""
    from gancc.stages import export

    (tmp_path / "nets.py").write_text(NETS)
    nets = _import_nets(tmp_path)
    text = _spec("m", '"nets.py:make_generator"(norm="batch")', ["img: float32[1, 3, 128, 128]"],
                 '"g.pth"')
    model = parse_text(text, tmp_path / "m.gan").models[0]
    module = _module(nets, '"nets.py:make_generator"(norm="batch")').eval()
    exported = export.export(module, model)
    assert not exported.reduced and "BatchNorm folded into the Conv" in exported.fallback
    assert exported.weights == {}               # the weights are in the graph itself
    feeds = _feeds(["img: float32[1, 3, 128, 128]"])
    graph = exported.graph.SerializeToString()
    (got,) = ort.InferenceSession(graph).run(None, feeds)
    with torch.no_grad():
        want = module(torch.from_numpy(feeds["img"])).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_archs_folder_registers_architectures_by_name(tmp_path):
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "gens.py").write_text(textwrap.dedent('''\
        from torch import nn
        from gancc.archs import architecture

        @architecture("team_tiny")
        def team_tiny(width: int = 4):
            return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.Conv2d(width, 3, 1))
        '''))
    text = 'archs "team/"\n' + _spec("t", "team_tiny(width=2)", ["img: float32[1, 3, 32, 32]"],
                                     '"g.pth" else random(seed=0)')
    (tmp_path / "t.gan").write_text(text)
    assert main(["check", str(tmp_path / "t.gan")]) == 0
    err = _check(tmp_path, text.replace("width=2", "widht=2"))
    assert "no argument 'widht'" in err.message and "width" in err.hint


ENTRY_POINT_PACKAGE = '''
from torch import nn


def tiny(width: int = 4, act: str = "relu"):
    """A generator a team ships in a package, offered to gancc by an entry point."""
    acts = {"relu": nn.ReLU(), "lrelu": nn.LeakyReLU(0.2)}
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), acts[act], nn.Conv2d(width, 3, 1))
'''


@pytest.fixture
def installed_arch_package(tmp_path, monkeypatch) -> Path:
    """A distribution installed in tmp_path (on sys.path) whose `gancc.archs` entry point
    offers `team_ep_tiny`; importlib.metadata finds it as it finds any installed package."""
    from gancc import archs
    from gancc.archs import user

    site = tmp_path / "site"
    (site / "gancc_ep_demo").mkdir(parents=True)
    (site / "gancc_ep_demo" / "__init__.py").write_text(ENTRY_POINT_PACKAGE)
    info = site / "gancc_ep_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gancc-ep-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[gancc.archs]\nteam_ep_tiny = gancc_ep_demo:tiny\n")
    monkeypatch.syspath_prepend(str(site))          # also invalidates importlib's caches
    archs.get_registered("resnet_generator")          # the built-ins, before the copy below
    # gancc reads the entry points once per process, into its registry: a fresh look and a
    # registry of this test's own, so the name is gone again afterwards
    monkeypatch.setattr(user, "_ENTRY_POINTS_LOADED", False)
    monkeypatch.setattr(archs, "_REGISTRY", dict(archs._REGISTRY))
    yield tmp_path
    sys.modules.pop("gancc_ep_demo", None)


def test_gancc_archs_entry_point_resolves_checks_and_builds(installed_arch_package):
    folder = installed_arch_package
    img = ["img: float32[1, 3, 32, 32]"]
    err = _check(folder, _spec("m", "team_ep_tiny(widht=2)", img, '"g.pth"'))
    assert "team_ep_tiny() has no argument 'widht'" in err.message and "width" in err.hint
    assert (err.span.line, err.span.col) == (3, 27)          # the argument
    err = _check(folder, _spec("m", 'team_ep_tiny(act=1)', img, '"g.pth"'))
    assert "argument 'act' takes str, got 1" in err.message
    from gancc_ep_demo import tiny

    torch.manual_seed(0)
    module = tiny(width=2, act="lrelu").eval()
    save_file(module.state_dict(), str(folder / "ep.safetensors"))
    (folder / "ep.gan").write_text(_spec("ep", 'team_ep_tiny(width=2, act="lrelu")', img,
                                         '"ep.safetensors"'))
    out = folder / "out"
    assert main(["build", str(folder / "ep.gan"), "-o", str(out), "--no-atc", "--samples", "1",
                 "--no-fp16-foresight"]) == 0
    feeds = _feeds(img)
    (got,) = ort.InferenceSession(str(out / "ep" / "ep.onnx")).run(None, feeds)
    with torch.no_grad():
        want = module(torch.from_numpy(feeds["img"])).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    report = json.loads((out / "ep" / "report.json").read_text())
    assert report["source"]["arch"] == "team_ep_tiny"
    assert report["validation"]["final_vs_reference"]["out"]["max_abs"] < 1e-5
    assert report["cache"]["export"] == "stored"

    def export_cache() -> str:
        assert main(["build", str(folder / "ep.gan"), "-o", str(out), "--no-atc", "-q",
                     "--samples", "1", "--no-fp16-foresight"]) == 0
        return json.loads((out / "ep" / "report.json").read_text())["cache"]["export"]

    assert export_cache() == "hit"
    package = folder / "site" / "gancc_ep_demo" / "__init__.py"
    package.write_text(package.read_text() + "# version 0.2\n")
    assert export_cache() == "stored"       # the package's code is in the export's key


def test_an_unknown_name_is_not_resolved_to_an_entry_point(installed_arch_package):
    err = _check(installed_arch_package, _spec("m", "team_ep_tiyn(width=2)",
                                               ["img: float32[1, 3, 32, 32]"], '"g.pth"'))
    assert "unknown architecture 'team_ep_tiyn'" in err.message
    assert "team_ep_tiny" in err.hint            # the entry points were read, and suggested
    assert (err.span.line, err.span.col) == (3, 14)


def test_the_example_folder_runs_as_its_readme_says(tmp_path, monkeypatch):
    import shutil
    import subprocess

    example = Path(__file__).resolve().parents[1] / "examples" / "own_generator"
    shutil.copytree(example, tmp_path / "ex", ignore=shutil.ignore_patterns("build", "*.safetensors",
                                                                            "__pycache__"))
    readme = (tmp_path / "ex" / "README.md").read_text()
    commands = readme.split("```")[1].strip().splitlines()
    assert commands[0] == "python make_weights.py"
    subprocess.run([sys.executable, "make_weights.py"], cwd=tmp_path / "ex", check=True)
    monkeypatch.chdir(tmp_path / "ex")
    for line in commands[1:]:
        assert main(line.split()[1:]) == 0, line
    report = json.loads((tmp_path / "ex" / "build" / "my_unet" / "report.json").read_text())
    assert report["status"] == "ok" and report["weights"]["kind"] == "checkpoint"
