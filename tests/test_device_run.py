"""`gancc build --run` against stand-in tools.

The stand-ins record their arguments and write outputs exactly as the real tools name and
lay them out (ais_bench: <output>/<dirname>/<stem>_<k>.bin; msame:
<output>/<timestamp>/<stem>_output_<k>.bin; raw C-order values of the --output_type dtype).
To produce numbers they run the build's ONNX with onnxruntime (through the AIPP emulator
for an AIPP model). This tests gancc's plumbing only: the report must not call it a device
validation.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from gancc.cli import main
from tests.conftest import write_spec

# A stand-in atc: records argv, writes <output>.om holding the arguments (so the stand-in
# runners know the model, the AIPP config and the output type), prints the success line.
FAKE_ATC = f"""#!{sys.executable}
import json, os, sys
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "atc_calls.txt"), "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\\n")
json.dump(args, open(args["output"] + ".om", "w"))
print("ATC run success, welcome to the next use.")
"""

FAKE_RUNNER = f"""#!{sys.executable}
import json, os, sys, time
import numpy as np, onnxruntime as ort
KIND = "%(kind)s"
argv = sys.argv[1:]
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), KIND + "_calls.txt"), "a") as f:
    f.write(" ".join(argv) + "\\n")
opt = {{argv[i][2:]: argv[i + 1] for i in range(0, len(argv) - 1, 2)}}
om = json.load(open(opt["model"]))
sess = ort.InferenceSession(om["model"])
shapes = dict(e.split(":") for e in om["input_shape"].split(";"))
aipp = None
if "insert_op_conf" in om:
    from gancc.aipp import parse_config
    aipp = parse_config(open(om["insert_op_conf"]).read())[0]
out_type = np.float16 if om.get("output_type") == "FP16" else np.float32
if KIND == "ais_bench":
    out_dir = os.path.join(opt["output"], opt["output_dirname"])
else:
    out_dir = os.path.join(opt["output"], time.strftime("%%Y%%-m%%-d_%%-H_%%-M_%%-S_123456"))
