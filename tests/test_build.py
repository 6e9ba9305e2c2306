"""End-to-end builds of a reduced-size CycleGAN generator (ngf 8, 2 blocks, 64x64)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from gancc.cli import main
from gancc.graph import PROVENANCE_KEY
from tests.conftest import write_spec


def run_cli(*args: str) -> int:
    return main([str(a) for a in args])


def build(spec: Path, out: Path, *extra: str) -> int:
    return run_cli("build", spec, "-o", out, "--no-atc", *extra)


def test_build_writes_artifacts_and_report(small_spec: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    assert build(small_spec, out) == 0
    folder = out / "small"
    model = onnx.load(str(folder / "small.onnx"))
    onnx.checker.check_model(model, full_check=True)
    ops = [n.op_type for n in model.graph.node]
    assert "Pad" not in ops                      # reflect -> zero pads, then fused into Convs
    assert model.opset_import[0].version == 11
    assert model.graph.input[0].name == "img" and model.graph.output[0].name == "out"
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    # every initializer-fed input: pads of the first conv grew by the fused reflect pad (3)
    first_conv = next(n for n in model.graph.node if n.op_type == "Conv")
    pads = next(a.ints for a in first_conv.attribute if a.name == "pads")
    assert list(pads) == [3, 3, 3, 3]
    assert any(p.key == PROVENANCE_KEY and "fuse-pad-into-conv" in p.value
               for p in first_conv.metadata_props)

    report = json.loads((folder / "report.json").read_text())
    assert report["status"] == "ok"
    assert report["random_weights"] is True and report["weights"]["seed"] == 0
    assert report["pipeline"] == "reflect-pad-to-constant,fuse-pad-into-conv"
    assert [p["matches"] for p in report["passes"]] == [6, 6]
    assert report["final"]["op_histogram"].get("Pad") is None
    for tool in ("torch", "onnx", "onnxruntime", "onnxsim"):
        assert report["tools"][tool]
    val = report["validation"]
    # the unmodified export matches PyTorch; the lossy rewrite costs something, and both show
    assert val["exported_vs_reference"]["out"]["pixel_cosine"] > 0.99999
    assert val["exported_vs_reference"]["out"]["max_abs"] < 1e-4
    assert 0.5 < val["final_vs_reference"]["out"]["pixel_cosine"] < 0.9999
    assert val["requirements"][0]["passed"] is True
    assert "RANDOM WEIGHTS" in capsys.readouterr().err
    # outputs get ordinary permissions, not mkdtemp's private ones
    assert stat.S_IMODE(os.stat(folder).st_mode) & 0o055
    assert stat.S_IMODE(os.stat(folder / "report.json").st_mode) & 0o044


def test_atc_script_has_one_quoted_command_per_batch(small_spec: Path, tmp_path: Path):
    assert build(small_spec, tmp_path / "out") == 0
    script = (tmp_path / "out" / "small" / "atc.sh").read_text()
    commands = [line for line in script.splitlines() if line.startswith("atc ")]
    assert commands == [
        'atc --framework=5 --model=small.onnx --output=Small_bs1 --input_format=NCHW '
        '--input_shape="img:1,3,64,64" --soc_version=Ascend310P3 --out_nodes="out" --log=error',
        'atc --framework=5 --model=small.onnx --output=Small_bs2 --input_format=NCHW '
        '--input_shape="img:2,3,64,64" --soc_version=Ascend310P3 --out_nodes="out" --log=error',
    ]
    assert 'cd "$(dirname "$0")"' in script
    assert os.access(tmp_path / "out" / "small" / "atc.sh", os.X_OK)


def _fake_atc(folder: Path, body: str) -> Path:
    path = folder / "atc"
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(0o755)
    return path


def test_runs_atc_when_installed(small_spec: Path, tmp_path: Path):
    """A stand-in atc records its arguments and writes the .om, as the real one would."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _fake_atc(bindir, 'echo "$@" >> "$(dirname "$0")/calls.txt"\n'
                      'for a in "$@"; do case $a in --output=*) touch "${a#--output=}.om";; esac; done\n'
                      'echo "ATC run success, welcome to the next use."\n')
    out = tmp_path / "out"
    assert run_cli("build", small_spec, "-o", out, "--atc", bindir / "atc") == 0
    calls = (bindir / "calls.txt").read_text().splitlines()
    assert len(calls) == 2 and "--input_shape=img:2,3,64,64" in calls[1]
    assert (out / "small" / "Small_bs1.om").exists() and (out / "small" / "Small_bs2.om").exists()
    report = json.loads((out / "small" / "report.json").read_text())
    assert report["atc"]["ran"] is True
    assert [r["batch"] for r in report["atc"]["results"]] == [1, 2]


