"""`gancc aipp import`: an existing AIPP config file as spec syntax.

The file is parsed with the same message definition ATC's parser uses (so a file ATC would
reject is rejected here, naming the line), then each `aipp_op` block is printed as an
`aipp INPUT { ... }` block: plain fields in the order gancc writes them, a CSC matrix and
its biases recognised as a named preset where they are one. Numbers print as the float32
values the file holds, so importing and re-emitting gives the same message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf import text_format

from gancc.aipp import presets
from gancc.aipp.message import MATRIX_FIELDS, field_names, parse_config
from gancc.errors import GanccError


def read_config(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    try:
        # Recipes' files carry comments in other encodings (GBK); only comments, so replace.
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as err:
        raise GanccError(f"cannot read AIPP config {path}: {err.strerror or err}") from None
    try:
        return parse_config(text)
    except text_format.ParseError as err:
        raise GanccError(f"{path}: not a valid AIPP config: {err}",
                         "ATC would reject it too (E13005): fix the field it names") from None


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = np.format_float_positional(np.float32(value), unique=True, trim="-")
        return text if any(ch.isdigit() for ch in text) else repr(value)
    if isinstance(value, list):
        return ", ".join(_format(v) for v in value)
    return str(value)


def to_spec(blocks: list[dict[str, Any]], names: list[str] | None = None,
            source: str = "") -> str:
    lines = []
    if source:
        lines.append(f"# imported by gancc from {source}")
    for index, fields in enumerate(blocks):
        rank = fields.get("related_input_rank", 0)
        name = (names[index] if names and index < len(names) else None) or f"input{rank}"
        body: list[str] = []
        dynamic = fields.get("aipp_mode") == "dynamic"
        preset = None if dynamic else presets.recognise(fields)
        skip = {"aipp_mode", "related_input_rank"}
        if preset is not None:
            skip |= {"csc_switch", *MATRIX_FIELDS, *(f"{preset.bias_kind}_bias_{i}" for i in range(3))}
        order = {n: i for i, n in enumerate(field_names())}
        if dynamic:
            body.append("aipp_mode dynamic")
        for key in sorted(fields, key=lambda k: order.get(k, 999)):
            value = fields[key]
            if key in skip:
                continue
            if key == "input_format":
                body.append(f"input_format {value}")
                if preset is not None:
                    body.append(f"csc preset={preset.name}    # {preset.description}")
                continue
            body.append(f"{key} {_format(value)}")
        header = f"aipp {name} {{    # aipp_op {index + 1}, related_input_rank {rank}"
        if dynamic:
            lines.append("# dynamic AIPP (parameters set at run time): gancc writes static AIPP "
                         "only, so this block is shown commented out")
            lines += ["# " + header, *(f"#     {b}" for b in body), "# }"]
        else:
            lines += [header, *(f"    {b}" for b in body), "}"]
    return "\n".join(lines) + "\n"