os.makedirs(out_dir, exist_ok=True)
dirs = opt["input"].split(",")
files = [sorted(os.listdir(d)) for d in dirs]
for group in zip(*files):
    feeds = {{}}
    for d, name, inp in zip(dirs, group, sess.get_inputs()):
        dims = [1] + [int(x) for x in shapes[inp.name].split(",")[1:]]
        raw = open(os.path.join(d, name), "rb").read()
        if aipp is not None:
            from gancc.aipp.emulate import emulate
            h, w = aipp.get("src_image_size_h") or dims[2], aipp.get("src_image_size_w") or dims[3]
            img = np.frombuffer(raw, np.uint8).reshape(1, h * 3 // 2, w)
            feeds[inp.name] = emulate(aipp, img, dims[1]).astype(np.float32)
        else:
            feeds[inp.name] = np.frombuffer(raw, np.float32).reshape(dims)
    stem = group[0].split(".")[0] if KIND == "ais_bench" else group[0].rsplit(".", 1)[0]
    for k, value in enumerate(sess.run(None, feeds)):
        suffix = f"_{{k}}.bin" if KIND == "ais_bench" else f"_output_{{k}}.bin"
        value.astype(out_type).tofile(os.path.join(out_dir, stem + suffix))
print("[INFO] throughput 1000*batchsize.mean(1)/NPU_compute_time.mean(1.0): 1000.0")
"""


def tool(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    path.chmod(0o755)
    return path


def stand_in_tools(folder: Path, monkeypatch, runners=("ais_bench", "msame")) -> Path:
    """A folder with a stand-in atc and device runners, alone on PATH before the system's:
    no npu-smi anywhere, so gancc must not call a run a device run."""
    folder.mkdir()
    tool(folder, "atc", FAKE_ATC)
    for kind in runners:
        tool(folder, kind, FAKE_RUNNER % {"kind": kind})
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}/usr/bin{os.pathsep}/bin")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    return folder


@pytest.fixture
def bindir(tmp_path: Path, monkeypatch) -> Path:
    return stand_in_tools(tmp_path / "bin", monkeypatch)


def test_run_with_ais_bench_reads_outputs_back_and_compares(tmp_path: Path, bindir: Path, capsys):
    spec = write_spec(tmp_path)
    spec.write_text(spec.read_text().replace("out_nodes out", "out_nodes out\n        output_type FP16"))
    out = tmp_path / "out"
    assert main(["build", str(spec), "-o", str(out), "--no-cache", "--run",
                 "--ais-bench", str(bindir / "ais_bench")]) == 0
    err = capsys.readouterr().err
    (call,) = (bindir / "ais_bench_calls.txt").read_text().splitlines()
    assert call == ("--model Small_bs1.om --input device/inputs/0_img --output device/outputs "
                    "--output_dirname run --outfmt BIN")
    folder = out / "small"
    inputs = sorted(p.name for p in (folder / "device" / "inputs" / "0_img").iterdir())
    assert inputs == ["sample_0.bin", "sample_1.bin"]
    assert (folder / "device" / "inputs" / "0_img" / "sample_0.bin").stat().st_size == 3 * 64 * 64 * 4
    outs = sorted(p.name for p in (folder / "device" / "outputs" / "run").iterdir())
    assert outs == ["sample_0_0.bin", "sample_1_0.bin"]
    assert (folder / "device" / "outputs" / "run" / "sample_0_0.bin").stat().st_size == 3 * 64 * 64 * 2
    report = json.loads((folder / "report.json").read_text())
    dev = report["device"]
    assert dev["tool"] == "ais_bench" and dev["tool_path"] == str((bindir / "ais_bench").resolve())
    assert dev["validated_on_device"] is False and dev["npu_smi_soc"] is None
    assert dev["output_dtypes"] == {"out": "FP16"}
    # the stand-in ran the final graph: the same figure as the CPU validation, to fp16 precision
    cpu = report["validation"]["final_vs_reference"]["out"]["pixel_cosine"]
    assert dev["final_vs_reference"]["out"]["pixel_cosine"] == pytest.approx(cpu, abs=2e-3)
    assert "NOT A DEVICE RUN" in err and "not from an Ascend device" in err


def test_run_with_msame_and_aipp_feeds_uint8_nv12(tmp_path: Path, bindir: Path):
    spec = write_spec(tmp_path)
    spec.write_text(spec.read_text().replace("    atc {", (
        "    aipp img {\n        input_format YUV420SP_U8\n        image w=80 h=72\n"
        "        crop align=center\n        csc preset=yuv2rgb_jpeg\n"
        "        normalize mean=[0.5] std=[0.5]\n    }\n    atc {")))
    out = tmp_path / "out"
    assert main(["build", str(spec), "-o", str(out), "--no-cache", "--run",
                 "--msame", str(bindir / "msame")]) == 0
    folder = out / "small"
    call = (bindir / "msame_calls.txt").read_text()
    assert call.startswith("--model Small_bs1.om --input device/inputs/0_img --output device/outputs")
    sample = folder / "device" / "inputs" / "0_img" / "sample_0.bin"
    assert sample.stat().st_size == 80 * 72 * 3 // 2            # NV12 bytes of the source image
    (stamp,) = [p for p in (folder / "device" / "outputs").iterdir() if p.is_dir()]
    assert sorted(p.name for p in stamp.iterdir()) == ["sample_0_output_0.bin", "sample_1_output_0.bin"]
    report = json.loads((folder / "report.json").read_text())
    dev = report["device"]
    assert dev["tool"] == "msame" and dev["output_dtypes"] == {"out": "float32 (by size)"}
    # stand-in = emulated AIPP -> final graph, so it matches gancc's own AIPP figure exactly
    aipp = report["validation"]["aipp"]["final_vs_reference"]["out"]
    assert dev["final_vs_reference"]["out"]["pixel_cosine"] == pytest.approx(aipp["pixel_cosine"],
                                                                             abs=1e-6)
    assert "--insert_op_conf=aipp.cfg" in (bindir / "atc_calls.txt").read_text()


def test_run_needs_atc_and_a_runner(tmp_path: Path, bindir: Path, capsys):
    spec = write_spec(tmp_path)
    assert main(["build", str(spec), "-o", str(tmp_path / "a"), "--no-cache", "--run", "--no-atc"]) == 1
    assert "--run needs the compiled .om, but atc did not run" in capsys.readouterr().err
    (bindir / "ais_bench").unlink()
    (bindir / "msame").unlink()
    assert main(["build", str(spec), "-o", str(tmp_path / "b"), "--no-cache", "--run",
                 "--atc", str(bindir / "atc")]) == 1
    assert "--run needs ais_bench or msame" in capsys.readouterr().err


def test_runner_failure_is_a_tool_error(tmp_path: Path, bindir: Path, capsys):
    tool(bindir, "ais_bench", "#!/usr/bin/env bash\necho 'acl init failed: 507033'\nexit 3\n")
    spec = write_spec(tmp_path)
    assert main(["build", str(spec), "-o", str(tmp_path / "out"), "--no-cache", "--run"]) == 1
    err = capsys.readouterr().err
    assert "error: ais_bench failed" in err and "acl init failed: 507033" in err
    assert "Traceback" not in err


def test_output_files_are_read_as_their_dtype(tmp_path: Path):
    from gancc.stages.device import read_output

    values = np.arange(6, dtype=np.float16).reshape(1, 2, 3)
    values.tofile(tmp_path / "a.bin")
    np.testing.assert_array_equal(read_output(tmp_path / "a.bin", (1, 2, 3), "FP16"), values)
    np.testing.assert_array_equal(read_output(tmp_path / "a.bin", (1, 2, 3), None), values)
    with pytest.raises(Exception, match="expected 12"):
        read_output(tmp_path / "a.bin", (1, 3, 4), "FP16")