def test_atc_failure_names_error_code_and_keeps_previous_artifacts(small_spec: Path, tmp_path: Path,
                                                                     capsys):
    out = tmp_path / "out"
    assert build(small_spec, out) == 0
    before = (out / "small" / "small.onnx").read_bytes()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _fake_atc(bindir, 'echo "E16002: No ONNX parser is registered for optype Foo."\n'
                      'echo "ATC run failed, Please check the detail log"\nexit 1\n')
    assert run_cli("build", small_spec, "-o", out, "--atc", bindir / "atc") == 1
    err = capsys.readouterr().err
    assert "atc failed for batch 1 with E16002" in err
    assert "Traceback" not in err
    assert (out / "small" / "small.onnx").read_bytes() == before
    assert json.loads((out / ".gancc" / "failed" / "small" / "report.json").read_text())["status"] == "failed"


def test_validation_below_threshold_fails_and_keeps_previous(tmp_path: Path, capsys):
    out = tmp_path / "out"
    spec = write_spec(tmp_path)
    assert build(spec, out) == 0
    before = (out / "small" / "report.json").read_text()
    strict = write_spec(tmp_path, threshold=0.99999)
    assert build(strict, out) == 1
    err = capsys.readouterr().err
    assert "output 'out': pixel_cosine = 0." in err and "required >= 0.99999" in err
    assert "small.gan:" in err                     # the requirement's line is named
    assert (out / "small" / "report.json").read_text() == before
    failed = json.loads((out / ".gancc" / "failed" / "small" / "report.json").read_text())
    assert failed["validation"]["passed"] is False


def test_missing_weights_without_fallback_is_a_clear_error(tmp_path: Path, capsys):
    spec = write_spec(tmp_path, fallback="")
    assert build(spec, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "small.gan:4:9: error: checkpoint not found" in err
    assert "--random-weights" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "small").exists()
    # the explicit command-line choice makes it build
    assert build(spec, tmp_path / "out", "--random-weights", "3") == 0
    report = json.loads((tmp_path / "out" / "small" / "report.json").read_text())
    assert report["weights"]["seed"] == 3


