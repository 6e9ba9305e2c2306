"""The AIPP config as a protobuf message, its text format, and the documented field facts.

ATC reads `--insert_op_conf` files with protobuf's TextFormat parser against its message
`domi.InsertNewOps` (`repeated AippOpParams aipp_op = 1`). gancc defines the same message
here, field by field from the documented names, numbers and types (ATC's insert_op.proto as
summarised in the Ascend AIPP config template), builds it as a descriptor at import time (no protoc step), and emits and parses files
through google.protobuf.text_format. So a file gancc writes is exactly one ATC's parser
accepts, and `parse_config` rejects what ATC would (unknown fields, bad enum names).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

_F = descriptor_pb2.FieldDescriptorProto

AIPP_MODES = ["undefined", "static", "dynamic"]
INPUT_FORMATS = [
    "UNDEFINED", "YUV420SP_U8", "XRGB8888_U8", "RGB888_U8", "YUV400_U8", "NC1HWC0DI_FP16",
    "NC1HWC0DI_S8", "ARGB8888_U8", "YUYV_U8", "YUV422SP_U8", "AYUV444_U8", "RAW10", "RAW12",
    "RAW16", "RAW24", "RGB16", "RGB20", "RGB24", "RGB8_IR", "RGB16_IR", "RGB24_IR",
]

# (name, number, type, repeated). Order is the order gancc writes them in.
_FIELDS: list[tuple[str, int, str, bool]] = [
    ("aipp_mode", 1, "AippMode", False),
    ("related_input_rank", 2, "uint32", False),
    ("related_input_name", 6, "string", False),
    ("input_edge_idx", 3, "uint32", True),
    ("max_src_image_size", 4, "uint32", False),
    ("support_rotation", 5, "bool", False),
    ("input_format", 51, "InputFormat", False),
    ("csc_switch", 52, "bool", False),
    ("cpadding_value", 53, "float", False),
    ("rbuv_swap_switch", 54, "bool", False),
    ("ax_swap_switch", 55, "bool", False),
    ("single_line_mode", 56, "bool", False),
    ("src_image_size_w", 57, "int32", False),
    ("src_image_size_h", 58, "int32", False),
    ("crop", 59, "bool", False),
    ("load_start_pos_w", 60, "int32", False),
    ("load_start_pos_h", 61, "int32", False),
    ("crop_size_w", 62, "int32", False),
    ("crop_size_h", 63, "int32", False),
    ("resize", 64, "bool", False),
    ("resize_output_w", 65, "int32", False),
    ("resize_output_h", 66, "int32", False),
    ("padding", 67, "bool", False),
    ("left_padding_size", 68, "int32", False),
    ("right_padding_size", 69, "int32", False),
    ("top_padding_size", 70, "int32", False),
    ("bottom_padding_size", 71, "int32", False),
    ("padding_value", 72, "float", False),
    ("mean_chn_0", 10, "int32", False),
    ("mean_chn_1", 11, "int32", False),
    ("mean_chn_2", 12, "int32", False),
    ("mean_chn_3", 19, "int32", False),
    ("min_chn_0", 13, "float", False),
    ("min_chn_1", 14, "float", False),
    ("min_chn_2", 15, "float", False),
    ("min_chn_3", 20, "float", False),
    ("var_reci_chn_0", 16, "float", True),
    ("var_reci_chn_1", 17, "float", True),
    ("var_reci_chn_2", 18, "float", True),
    ("var_reci_chn_3", 21, "float", True),
    *[(f"matrix_r{r}c{c}", 30 + 3 * r + c, "int32", True) for r in range(3) for c in range(3)],
    ("output_bias_0", 39, "int32", True),
    ("output_bias_1", 40, "int32", True),
    ("output_bias_2", 41, "int32", True),
    ("input_bias_0", 42, "int32", True),
    ("input_bias_1", 43, "int32", True),
    ("input_bias_2", 44, "int32", True),
    ("raw_rgbir_to_f16_n", 45, "uint32", False),
]

FIELD_TYPES: dict[str, str] = {name: ftype for name, _, ftype, _ in _FIELDS}

# Fields ATC documents as reserved or unsupported on 310/310P/910: never written by gancc.
RESERVED_FIELDS = frozenset({"resize", "resize_output_w", "resize_output_h", "support_rotation",
                             "single_line_mode", "cpadding_value", "raw_rgbir_to_f16_n"})

_SCALAR = {"uint32": _F.TYPE_UINT32, "int32": _F.TYPE_INT32, "float": _F.TYPE_FLOAT,
           "bool": _F.TYPE_BOOL, "string": _F.TYPE_STRING}


@lru_cache(maxsize=1)
def _classes():
    fd = descriptor_pb2.FileDescriptorProto(name="gancc_insert_op.proto", package="domi",
                                            syntax="proto3")
    params = fd.message_type.add(name="AippOpParams")
    for enum_name, values in (("AippMode", AIPP_MODES), ("InputFormat", INPUT_FORMATS)):
        enum = params.enum_type.add(name=enum_name)
        for number, value in enumerate(values):
            enum.value.add(name=value, number=number)
    for name, number, ftype, repeated in _FIELDS:
        label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
        if ftype in _SCALAR:
            # proto3 `optional` keeps presence, so a field set to 0/false is still written.
            params.field.add(name=name, number=number, type=_SCALAR[ftype], label=label,
                             proto3_optional=not repeated)
        else:
            params.field.add(name=name, number=number, type=_F.TYPE_ENUM, label=label,
                             type_name=f".domi.AippOpParams.{ftype}", proto3_optional=not repeated)
    ops = fd.message_type.add(name="InsertNewOps")
    ops.field.add(name="aipp_op", number=1, type=_F.TYPE_MESSAGE, label=_F.LABEL_REPEATED,
                  type_name=".domi.AippOpParams")
    # proto3 optional fields need their synthetic oneofs declared.
    for f in params.field:
        if f.proto3_optional:
            f.oneof_index = len(params.oneof_decl)
            params.oneof_decl.add(name=f"_{f.name}")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    insert_new_ops = message_factory.GetMessageClass(pool.FindMessageTypeByName("domi.InsertNewOps"))
    aipp_op_params = message_factory.GetMessageClass(pool.FindMessageTypeByName("domi.AippOpParams"))
    return insert_new_ops, aipp_op_params


def field_value_error(name: str, value: Any) -> str | None:
    """Why `value` cannot go into field `name`, or None when it can."""
    ftype = FIELD_TYPES[name]
    if ftype == "AippMode":
        return None if value in AIPP_MODES[1:] else f"aipp_mode is one of {', '.join(AIPP_MODES[1:])}"
    if ftype == "InputFormat":
        return None if value in INPUT_FORMATS[1:] else "input_format is one of " + ", ".join(INPUT_FORMATS[1:5])
    if ftype == "bool":
        return None if isinstance(value, bool) else f"{name} is true or false"
    if ftype == "string":
        return None if isinstance(value, str) else f"{name} is a string"
    if ftype in ("int32", "uint32"):
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{name} is an integer"
        if ftype == "uint32" and value < 0:
            return f"{name} cannot be negative"
        low, high = (0, 2**32 - 1) if ftype == "uint32" else (-2**31, 2**31 - 1)
        if not low <= value <= high:
            return f"{name} is a {ftype}: from {low} to {high}"
        return None
    if ftype == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{name} is a number"
        if not abs(value) <= FLOAT32_MAX:    # also false for nan
            return f"{name} is a finite float32: at most {FLOAT32_MAX:.7g} in magnitude"
    return None


FLOAT32_MAX = 3.4028234663852886e38


def build_config(blocks: list[dict[str, Any]]):
    """InsertNewOps from one dict of field -> value per `aipp_op` block."""
    insert_new_ops, _ = _classes()
    msg = insert_new_ops()
    for fields in blocks:
        op = msg.aipp_op.add()
        for name, _, ftype, repeated in _FIELDS:
            if name not in fields:
                continue
            value = fields[name]
            if repeated:  # parse_config gives one value as a scalar, several as a list
                getattr(op, name).extend(value if isinstance(value, (list, tuple)) else [value])
            else:
                setattr(op, name, value)
    return msg


def to_text(blocks: list[dict[str, Any]], header: str = "") -> str:
    """The AIPP config file text for these blocks, in protobuf text format."""
    body = text_format.MessageToString(build_config(blocks))
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return comment + body


def parse_config(text: str) -> list[dict[str, Any]]:
    """Parse an AIPP config file. Raises text_format.ParseError like ATC's E13005 would."""
    from gancc.graph.proto import is_repeated   # protobuf 4-7 spell "repeated" differently

    insert_new_ops, _ = _classes()
    msg = text_format.Parse(text, insert_new_ops())
    blocks = []
    for op in msg.aipp_op:
        fields: dict[str, Any] = {}
        for fdesc, value in op.ListFields():
            if fdesc.type == _F.TYPE_ENUM:
                known = fdesc.enum_type.values_by_number.get(value)
                if known is None:   # proto3 enums are open: the parser takes any number
                    names = ", ".join(v.name for v in fdesc.enum_type.values)
                    raise text_format.ParseError(
                        f"aipp_op {len(blocks) + 1}: {fdesc.name} {value} is not a known "
                        f"{fdesc.enum_type.name} (write one of: {names})")
                value = known.name
            elif is_repeated(fdesc):
                value = list(value)[0] if len(value) == 1 else list(value)
            fields[fdesc.name] = value
        blocks.append(fields)
    return blocks


