"""`gancc aipp import`: an existing AIPP config file as spec syntax.

The file is parsed with the same message definition ATC's parser uses (so a file ATC would
reject is rejected here, naming the line), then each `aipp_op` block is printed as an
`aipp INPUT { ... }` block: plain fields in the order gancc writes them, a CSC matrix and
its biases recognised as a named preset where they are one. Numbers print as the float32
values the file holds, so importing and re-emitting gives the same message.

An import round-trips: the printed text is parsed back as a spec and must give the same
message (`check_round_trip`). What a spec cannot say is refused with the reason (a repeated
field given twice, which ATC rejects too; an infinite or NaN value; an unknown enum number),
and reserved fields ATC ignores on 310/310P/910 are printed as comments, with the reason.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf import text_format

from gancc.aipp import presets
from gancc.aipp.message import (FIELD_TYPES, MATRIX_FIELDS, RESERVED_FIELDS, build_config, field_names,
                                parse_config)
from gancc.errors import GanccError

# What an input name must look like to be an `aipp NAME { }` block (gan.lark's NAME).
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")


class RoundTripError(RuntimeError):
    """The printed spec text does not read back as the config: a bug in this importer (so
    not a GanccError: the command line reports it as one of gancc's, exit 70)."""


def read_config(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    try:
        # Recipes' files carry comments in other encodings (GBK); only comments, so replace.
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as err:
        raise GanccError(f"cannot read AIPP config {path}: {err.strerror or err}") from None
    try:
        blocks = parse_config(text)
    except (text_format.ParseError, ValueError, TypeError, OverflowError) as err:
        raise GanccError(f"{path}: not a valid AIPP config: {err}",
                         "ATC would reject it too (E13005): fix the field it names") from None
    for index, fields in enumerate(blocks, 1):
        _check_block(path, index, fields)
    return blocks


def _check_block(path: Path, index: int, fields: dict[str, Any]) -> None:
    """Refuse what ATC refuses, or what has no value a spec (or ATC) can hold."""
    where = f"{path}: aipp_op {index}"
    if "aipp_mode" not in fields or fields["aipp_mode"] == "undefined":
        raise GanccError(f"{where} has no aipp_mode", "ATC requires `aipp_mode: static` "
                         "(or dynamic) in every aipp_op block")
    if fields["aipp_mode"] == "static" and fields.get("input_format", "UNDEFINED") == "UNDEFINED":
        raise GanccError(f"{where} is static AIPP without an input_format",
                         "ATC requires input_format in static mode, e.g. `input_format: RGB888_U8`")
    for name, value in fields.items():
        if isinstance(value, str) and not value.isprintable():
            raise GanccError(f"{where}: {name} {_comment(value)!r} holds a control character",
                             "a spec string cannot hold one, and no input name has one")
        if isinstance(value, list):
            raise GanccError(f"{where}: {name} is given {len(value)} times "
                             f"({', '.join(map(_format, value))})",
                             f"ATC rejects it too (\"The parameter {name} cannot be configured "
                             "repeatedly\"): keep one value")
        if isinstance(value, float) and not math.isfinite(np.float32(value)):
            raise GanccError(f"{where}: {name} is {value!r} as a float32",
                             "AIPP values are finite (min_chn and var_reci_chn are float16 on "
                             "the device): write a number in range")


def _format(value: Any, quoted: bool = False) -> str:
    """A field's value in spec syntax; `quoted` for a string field (enum names are bare)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        single = np.float32(value)
        if single == 0:
            return "-0.0" if math.copysign(1, single) < 0 else "0"   # -0 would read as 0
        text = np.format_float_positional(single, unique=True, trim="-")
        if len(text.lstrip("-")) > 15 and "." not in text:
            # a spec reads a long digit string as an integer (at most 2^64 - 1)
            text = np.format_float_scientific(single, unique=True, trim="-")
        return text if any(ch.isdigit() for ch in text) else repr(value)
    if isinstance(value, str) and quoted:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def _comment(text: str) -> str:
    """`text` for one `#` comment line: control characters escaped."""
    return "".join(ch.encode("unicode_escape").decode("ascii") if not ch.isprintable() else ch
                   for ch in text)


def _block_name(fields: dict[str, Any], index: int, names: list[str] | None) -> str:
    rank = fields.get("related_input_rank", 0)
    name = (names[index] if names and index < len(names) else None) or f"input{rank}"
    if not _NAME.match(name):
        raise GanccError(f"'{_comment(name)}' is not a name a spec can use for an input",
                         "input names are letters, digits, '_' and '.', not starting with a "
                         "digit (the names of the model's inputs)")
    return name


def _body(fields: dict[str, Any], dynamic: bool) -> tuple[list[str], list[str]]:
    """The block's lines, and its reserved fields' lines (printed as comments)."""
    # a preset stands for csc_switch true: a matrix written with the switch off stays fields
    preset = None if dynamic or fields.get("csc_switch") is not True else presets.recognise(fields)
    skip = {"aipp_mode", "related_input_rank"}
    if preset is not None:
        skip |= {"csc_switch", *MATRIX_FIELDS, *(f"{preset.bias_kind}_bias_{i}" for i in range(3))}
    order = {n: i for i, n in enumerate(field_names())}
    body: list[str] = ["aipp_mode dynamic"] if dynamic else []
    reserved: list[str] = []
    for key in sorted(fields, key=lambda k: order.get(k, 999)):
        if key in skip:
            continue
        line = f"{key} {_format(fields[key], FIELD_TYPES.get(key) == 'string')}"
        if key in RESERVED_FIELDS and not dynamic:
            reserved.append(line)
            continue
        body.append(line)
        if key == "input_format" and preset is not None:
            body.append(f"csc preset={preset.name}    # {preset.description}")
    return body, reserved


def to_spec(blocks: list[dict[str, Any]], names: list[str] | None = None,
            source: str = "") -> str:
    lines = []
    if source:
        lines.append(f"# imported by gancc from {_comment(source)}")
    taken: dict[str, int] = {}
    for index, fields in enumerate(blocks):
        rank = fields.get("related_input_rank", 0)
        name = _block_name(fields, index, names)
        if name in taken:
            raise GanccError(f"aipp_op {taken[name] + 1} and aipp_op {index + 1} both go to input "
                             f"'{name}'", "ATC rejects two AIPP blocks at one input (E10052); "
                             "give each block its own related_input_rank (or --input names)")
        taken[name] = index
        dynamic = fields.get("aipp_mode") == "dynamic"
        body, reserved = _body(fields, dynamic)
        header = f"aipp {name} {{    # aipp_op {index + 1}, related_input_rank {rank}"
        if dynamic:
            lines.append("# dynamic AIPP (parameters set at run time): gancc writes static AIPP "
                         "only, so this block is shown commented out")
            lines += ["# " + header, *(f"#     {b}" for b in body), "# }"]
            continue
        lines.append(header)
        lines += [f"    {b}" for b in body]
        if reserved:
            lines.append("    # reserved on Ascend 310/310P/910 (ATC ignores them; gancc does "
                         "not write them):")
            lines += [f"    #   {r}" for r in reserved]
        lines.append("}")
    return "\n".join(lines) + "\n"


def spec_fields(text: str, names: list[str]) -> dict[str, dict[str, Any]]:
    """The AIPP fields each `aipp NAME { }` block of imported spec text sets, as a build
    would write them (presets expanded; rank and mode left out). SpecError if it does not
    parse: the text is wrapped in a model that declares `names` as its inputs."""
    from gancc.spec.parser import parse_text

    inputs = "".join(f"    input {n}: uint8[1, 3, 8, 8]\n" for n in names)
    body = "\n".join("    " + line for line in text.split("\n"))
    wrapped = f'model imported {{\n    source onnx "imported.onnx"\n{inputs}{body}\n}}\n'
    model = parse_text(wrapped, "<imported>").models[0]
    out = {}
    for aipp in model.aipp:
        fields = {k: v for k, v in aipp.fields if k != "aipp_mode"}
        for stmt in aipp.statements:
            if stmt.name == "csc":
                fields.update(presets.PRESETS[str(stmt.get("preset").value)].fields())
        out[aipp.input] = fields
    return out


def check_round_trip(blocks: list[dict[str, Any]], text: str,
                     names: list[str] | None = None) -> None:
    """The spec text `to_spec` printed reads back as the same config, or a RoundTripError says
    which field differs. Dynamic blocks (printed as comments) and reserved fields (which
    ATC ignores) are left out of the comparison."""
    static = [(i, b) for i, b in enumerate(blocks) if b.get("aipp_mode") != "dynamic"]
    wanted = [_block_name(b, i, names) for i, b in static]
    try:
        read_back = spec_fields(text, wanted)
    except GanccError as err:
        raise RoundTripError(f"the imported spec text does not parse back: {err.message}"
                             ) from None
    for (index, fields), name in zip(static, wanted):
        expected = {k: v for k, v in fields.items()
                    if k not in RESERVED_FIELDS and k not in ("aipp_mode", "related_input_rank")}
        got = read_back.get(name, {})
        if build_config([expected]) != build_config([got]):
            differ = sorted(k for k in set(expected) | set(got)
                            if build_config([{k: expected[k]}] if k in expected else [{}])
                            != build_config([{k: got[k]}] if k in got else [{}]))
            raise RoundTripError(f"aipp_op {index + 1} does not round-trip through spec "
                                 f"syntax: {', '.join(differ) or 'the fields'} read back "
                                 "differently")
