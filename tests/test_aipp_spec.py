"""AIPP in the spec: the sugar statements, the documented rules checked against the model,
and `gancc aipp import` of real configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gancc.aipp import parse_config, to_text
from gancc.aipp.resolve import block_dicts, resolve_model
from gancc.aipp.spectext import read_config, to_spec
from gancc.cli import main
from gancc.errors import SpecError
from gancc.spec import parse_text

EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "reference" / "aipp_examples"


def spec(aipp: str, shape: str = "N, 3, 256, 256", atc: str = "soc_version Ascend310P3",
         name: str = "img") -> str:
    return (f'model m {{\n    source onnx "m.onnx"\n    input {name}: float32[{shape}] batch 1\n'
            f'    output y\n    aipp {name} {{\n{aipp}\n    }}\n    atc {{ {atc} }}\n}}\n')


def resolve(aipp: str, soc: str | None = "Ascend310P3", **kw):
    model = parse_text(spec(aipp, **kw), "t.gan").models[0]
    return resolve_model(model, soc)


def error_of(aipp: str, **kw) -> SpecError:
    with pytest.raises(SpecError) as info:
        resolve(aipp, **kw)
    return info.value


def test_normalize_sugar_computes_min_and_var_reci_and_shows_fp16_rounding():
    (b,) = resolve("        input_format RGB888_U8\n"
                   "        normalize mean=[0.485, 0.456, 0.406] std=[0.229, 0.224, 0.225]")
    assert b.fields["min_chn_0"] == pytest.approx(123.675)
    assert b.fields["var_reci_chn_0"] == pytest.approx(1 / (255 * 0.229))
    assert any(n.startswith("min_chn_0 123.675 -> fp16 123.6875") for n in b.notes)
    (b,) = resolve("        input_format RGB888_U8\n        normalize mean=[0.5] std=[0.5]")
    assert [b.fields[f"var_reci_chn_{i}"] for i in range(3)] == [1 / 127.5] * 3
    assert "var_reci_chn_0 0.007843137255 -> fp16 0.007843017578125 (relative error 1.5e-05)" \
        in b.notes


def test_csc_preset_and_geometry_sugar_expand_to_fields():
    (b,) = resolve("        input_format YUV420SP_U8\n        image w=300 h=262\n"
                   "        crop align=center\n        csc preset=yuv2rgb_bt709_narrow")
    f = b.fields
    assert (f["crop_size_w"], f["crop_size_h"]) == (256, 256)
    assert (f["load_start_pos_w"], f["load_start_pos_h"]) == (22, 2)    # centred, kept even
    assert [f[f"matrix_r0c{c}"] for c in range(3)] == [298, 0, 459]
    assert [f[f"input_bias_{i}"] for i in range(3)] == [16, 128, 128]
    assert f["csc_switch"] is True and "output_bias_0" not in f
    (b,) = resolve("        input_format RGB888_U8\n        image w=250 h=200\n"
                   "        padding align=center value=-1")
    f = b.fields
    assert (f["top_padding_size"], f["bottom_padding_size"]) == (28, 28)
    assert (f["left_padding_size"], f["right_padding_size"]) == (3, 3)
    assert f["padding_value"] == -1.0
    # what gancc writes parses back, aipp_mode and rank first
    text = to_text(block_dicts([b]))
    assert text.startswith("aipp_op {\n  aipp_mode: static\n  related_input_rank: 0\n")
    assert parse_config(text)[0]["left_padding_size"] == 3


@pytest.mark.parametrize("aipp, where, message", [
    ("        input_format RGB888_U8\n        image w=300 h=300\n        crop x=0 y=0 w=224 h=256",
     "t.gan:8:22", "AIPP produces 256x224 (crop 256x224) but the model input 'img' is 256x256"),
    ("        input_format YUV420SP_U8\n        image w=512 h=512\n        crop x=15 y=16",
     "t.gan:8:14", "load_start_pos_w is 15; YUV420SP_U8 needs even sizes"),
    ("        input_format RGB888_U8\n        resize true", "t.gan:7:9", "reserved"),
    ("        input_format RGB888_U8\n        normalise mean=[0.5] std=[0.5]", "t.gan:7:9",
     "unknown aipp statement 'normalise'"),
    ("        input_format RGB888_U8\n        csc preset=yuv2rgb_jpeg", "t.gan:7:13",
     "CSC preset yuv2rgb_jpeg converts YUV input, but input_format is RGB888_U8"),
    ("        input_format RGB888_U8\n        min_chn_0 300", "t.gan:7:9",
     "min_chn_0 is 300, outside its documented range [0, 255]"),
    ("        input_format RGB888_U8\n        normalize mean=[0.5] std=[0.5]\n        min_chn_0 1",
     "t.gan:7:19", "'normalize' sets 'min_chn_0', which line 8 sets too"),
    ("        input_format YUV400_U8\n        csc_switch true", "t.gan:7:9", "csc_switch with YUV400_U8"),
])
def test_rule_violations_are_errors_at_the_line(aipp, where, message):
    err = error_of(aipp)
    rendered = err.render()
    assert message in rendered and rendered.startswith(where), rendered


def test_padding_width_limit_per_soc():
    aipp = ("        input_format RGB888_U8\n        image w=1072 h=256\n"
            "        padding top=0 bottom=0 left=8 right=8")
    err = error_of(aipp, shape="N, 3, 256, 1088")
    assert "Ascend310P3 allows at most 1080" in err.message
    (b,) = resolve(aipp, soc="Ascend910B3", shape="N, 3, 256, 1088")   # A2: W <= 4096
    assert b.fields["padding"] is True


def test_static_aipp_rules_against_atc_options():
    aipp = "        input_format RGB888_U8"
    for atc, message in (
            ('soc_version Ascend310P3 input_format ND dynamic_dims "1,2", "2,2"',
             "dynamic_dims cannot be combined with AIPP"),
            ("soc_version Ascend310P3 input_fp16_nodes img", "input_fp16_nodes names 'img'")):
        with pytest.raises(SpecError, match=message):
            resolve(aipp, atc=atc)
    with pytest.raises(SpecError, match="with dynamic_image_size, AIPP crop must be off"):
        resolve(aipp + "\n        image w=300 h=300\n        crop align=center",
                atc='soc_version Ascend310P3 dynamic_image_size "256,256", "512,512"')


def test_cyclegan_recipe_pair_is_a_warning_naming_the_line():
    (b,) = resolve("        input_format YUV420SP_U8\n        image w=512 h=512\n"
                   "        crop x=16 y=16\n        csc preset=yuv2rgb_jpeg\n"
                   "        rbuv_swap_switch true\n        normalize mean=[0.5] std=[0.5]")
    (warning,) = b.warnings
    assert warning.startswith("t.gan:10:9: rbuv_swap_switch true with the JPEG YUV->RGB matrix")
    assert "NV21" in warning
    (b,) = resolve("        input_format YUV420SP_U8\n        csc preset=yuv2rgb_jpeg")
    assert b.warnings == []


def test_csc_switch_without_matrix_warns_that_the_default_is_bgr():
    (b,) = resolve("        input_format YUV420SP_U8\n        csc_switch true")
    assert "YUV -> BGR, BT.601 narrow range" in b.warnings[0]
    (b,) = resolve("        input_format YUV420SP_U8\n        csc_switch true\n"
                   "        matrix_r0c0 256\n        matrix_r0c2 359")
    (warning,) = b.warnings
    assert warning.startswith("t.gan:8:9: only 2 of the 9 CSC matrix entries are set")
    assert "matrix_r0c1" in warning


def test_check_command_prints_aipp_warnings(tmp_path: Path, capsys):
    from onnx import TensorProto, helper, save

    value = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 3, 256, 256])  # noqa: E731
    graph = helper.make_graph([helper.make_node("Relu", ["img"], ["y"])], "g", [value("img")],
                              [value("y")])
    save(helper.make_model(graph), tmp_path / "m.onnx")    # check reads the source's interface
    path = tmp_path / "t.gan"
    path.write_text(spec("        input_format YUV420SP_U8\n        csc preset=yuv2rgb_jpeg\n"
                         "        rbuv_swap_switch true"))
    assert main(["check", str(path)]) == 0
    captured = capsys.readouterr()
    assert "no problems found" in captured.out
    assert "t.gan:8:9: rbuv_swap_switch true with the JPEG" in captured.err
    path.write_text(spec("        input_format YUV420SP_U8\n        image w=255 h=256"))
    assert main(["check", str(path)]) == 1
    assert "src_image_size_w is 255; YUV420SP_U8 needs even sizes" in capsys.readouterr().err


def test_sugar_syntax_errors_point_at_the_argument():
    with pytest.raises(SpecError) as info:
        parse_text(spec("        input_format RGB888_U8\n        crop x=1 q=2"), "t.gan")
    assert "t.gan:7:18: error: 'crop' has no key 'q'" in info.value.render()
    with pytest.raises(SpecError) as info:
        parse_text(spec("        input_format RGB888_U8\n        normalize 0.5"), "t.gan")
    assert "'normalize' takes key=value arguments" in info.value.render()


def example_files():
    if not EXAMPLES.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{EXAMPLES} is absent"))]
    return [pytest.param(p, id=p.name) for p in sorted(EXAMPLES.iterdir()) if p.suffix != ".md"]


def _model_for(fields: dict) -> tuple[str, int]:
    """A shape the imported block fits: the crop/src size plus pads; gray for a gray CSC."""
    h = fields.get("crop_size_h") if fields.get("crop") else fields.get("src_image_size_h", 0)
    w = fields.get("crop_size_w") if fields.get("crop") else fields.get("src_image_size_w", 0)
    h, w = h or 224, w or 224
    if fields.get("padding"):
        h += fields.get("top_padding_size", 0) + fields.get("bottom_padding_size", 0)
        w += fields.get("left_padding_size", 0) + fields.get("right_padding_size", 0)
    gray = fields.get("input_format") == "YUV400_U8" or fields.get("matrix_r1c1") == 0 \
        and fields.get("matrix_r2c2") == 0 and fields.get("csc_switch")
    return f"N, {1 if gray else 3}, {h}, {w}", 1 if gray else 3


@pytest.mark.parametrize("path", example_files())
def test_every_example_imports_and_round_trips(path: Path, capsys):
    (original,) = read_config(path)
    assert main(["aipp", "import", str(path), "--input", "img"]) == 0
    text = capsys.readouterr().out
    assert "aipp img {" in text
    if original["aipp_mode"] == "dynamic":
        assert "gancc writes static AIPP only" in text and "\n# aipp img {" in text
        return
    body = text.split("{", 1)[1].rsplit("}", 1)[0].split("\n", 1)[1]
    shape, _ = _model_for(original)
    model = parse_text(spec(body, shape=shape), "imported.gan").models[0]
    (block,) = resolve_model(model, "Ascend310P3")
    (again,) = parse_config(to_text(block_dicts([block])))
    expected = {**original, "related_input_rank": original.get("related_input_rank", 0)}
    assert again.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, float):
            assert np.float32(again[key]) == np.float32(value), key
        else:
            assert again[key] == value, key


def test_import_recognises_presets_and_reports_bad_files(tmp_path: Path, capsys):
    cfg = tmp_path / "a.cfg"
    cfg.write_text("aipp_op {\n aipp_mode: static\n input_format: RGB888_U8\n csc_switch: true\n"
                   + "".join(f" matrix_r{r}c{c}: {v}\n" for r, row in
                             enumerate(((66, 129, 25), (-38, -74, 112), (112, -94, -18)))
                             for c, v in enumerate(row))
                   + " output_bias_0: 16\n output_bias_1: 128\n output_bias_2: 128\n}\n")
    text = to_spec(read_config(cfg))
    assert "csc preset=rgb2yuv_bt601_narrow" in text and "matrix_" not in text
    cfg.write_text("aipp_op { aipp_mode: static input_format: RGB888_U8 crop_size: 3 }")
    assert main(["aipp", "import", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "not a valid AIPP config" in err and "crop_size" in err and "Traceback" not in err