# Documented defaults of the static fields (the AIPP config template): what ATC uses when a
# field is absent. The CSC matrix default depends on the input format (see presets.py).
DEFAULTS: dict[str, Any] = {
    "related_input_rank": 0, "csc_switch": False, "rbuv_swap_switch": False,
    "ax_swap_switch": False, "src_image_size_w": 0, "src_image_size_h": 0, "crop": False,
    "load_start_pos_w": 0, "load_start_pos_h": 0, "crop_size_w": 0, "crop_size_h": 0,
    "padding": False, "left_padding_size": 0, "right_padding_size": 0, "top_padding_size": 0,
    "bottom_padding_size": 0, "padding_value": 0.0,
    **{f"mean_chn_{i}": 0 for i in range(4)}, **{f"min_chn_{i}": 0.0 for i in range(4)},
    **{f"var_reci_chn_{i}": 1.0 for i in range(4)},
    "output_bias_0": 16, "output_bias_1": 128, "output_bias_2": 128,
    "input_bias_0": 16, "input_bias_1": 128, "input_bias_2": 128,
}

# Documented value ranges (inclusive) of the static fields. min_chn and var_reci_chn are
# float16 in the hardware; matrix entries int16 within the template's [-32677, 32676].
RANGES: dict[str, tuple[float, float]] = {
    "src_image_size_w": (0, 4096), "src_image_size_h": (0, 4096),
    "load_start_pos_w": (0, 4095), "load_start_pos_h": (0, 4095),
    "crop_size_w": (0, 4096), "crop_size_h": (0, 4096),
    **{f"{side}_padding_size": (0, 32) for side in ("left", "right", "top", "bottom")},
    "padding_value": (-65504, 65504),
    **{f"mean_chn_{i}": (0, 255) for i in range(4)},
    **{f"min_chn_{i}": (0, 255) for i in range(4)},
    **{f"var_reci_chn_{i}": (-65504, 65504) for i in range(4)},
    **{f"matrix_r{r}c{c}": (-32677, 32676) for r in range(3) for c in range(3)},
    **{f"{kind}_bias_{i}": (0, 255) for kind in ("input", "output") for i in range(3)},
}

# The formats the AIPP docs list for Ascend 310/310P/910 (others belong to other SoCs).
SUPPORTED_INPUT_FORMATS = ("YUV420SP_U8", "RGB888_U8", "XRGB8888_U8", "YUV400_U8")
YUV_FORMATS = ("YUV420SP_U8", "YUV400_U8")

MATRIX_FIELDS = tuple(f"matrix_r{r}c{c}" for r in range(3) for c in range(3))


def field_names() -> list[str]:
    return [name for name, _, _, _ in _FIELDS]


def effective(fields: dict[str, Any], name: str) -> Any:
    """The value ATC uses for `name`: the one set, else the documented default."""
    return fields.get(name, DEFAULTS.get(name))