def _upstream_like_checkpoint(path: Path, prefix: str = "", with_in_stats: bool = True) -> dict:
    """A state_dict as a PyTorch-0.4-era CycleGAN file holds it (InstanceNorm stats included)."""
    from gancc import archs
    from gancc.stages.weights import init_random

    module = archs.get("resnet_generator").build(ngf=8, n_blocks=2)
    init_random(module, 123)
    state = dict(module.state_dict())
    if with_in_stats:
        for name, sub in module.named_modules():
            if isinstance(sub, torch.nn.InstanceNorm2d):
                state[f"{name}.running_mean"] = torch.zeros(sub.num_features)
                state[f"{name}.running_var"] = torch.ones(sub.num_features)
                state[f"{name}.num_batches_tracked"] = torch.tensor(0)
    state = {prefix + k: v for k, v in state.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_checkpoint_loads_strictly_after_upstream_patches(small_spec: Path, tmp_path: Path):
    weights = _upstream_like_checkpoint(tmp_path / "weights" / "small.pth", prefix="module.")
    out = tmp_path / "out"
    assert build(small_spec, out) == 0
    report = json.loads((out / "small" / "report.json").read_text())
    assert report["random_weights"] is False
    assert report["weights"]["kind"] == "checkpoint" and len(report["weights"]["sha256"]) == 64
    assert len(report["weights"]["dropped_keys"]) == 3 * 9      # 9 InstanceNorms x 3 stat keys
    # the export computes what the loaded module computes, and carries the checkpoint's tensors
    assert report["validation"]["exported_vs_reference"]["out"]["max_abs"] < 1e-4
    model = onnx.load(str(out / "small" / "small.onnx"))
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    first_conv = next(n for n in model.graph.node if n.op_type == "Conv")
    np.testing.assert_array_equal(inits[first_conv.input[1]], weights["model.1.weight"].numpy())


def test_checkpoint_with_wrong_keys_lists_them(small_spec: Path, tmp_path: Path, capsys):
    path = tmp_path / "weights" / "small.pth"
    _upstream_like_checkpoint(path, with_in_stats=False)
    state = torch.load(path, weights_only=True)
    state["model.99.weight"] = torch.zeros(1)
    del state["model.1.bias"]
    torch.save(state, path)
    assert build(small_spec, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "does not fit the architecture" in err
    assert "missing keys (1):\n    model.1.bias" in err
    assert "unexpected keys (1):\n    model.99.weight" in err


class _Payload:
    """Unpickling this would create a marker file: the test asserts it never runs."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_checkpoint_whose_pickle_runs_code_is_refused(small_spec: Path, tmp_path: Path, capsys):
    marker = tmp_path / "pwned"
    path = tmp_path / "weights" / "small.pth"
    path.parent.mkdir(parents=True)
    torch.save({"model.1.weight": _Payload(str(marker))}, path)
    assert build(small_spec, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "refused to load" in err and "weights_only" in err
    assert not marker.exists()


def test_aipp_spec_writes_config_and_insert_op_conf(tmp_path: Path):
    from gancc import aipp

    spec = write_spec(tmp_path)
    spec.write_text(spec.read_text().replace(
        "    atc {",
        "    aipp img {\n        input_format YUV420SP_U8\n        csc_switch true\n"
        "        src_image_size_w 128\n        src_image_size_h 128\n        crop true\n"
        "        load_start_pos_w 16\n        load_start_pos_h 16\n"
        "        crop_size_w 64\n        crop_size_h 64\n"
        "        min_chn_0 127.5\n        var_reci_chn_0 0.007843137254901\n"
        "        matrix_r0c0 256\n        matrix_r0c2 359\n        input_bias_1 128\n    }\n    atc {"))
    assert build(spec, tmp_path / "out") == 0
    folder = tmp_path / "out" / "small"
    blocks = aipp.parse_config((folder / "aipp.cfg").read_text())
    assert blocks[0]["aipp_mode"] == "static" and blocks[0]["related_input_rank"] == 0
    assert blocks[0]["input_format"] == "YUV420SP_U8" and blocks[0]["crop_size_w"] == 64
    assert blocks[0]["matrix_r0c2"] == 359
    script = (folder / "atc.sh").read_text()
    assert "--insert_op_conf=aipp.cfg" in script


def test_onnx_source_with_unknown_input_points_at_spec_line(tmp_path: Path, capsys):
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3, 8, 8])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 3, 8, 8])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 11)]),
              str(tmp_path / "relu.onnx"))
    spec = tmp_path / "relu.gan"
    spec.write_text('model relu {\n    source onnx "relu.onnx"\n'
                    '    input img: float32[N, 3, 8, 8] batch 1\n    output y\n'
                    '    atc { soc_version Ascend310 }\n}\n')
    assert build(spec, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "relu.gan:3:5: error: input 'img' is not an input of relu.onnx" in err
    spec.write_text(spec.read_text().replace("input img:", "input x:"))
    assert build(spec, tmp_path / "out") == 0
    report = json.loads((tmp_path / "out" / "relu" / "report.json").read_text())
    assert report["validation"]["final_vs_reference"]["y"]["max_abs"] == 0.0


def test_check_command_reports_bad_architecture_argument(tmp_path: Path, capsys):
    spec = write_spec(tmp_path)
    spec.write_text(spec.read_text().replace("ngf=8", "ngff=8"))
    assert run_cli("check", spec) == 1
    err = capsys.readouterr().err
    assert "small.gan:3:56: error: resnet_generator() has no argument 'ngff'" in err
    assert "hint: did you mean 'ngf'?" in err
    spec.write_text(spec.read_text().replace("ngff=8", "ngf=8").replace(
        "fuse-pad-into-conv", "fuse-pad-into-conv{max_pads=3}"))
    assert run_cli("check", spec) == 1
    assert "has no option 'max_pads'" in capsys.readouterr().err


def test_check_shipped_specs(capsys):
    from tests.conftest import REPO
    for spec in sorted((REPO / "specs").glob("*.gan")):
        if spec.name == "bigbigan.gan" and not (spec.parent / "bigbigan.pb").is_file():
            # no released graph (docs/models.md): the build fails without it, so check does
            assert run_cli("check", spec) == 1, spec
            assert "TensorFlow graph not found" in capsys.readouterr().err
            continue
        assert run_cli("check", spec) == 0, spec
    assert "no problems found" in capsys.readouterr().out


def test_opt_replays_the_build_pipeline(small_spec: Path, tmp_path: Path):
    """`gancc opt` with the pipeline a build printed reproduces the build's graph."""
    assert build(small_spec, tmp_path / "out") == 0
    report = json.loads((tmp_path / "out" / "small" / "report.json").read_text())
    # start from the same weights' export: rebuild without rewrites
    spec_no_rw = write_spec(tmp_path)
    spec_no_rw.write_text(spec_no_rw.read_text().replace(
        "        reflect-pad-to-constant\n        fuse-pad-into-conv\n", ""))
    assert build(spec_no_rw, tmp_path / "plain") == 0
    src = tmp_path / "plain" / "small" / "small.onnx"
    assert run_cli("opt", src, "--passes", report["pipeline"], "-o", tmp_path / "replayed.onnx") == 0
    replayed = onnx.load(str(tmp_path / "replayed.onnx"))
    built = onnx.load(str(tmp_path / "out" / "small" / "small.onnx"))
    assert [n.op_type for n in replayed.graph.node] == [n.op_type for n in built.graph.node]
    x = np.random.default_rng(1).uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32)
    a = ort.InferenceSession(replayed.SerializeToString()).run(None, {"img": x})[0]
    b = ort.InferenceSession(built.SerializeToString()).run(None, {"img": x})[0]
    np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.slow
def test_full_size_cyclegan_build(tmp_path: Path, capsys):
    """The README quick start: both full-size generators, seeded weights, validated."""
    from tests.conftest import REPO
    out = tmp_path / "build"
    assert run_cli("build", REPO / "specs" / "cyclegan.gan", "-o", out, "--no-atc") == 0
    for name, inp, outp in (("cyclegan_g_a", "img_sat_maps", "maps"),
                            ("cyclegan_g_b", "img_maps_sat", "sat")):
        report = json.loads((out / name / "report.json").read_text())
        assert report["status"] == "ok"
        assert report["export"]["op_histogram"]["Pad"] == 20
        assert report["final"]["op_histogram"]["Conv"] == 22
        assert "Pad" not in report["final"]["op_histogram"]
        assert f'--input_shape="{inp}:16,3,256,256"' in report["atc"]["commands"][1]
        assert report["validation"]["exported_vs_reference"][outp]["pixel_cosine"] > 0.99999


def test_help_imports_no_heavy_library():
    """Every gancc command builds the whole argument parser: it must not import numpy, onnx,
    torch or the spec parser (they cost ~0.2 s of start-up; each command imports its own)."""
    import subprocess
    import sys

    code = ("import sys\nfrom gancc.cli import main\ntry:\n    main(['--help'])\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in ('numpy', 'onnx', 'torch', 'lark', 'onnxruntime') "
            "if m in sys.modules), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "[]"
    assert "build" in proc.stdout and "diff" in proc.stdout
