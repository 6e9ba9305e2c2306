"""The seed models' architectures: upstream state_dict keys, strict checkpoint loading, and
the semantics each recipe depends on (GAN's eps 0.8, StarGAN's per-instance statistics,
pix2pixHD's count_include_pad=False pyramid)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from gancc import archs
from gancc.cli import main
from gancc.stages.weights import init_random, load_checkpoint
from gancc.errors import CheckpointError

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
REPO = Path(__file__).resolve().parents[1]


def run_cli(*args) -> int:
    return main([str(a) for a in args])


def _key_lines(module: nn.Module) -> list[str]:
    return [f"{k} {tuple(v.shape)}" for k, v in module.state_dict().items()]


def _reference_keys(name: str) -> list[str]:
    path = REFERENCE / "keys" / name
    if not path.is_file():
        pytest.skip(f"{path} is not here (shared/reference beside the clone)")
    return path.read_text().splitlines()


@pytest.mark.parametrize("arch, keys", [
    ("resnet_generator", "cyclegan_resnet9_keys.txt"),
    ("pix2pixhd_local_enhancer", "pix2pixhd_local_keys.txt"),
    ("pix2pixhd_global_generator", "pix2pixhd_global_keys.txt"),
])
def test_default_architecture_has_upstream_keys_and_shapes(arch, keys):
    assert _key_lines(archs.get(arch).build()) == _reference_keys(keys)


def test_stargan_keys_are_upstream_minus_unused_instance_norm_statistics():
    reference = _reference_keys("stargan_keys.txt")
    stats = [k for k in reference if k.split()[0].rsplit(".", 1)[1]
             in ("running_mean", "running_var", "num_batches_tracked")]
    assert len(stats) == 17 * 3          # 17 InstanceNorm layers
    module = archs.get("stargan_generator").build()
    assert _key_lines(module) == [k for k in reference if k not in stats]
    norms = [m for m in module.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 17 and all(m.affine and not m.track_running_stats for m in norms)


def test_gan_generator_layout_and_eps():
    module = archs.get("mnist_mlp_generator").build()
    state = module.state_dict()
    assert len(state) == 25
    assert sum(p.numel() for p in module.parameters()) == 1_510_032
    assert [k for k in state if k.endswith("num_batches_tracked")] == \
        ["model.3.num_batches_tracked", "model.6.num_batches_tracked", "model.9.num_batches_tracked"]
    bns = [m for m in module.modules() if isinstance(m, nn.BatchNorm1d)]
    assert [m.eps for m in bns] == [0.8] * 3 and [m.momentum for m in bns] == [0.1] * 3
    out = module.eval()(torch.zeros(2, 100))
    assert out.shape == (2, 1, 28, 28)


def test_pix2pixhd_local_enhancer_param_count():
    module = archs.get("pix2pixhd_local_enhancer").build()
    assert sum(p.numel() for p in module.parameters()) == 182_857_059


# ---------------------------------------------------------------- checkpoints

def _save(state: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


@pytest.mark.parametrize("arch, kwargs", [
    ("mnist_mlp_generator", {}),
    ("stargan_generator", {"conv_dim": 8, "repeat_num": 2}),
    ("pix2pixhd_local_enhancer", {"ngf": 4, "n_downsample_global": 2, "n_blocks_global": 2,
                                  "n_blocks_local": 1}),
])
def test_upstream_structured_checkpoint_loads_strictly_and_wrong_keys_are_listed(arch, kwargs, tmp_path):
    source = archs.get(arch).build(**kwargs)
    init_random(source, 7)
    path = _save(source.state_dict(), tmp_path / "ok.pth")
    target = archs.get(arch).build(**kwargs)
    info = load_checkpoint(target, path)
    assert info.kind == "checkpoint" and len(info.sha256) == 64
    for k, v in source.state_dict().items():
        assert torch.equal(target.state_dict()[k], v), k
    state = dict(source.state_dict())
    first = next(iter(state))
    state["extra.layer.weight"] = torch.zeros(1)
    del state[first]
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(archs.get(arch).build(**kwargs), _save(state, tmp_path / "bad.pth"))
    text = err.value.render()
    assert f"missing keys (1):\n    {first}" in text
    assert "unexpected keys (1):\n    extra.layer.weight" in text


class _Payload:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_checkpoint_whose_pickle_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = _save({"model.0.weight": _Payload(str(marker))}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(archs.get("mnist_mlp_generator").build(), path)
    assert "refused to load" in err.value.render() and "weights_only" in err.value.render()
    assert not marker.exists()


def _upstream_stargan(module: nn.Module) -> nn.Module:
    """A copy of `module` whose InstanceNorms keep running statistics, as upstream's do."""
    import copy

    upstream = copy.deepcopy(module)
    for name, sub in list(upstream.named_modules()):
        for child_name, child in list(sub.named_children()):
            if isinstance(child, nn.InstanceNorm2d):
                new = nn.InstanceNorm2d(child.num_features, affine=True, track_running_stats=True)
                new.load_state_dict(child.state_dict(), strict=False)
                with torch.no_grad():
                    new.running_mean.normal_(0, 0.5)          # stats upstream never reads
                    new.running_var.uniform_(0.5, 2.0)
                setattr(sub, child_name, new)
    return upstream


