"""Errors found after a template is expanded (the rewrite pipeline, the AIPP rules, an input
against its ONNX file, atc options at build time) name the model that uses the template and
point at both places: the template's line, and a note at `model b = gen(...)`. The same
mistakes in a spec without templates read exactly as before (no note)."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from gancc.cli import main

TEMPLATE = """\
template gen(name, size=64) {
    source pytorch {
        arch resnet_generator(input_nc=3, output_nc=3, ngf=8, n_blocks=2)
        weights "w/${name}.pth" else random(seed=0)
    }
    input img: float32[N, 3, size, size] batch 1
    output out
    rewrite { REWRITE }
AIPP    atc { soc_version Ascend310P3  output "Gen_${name}"  log error }
}
model a = gen(name="A")
model b = gen(name="B", size=SIZE)
"""

AIPP = """\
    aipp img {
        input_format RGB888_U8
        src_image_size_w 100  src_image_size_h 100  crop true
        crop_size_w 64  crop_size_h 64
    }
"""


def spec(folder: Path, rewrite: str = "fuse-pad-into-conv", aipp: str = "", size: str = "64"
         ) -> Path:
    path = folder / "spec.gan"
    path.write_text(TEMPLATE.replace("REWRITE", rewrite).replace("AIPP", aipp)
                    .replace("SIZE", size), encoding="utf-8")
    return path


def check(path: Path, capsys, *extra: str) -> str:
    assert main(["check", str(path), *extra]) == 1
    return capsys.readouterr().err


def build(path: Path, capsys) -> str:
    assert main(["build", str(path), "-o", str(path.parent / "out"), "--no-atc",
                 "--no-validate", "-q"]) == 1
    return capsys.readouterr().err


@pytest.mark.parametrize("rewrite, message, line", [
    ("fuse-pad-into-conv{bogus=1}", "spec.gan:8:34: error: rewrite 'fuse-pad-into-conv' has no "
                                    "option 'bogus'", 8),
    ("fuse-pad-into-cnv", "spec.gan:8:15: error: unknown rewrite 'fuse-pad-into-cnv'", 8),
])
def test_rewrite_errors_name_the_using_model(tmp_path: Path, capsys, rewrite, message, line):
    path = spec(tmp_path, rewrite)
    for err in (check(path, capsys), check(path, capsys, "--no-code"), build(path, capsys)):
        assert message in err
        # the first model made from the template is the one checked first
        assert "spec.gan:11:1: note: in model 'a', made from template 'gen' here" in err
        assert "   11 | model a = gen(name=\"A\")" in err


def test_aipp_error_inside_the_template_names_the_model_whose_argument_breaks_it(
        tmp_path: Path, capsys):
    path = spec(tmp_path, aipp=AIPP, size="32")       # model a: 64x64 fits; model b: 32x32
    for err in (check(path, capsys), build(path, capsys)):
        assert ("spec.gan:12:9: error: AIPP produces 64x64 (crop 64x64) but the model input "
                "'img' is 32x32") in err
        # the aipp block's 5 lines put model b's use at line 17
        assert "spec.gan:17:1: note: in model 'b', made from template 'gen' here" in err
        assert "model 'a'" not in err
    # found before model b's first stage, as `check` finds it: nothing of b was built
    assert not (tmp_path / "out" / ".gancc" / "failed" / "b").exists()
    assert not (tmp_path / "out" / "b").exists()


ONNX_TEMPLATE = """\
template net(file, image) {
    source onnx "${file}"
    input image: float32[1, 3, 8, 8]
    output out
    atc { soc_version Ascend310P3 }
}
model a = net(file="a.onnx", image=x)
model b = net(file="b.onnx", image=x)
"""


def onnx_file(path: Path, size: int) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, size, size])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, size, size])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["out"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), path)


def test_input_shape_error_names_the_model(tmp_path: Path, capsys):
    onnx_file(tmp_path / "a.onnx", 8)
    onnx_file(tmp_path / "b.onnx", 16)                 # b's file takes 16x16
    path = tmp_path / "spec.gan"
    path.write_text(ONNX_TEMPLATE, encoding="utf-8")
    for err in (check(path, capsys), build(path, capsys)):
        assert "spec.gan:3:5: error: input 'x' is declared [1, 3, 8, 8], but" in err
        assert "spec.gan:8:1: note: in model 'b', made from template 'net' here" in err


def test_build_time_atc_error_names_the_model(tmp_path: Path, capsys):
    """keep_dtype is checked against the final graph, so only the build finds it."""
    path = spec(tmp_path)
    path.write_text(path.read_text().replace("log error", 'log error  keep_dtype "Conv_99"'))
    err = build(path, capsys)
    assert "keep_dtype names node 'Conv_99', which the final graph does not have" in err
    assert "spec.gan:11:1: note: in model 'a', made from template 'gen' here" in err


WRITTEN_OUT = """\
model a {
    source pytorch {
        arch resnet_generator(input_nc=3, output_nc=3, ngf=8, n_blocks=2)
        weights "w/A.pth" else random(seed=0)
    }
    input img: float32[N, 3, 64, 64] batch 1
    output out
    rewrite { fuse-pad-into-conv{bogus=1} }
    atc { soc_version Ascend310P3 }
}
"""


def test_the_same_error_without_a_template_is_unchanged(tmp_path: Path, capsys):
    path = tmp_path / "spec.gan"
    path.write_text(WRITTEN_OUT, encoding="utf-8")
    assert check(path, capsys) == (
        f"{path}:8:34: error: rewrite 'fuse-pad-into-conv' has no option 'bogus'\n"
        "    8 |     rewrite { fuse-pad-into-conv{bogus=1} }\n"
        "      |                                  ^^^^^^^\n"
        "hint: its options: max_pad\n")
