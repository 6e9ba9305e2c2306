"""`gancc check` judges as `gancc build` does: what the build rejects without running the
model, check rejects with the same message (gancc/checks.py's check_build_inputs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gancc.cli import main
from tests.test_crash_consistency import tiny_onnx

ONNX_SPEC = """\
model tiny {{
    source onnx "tiny.onnx"
    input {input}
    output {output}
    atc {{ {atc} }}
    validate {{ {data} }}
}}
"""
TORCH_SPEC = """\
model small {{
    source pytorch {{
        arch resnet_generator(input_nc=3, output_nc=3, ngf=8, n_blocks=1)
        weights "weights/small.pth"{fallback}
    }}
    input img: float32[N, 3, 32, 32] batch 1
    output out
    opset {opset}{aipp}
    atc {{ soc_version Ascend310P3 }}
}}
"""


SAVED_SPEC = """\
model tiny {{
    source {kind} "{file}"
    input x: float32[1, 3, 8, 8] batch 1
    output y
    atc {{ soc_version Ascend310P3 }}
}}
"""


def onnx_spec(input="x: float32[1, 3, 8, 8] batch 1", output="y",
              atc="soc_version Ascend310P3", data="") -> str:
    return ONNX_SPEC.format(input=input, output=output, atc=atc, data=data)


def torch_spec(fallback=" else random(seed=0)", opset=11, aipp="") -> str:
    return TORCH_SPEC.format(fallback=fallback, opset=opset, aipp=aipp)


# (case, spec text, what the first line says, the text its column points at, or None)
BAD_SPECS = [
    ("no soc_version", onnx_spec(atc="log error"), "has no soc_version for atc", None),
    ("miscased SoC", onnx_spec(atc="soc_version Ascend310p3"),
     "soc_version 'Ascend310p3' is not a known Ascend SoC", "soc_version A"),
    ("unknown SoC", onnx_spec(atc="soc_version Ascend999"),
     "soc_version 'Ascend999' is not a known Ascend SoC", "soc_version A"),
    ("missing checkpoint", torch_spec(fallback=""), "checkpoint not found", "weights "),
    ("uniform", onnx_spec(data="data x uniform(1, -1)"), "high (-1) must be greater than low",
     "-1"),
    ("normal", onnx_spec(data="data x normal(0, -1)"), "std must be 0 or more, got -1", "-1"),
    ("randint", onnx_spec(data="data x randint(5, 1)"), "must be greater than low (5)", "1)"),
    ("bernoulli", onnx_spec(data="data x bernoulli(p=2)"), "p is a probability", "p=2"),
    ("onnx input shape", onnx_spec(input="x: float32[1, 3, 16, 16] batch 1"),
     "input 'x' is declared [1, 3, 16, 16], but tiny.onnx takes [1, 3, 8, 8]", "input "),
    ("onnx input name", onnx_spec(input="img: float32[1, 3, 8, 8] batch 1"),
     "input 'img' is not an input of tiny.onnx", "input "),
    ("onnx output name", onnx_spec(output="out"), "output 'out' is not an output of tiny.onnx",
     "out"),
    ("opset 7", torch_spec(opset=7), "opset 7 is not supported for export", "opset 7"),
    # found before the export (it was found only at the aipp-config stage, after it)
    ("aipp crop", torch_spec(aipp="\n    aipp img {\n        input_format RGB888_U8\n"
                                  "        image w=64 h=64\n        crop x=0 y=0 w=16 h=32\n    }"),
     "AIPP produces 32x16 (crop 32x16) but the model input 'img' is 32x32", "w=16"),
    ("tensorflow graph missing", SAVED_SPEC.format(kind="tensorflow", file="absent.pb"),
     "TensorFlow graph not found", "source "),
    ("torchscript missing", SAVED_SPEC.format(kind="torchscript", file="absent.pt"),
     "TorchScript module not found", "source "),
    ("torch.export program missing", SAVED_SPEC.format(kind="exported", file="absent.pt2"),
     "torch.export program (.pt2) not found", "source "),
]


def first_error_line(err: str) -> str:
    return next(line for line in err.splitlines() if "error:" in line)


@pytest.mark.parametrize("case, text, says, where", BAD_SPECS, ids=[c[0] for c in BAD_SPECS])
def test_check_rejects_what_build_rejects_with_the_same_message(tmp_path: Path, monkeypatch,
                                                                 capsys, case, text, says, where):
    monkeypatch.setenv("PATH", f"{tmp_path / 'no-npu-smi'}{os.pathsep}/usr/bin{os.pathsep}/bin")
    tiny_onnx(tmp_path / "tiny.onnx", 1.0)
    spec = tmp_path / "t.gan"
    spec.write_text(text, encoding="utf-8")
    assert main(["check", str(spec)]) == 1
    checked = capsys.readouterr()
    assert "no problems found" not in checked.out
    assert main(["build", str(spec), "-o", str(tmp_path / "out"), "--no-atc"]) == 1
    built = capsys.readouterr().err
    assert first_error_line(checked.err) == first_error_line(built)
    assert says in first_error_line(built)
    if where is not None:     # file:line:col of the first line that has `where`
        line = next(k for k, t in enumerate(text.splitlines(), 1) if where in t)
        col = text.splitlines()[line - 1].rindex(where) + 1
        assert first_error_line(built).startswith(f"{spec}:{line}:{col}: error:")
    assert "bug in gancc" not in built
    assert not (tmp_path / "out" / "tiny").exists() and not (tmp_path / "out" / "small").exists()


def test_the_command_line_overrides_are_judged_too(tmp_path: Path, capsys):
    tiny_onnx(tmp_path / "tiny.onnx", 1.0)
    spec = tmp_path / "t.gan"
    spec.write_text(onnx_spec(), encoding="utf-8")
    assert main(["check", str(spec), "--soc-version", "Ascend910b3"]) == 1
    assert "did you mean 'Ascend910B3'?" in capsys.readouterr().err
    assert main(["check", str(spec), "--soc-version", "Ascend910B3"]) == 0
    spec.write_text(torch_spec(fallback=""), encoding="utf-8")
    assert main(["check", str(spec), "--random-weights"]) == 0
    assert "random weights, seed 0" in capsys.readouterr().out


def test_good_values_pass(tmp_path: Path, capsys):
    tiny_onnx(tmp_path / "tiny.onnx", 1.0)
    spec = tmp_path / "t.gan"
    for soc in ("Ascend310", "\"Ascend910B4-1\"", "Ascend910_9391", "Ascend035"):
        for data in ("data x uniform(-1, 1)", "data x normal(0, 0)", "data x bernoulli(1)"):
            spec.write_text(onnx_spec(atc=f"soc_version {soc}", data=data), encoding="utf-8")
            assert main(["check", str(spec)]) == 0, capsys.readouterr().err


def test_a_missing_tensorflow_graph_fails_check_and_build_alike_without_the_converter(
        tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("GANCC_NO_TF", "1")    # the atc-only fallback does not cover it
    spec = tmp_path / "t.gan"
    spec.write_text(SAVED_SPEC.format(kind="tensorflow", file="absent.pb"), encoding="utf-8")
    assert main(["check", str(spec)]) == 1
    checked = first_error_line(capsys.readouterr().err)
    assert main(["build", str(spec), "-o", str(tmp_path / "out"), "--no-atc"]) == 1
    assert first_error_line(capsys.readouterr().err) == checked
    assert checked.startswith(f"{spec}:2:") and "TensorFlow graph not found" in checked


def test_check_notes_the_tensorflow_fallback_the_build_takes(tmp_path: Path, monkeypatch,
                                                             capsys):
    monkeypatch.setenv("GANCC_NO_TF", "1")
    (tmp_path / "g.pb").write_bytes(b"")      # not read without the converter
    spec = tmp_path / "t.gan"
    spec.write_text(SAVED_SPEC.format(kind="tensorflow", file="g.pb"), encoding="utf-8")
    assert main(["check", str(spec)]) == 0
    assert "tiny: ok (not converted to ONNX here: GANCC_NO_TF is set; the build writes " \
           "atc.sh for the .pb and validates nothing)" in capsys.readouterr().out
    assert main(["build", str(spec), "-o", str(tmp_path / "out"), "--no-atc"]) == 0
    assert (tmp_path / "out" / "tiny" / "atc.sh").is_file()