def test_stargan_pytorch03_checkpoint_loads_and_matches_upstream_train_mode(tmp_path):
    kwargs = {"conv_dim": 8, "repeat_num": 2}
    ours = archs.get("stargan_generator").build(**kwargs)
    init_random(ours, 3)
    with torch.no_grad():                             # make the affine parameters matter
        for m in ours.modules():
            if isinstance(m, nn.InstanceNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.3)
    upstream = _upstream_stargan(ours)
    # a PyTorch-0.3 file: running stats present, no num_batches_tracked
    state = {k: v for k, v in upstream.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert any(k.endswith("running_mean") for k in state)
    path = _save(state, tmp_path / "200000-G.ckpt")
    loaded = archs.get("stargan_generator").build(**kwargs)
    info = load_checkpoint(loaded, path)
    assert len(info.dropped_keys) == 9 * 2           # 9 norms x running_mean / running_var
    loaded.eval()
    upstream.train()                                  # upstream's solver never calls eval()
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    c = (torch.rand(3, 5) > 0.5).float()
    with torch.no_grad():
        ours_out = loaded(x, c)
        upstream_out = upstream(x, c)
        upstream_eval = upstream.eval()(x, c)
    assert torch.equal(ours_out, upstream_out)        # bit-identical
    assert (upstream_eval - upstream_out).abs().max() > 0.05   # eval mode would be wrong


def _small_spec(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.gan"
    path.write_text(body)
    return path


def _shipped(name: str, tmp_path: Path, replace: dict[str, str] | None = None) -> Path:
    text = (REPO / "specs" / f"{name}.gan").read_text()
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / f"{name}.gan"
    path.write_text(text)
    return path


def _commands(out: Path, model: str) -> list[str]:
    return [line for line in (out / model / "atc.sh").read_text().splitlines()
            if line.startswith("atc ")]


def test_gan_spec_builds_validates_and_keeps_eps(tmp_path):
    out = tmp_path / "out"
    assert run_cli("build", REPO / "specs" / "gan.gan", "-o", out, "--no-atc") == 0
    model = onnx.load(str(out / "gan" / "gan.onnx"))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Gemm") == 5 and ops.count("BatchNormalization") == 3
    eps = [a.f for n in model.graph.node if n.op_type == "BatchNormalization"
           for a in n.attribute if a.name == "epsilon"]
    assert eps == pytest.approx([0.8] * 3)
    assert model.graph.input[0].name == "Z" and model.graph.output[0].name == "generateimg"
    report = json.loads((out / "gan" / "report.json").read_text())
    val = report["validation"]["final_vs_reference"]["generateimg"]
    assert val["cosine"] > 0.99999 and val["max_abs"] < 1e-4
    assert report["random_weights"] is True
    shapes = [c.split('--input_shape="')[1].split('"')[0] for c in _commands(out, "gan")]
    assert shapes == [f"Z:{b},100" for b in (1, 4, 8, 16, 32, 64)]
    assert "--output=GAN_bs1 " in _commands(out, "gan")[0]
    # eval mode with seeded running stats: the output is not constant, and differs from train mode
    session = ort.InferenceSession(str(out / "gan" / "gan.onnx"))
    z = np.random.default_rng(0).standard_normal((8, 100)).astype(np.float32)
    y = session.run(None, {"Z": z})[0]
    assert y.shape == (8, 1, 28, 28) and y.std() > 1e-3


def test_stargan_spec_builds_with_instance_normalization_and_dynamic_batch(tmp_path):
    out = tmp_path / "out"
    assert run_cli("build", REPO / "specs" / "stargan.gan", "-o", out, "--no-atc") == 0
    model = onnx.load(str(out / "stargan" / "stargan.onnx"))
    hist = {}
    for n in model.graph.node:
        hist[n.op_type] = hist.get(n.op_type, 0) + 1
    assert hist["InstanceNormalization"] == 17 and "BatchNormalization" not in hist
    assert hist["Conv"] == 16 and hist["ConvTranspose"] == 2
    assert [i.name for i in model.graph.input] == ["real_img", "attr"]
    assert model.graph.input[1].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    shapes = [c.split('--input_shape="')[1].split('"')[0] for c in _commands(out, "stargan")]
    assert shapes == [f"real_img:{b},3,128,128;attr:{b},5" for b in (1, 4, 8, 16)]
    session = ort.InferenceSession(str(out / "stargan" / "stargan.onnx"))
    for batch in (1, 3):
        y = session.run(None, {"real_img": np.zeros((batch, 3, 128, 128), np.float32),
                               "attr": np.ones((batch, 5), np.float32)})[0]
        assert y.shape == (batch, 3, 128, 128)
    report = json.loads((out / "stargan" / "report.json").read_text())
    assert report["validation"]["final_vs_reference"]["fake_img"]["max_abs"] < 1e-4


@pytest.mark.parametrize("key,value,limit", [("n_blocks", 2**31, 1024), ("n_blocks", 4294967296, 1024),
                                             ("ngf", 65537, 65536)])
def test_a_builtin_refuses_sizes_past_any_generator(tmp_path, key, value, limit):
    """Found by the fuzzer: n_blocks=2**31 made `gancc check`'s weight-free trace build
    modules until memory ran out. The bound is at the argument, with its spec position."""
    from gancc.archs import ArchitectureError, check_arguments

    with pytest.raises(ArchitectureError, match=f"at most {limit}"):
        check_arguments("resnet_generator", {key: value})
    assert check_arguments("resnet_generator", {key: limit})[key] == limit   # the bound itself
    spec = tmp_path / "g.gan"
    spec.write_text(f'model g {{\n    source pytorch {{\n        arch resnet_generator({key}={value})\n'
                    '        weights "w.pth" else random(seed=0)\n    }\n'
                    '    input x: float32[N, 3, 64, 64] batch 1\n    output y\n'
                    '    atc { soc_version Ascend310P3 }\n}\n')
    proc = subprocess.run([sys.executable, "-m", "gancc", "check", str(spec)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1 and "g.gan:3:" in proc.stderr and key in proc.stderr
