"""The AIPP config text format: gancc reads what ATC reads and writes what ATC reads back.

The reference configs under shared/reference/aipp_examples/ are real files from Ascend's
ModelZoo and samples repositories (their sources are listed in SOURCES.md there).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format

from gancc.aipp import FIELD_TYPES, parse_config, to_text

EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "reference" / "aipp_examples"


def example_files() -> list:
    if not EXAMPLES.is_dir():
        return [pytest.param(None, id="no-examples", marks=pytest.mark.skip(
            reason=f"{EXAMPLES} is absent: the reference AIPP configs are not checked out here"))]
    return [pytest.param(p, id=p.name) for p in sorted(EXAMPLES.iterdir())
            if p.is_file() and p.suffix != ".md"]


def same_value(field: str, got, want) -> bool:
    """Equality as the protobuf field stores it: float fields at float32 precision."""
    if FIELD_TYPES[field] == "float":
        return bool(np.float32(got) == np.float32(want))
    return got == want and type(got) is type(want)


def naive_fields(text: str) -> dict:
    """`key: value` lines of a one-block config, read without protobuf (an independent oracle)."""
    fields = {}
    for line in text.splitlines():
        m = re.fullmatch(r"\s*(\w+)\s*:\s*([^\s{}#]+)\s*(#.*)?", line)
        if not m:
            continue
        key, raw = m.group(1), m.group(2)
        assert key not in fields, f"{key} repeated: the oracle handles one value per field"
        if raw in ("true", "false"):
            fields[key] = raw == "true"
        elif re.fullmatch(r"-?\d+", raw) and FIELD_TYPES[key] != "float":
            fields[key] = int(raw)
        elif FIELD_TYPES[key] == "float":
            fields[key] = float(raw)
        else:
            fields[key] = raw
    return fields


@pytest.mark.parametrize("path", example_files())
def test_reference_config_parses_to_its_written_values(path: Path):
    text = path.read_text(encoding="utf-8")
    (block,) = parse_config(text)
    expected = naive_fields(text)
    assert expected, "the oracle found no fields: the test would prove nothing"
    assert set(block) == set(expected)
    for field, value in expected.items():
        assert same_value(field, block[field], value), (field, block[field], value)


@pytest.mark.parametrize("path", example_files())
def test_reference_config_round_trips(path: Path):
    blocks = parse_config(path.read_text(encoding="utf-8"))
    text = to_text(blocks)
    assert parse_config(text) == blocks
    assert to_text(parse_config(text)) == text         # the written form is stable


def test_the_reference_folder_holds_configs():
    if not EXAMPLES.is_dir():
        pytest.skip(f"{EXAMPLES} is absent")
    assert len([p for p in example_files() if p.values[0] is not None]) >= 10


def test_false_and_zero_are_written_not_dropped():
    # proto3 would drop default values; ATC needs `csc_switch: false` and `mean_chn_0: 0` kept
    text = to_text([{"aipp_mode": "static", "input_format": "RGB888_U8", "csc_switch": False,
                     "mean_chn_0": 0, "min_chn_0": 0.0}])
    assert "csc_switch: false" in text and "mean_chn_0: 0" in text and "min_chn_0: 0" in text
    (block,) = parse_config(text)
    assert block == {"aipp_mode": "static", "input_format": "RGB888_U8", "csc_switch": False,
                     "mean_chn_0": 0, "min_chn_0": 0.0}


def test_repeated_field_with_several_values_round_trips():
    blocks = parse_config("aipp_op { aipp_mode: static input_format: RGB888_U8 "
                          "var_reci_chn_0: 0.5 var_reci_chn_0: 0.25 }")
    assert blocks[0]["var_reci_chn_0"] == [0.5, 0.25]
    assert parse_config(to_text(blocks)) == blocks


def test_several_blocks_keep_their_order():
    blocks = [{"aipp_mode": "static", "related_input_rank": 0, "input_format": "RGB888_U8"},
              {"aipp_mode": "static", "related_input_rank": 1, "input_format": "YUV400_U8"}]
    assert parse_config(to_text(blocks)) == blocks


def test_header_is_written_as_comments():
    text = to_text([{"aipp_mode": "static", "input_format": "RGB888_U8"}],
                   header="written by gancc\nmodel: cyclegan_g_a")
    assert text.startswith("# written by gancc\n# model: cyclegan_g_a\naipp_op {\n")
    assert parse_config(text) == [{"aipp_mode": "static", "input_format": "RGB888_U8"}]


@pytest.mark.parametrize("text, message", [
    ("aipp_op { aipp_mode: static resize_out: 3 }", 'has no field named "resize_out"'),
    ("aipp_op { input_formt: RGB888_U8 }", 'has no field named "input_formt"'),
    ("aipp_op { input_format: RGB888 }", "has no value named RGB888"),
    ("aipp_op { aipp_mode: statik }", "has no value named statik"),
    ("aipp_op { crop: maybe }", 'Expected "true" or "false"'),
    ("aipp_op { src_image_size_w: 1.5 }", "Couldn't parse integer"),
    ("aipp_op { aipp_mode: static", "Expected"),
    ("aipp { aipp_mode: static }", 'has no field named "aipp"'),
], ids=["unknown-field", "misspelt-field", "bad-input-format", "bad-aipp-mode", "bad-bool",
        "float-for-int", "unclosed-block", "wrong-block-name"])
def test_what_atc_rejects_is_rejected(text: str, message: str):
    with pytest.raises(text_format.ParseError, match=re.escape(message)):
        parse_config(text)


# shared/reference/models-recipes.md §2a: aipp_CycleGAN_pth.config, every field.
CYCLEGAN_AIPP = {
    "aipp_mode": "static", "input_format": "YUV420SP_U8",
    "csc_switch": True, "rbuv_swap_switch": True,
    "src_image_size_w": 512, "src_image_size_h": 512,
    "crop": True, "load_start_pos_h": 16, "load_start_pos_w": 16,
    "crop_size_w": 256, "crop_size_h": 256,
    "min_chn_0": 127.5, "min_chn_1": 127.5, "min_chn_2": 127.5,
    "var_reci_chn_0": 0.007843137254901, "var_reci_chn_1": 0.007843137254901,
    "var_reci_chn_2": 0.007843137254901,
    "matrix_r0c0": 256, "matrix_r0c1": 0, "matrix_r0c2": 359,
    "matrix_r1c0": 256, "matrix_r1c1": -88, "matrix_r1c2": -183,
    "matrix_r2c0": 256, "matrix_r2c1": 454, "matrix_r2c2": 0,
    "input_bias_0": 0, "input_bias_1": 128, "input_bias_2": 128,
}


def test_cyclegan_recipe_fields_survive_emit_and_parse():
    text = to_text([CYCLEGAN_AIPP])
    (block,) = parse_config(text)
    assert set(block) == set(CYCLEGAN_AIPP)
    for field, value in CYCLEGAN_AIPP.items():
        assert same_value(field, block[field], value), (field, block[field], value)
    # enums are written as ATC's names, signed matrix entries keep their sign
    assert "input_format: YUV420SP_U8" in text and "aipp_mode: static" in text
    assert "matrix_r1c1: -88" in text and "matrix_r1c2: -183" in text
    assert text.count("aipp_op {") == 1
