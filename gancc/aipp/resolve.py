"""From a spec's `aipp INPUT { ... }` block to the fields gancc writes, checked against the
documented rules and the model.

A block holds plain fields (`crop_size_w 256`) and sugar statements written
`name key=value ...`:

    image     w=512 h=512                    src_image_size_w/h
    crop      x=16 y=16 [w=256 h=256]        crop window (size defaults to what the model needs)
    crop      align=center                   the window centred in the source image
    padding   top=2 bottom=2 left=0 right=0 [value=0]
    padding   align=center|topleft [value=0] pads that bring the image to the model's H/W
    csc       preset=yuv2rgb_jpeg            csc_switch, all nine matrix entries, the biases
    normalize mean=[0.5,0.5,0.5] std=[0.5,0.5,0.5] [scale=255]
                                             min_chn_i = scale*mean_i, var_reci_chn_i = 1/(scale*std_i)

`resolve_model` expands the sugar with the model's input H/W and channels, then runs the
checks of gancc.aipp.checks. Every error is a SpecError at the line that set the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gancc.aipp import checks, presets
from gancc.aipp.emulate import fp16_rounding
from gancc.errors import SpecError, Span, did_you_mean

# statement -> its keys. Values are checked when the statement is expanded.
SUGAR: dict[str, tuple[str, ...]] = {
    "image": ("w", "h"),
    "crop": ("x", "y", "w", "h", "align"),
    "padding": ("top", "bottom", "left", "right", "value", "align"),
    "csc": ("preset",),
    "normalize": ("mean", "std", "scale"),
}
ALIGNS = ("center", "topleft")


@dataclass(frozen=True)
class Statement:
    """`name key=value ...` inside an aipp block. args: key -> lower.Value."""

    name: str
    args: tuple[tuple[str, Any, Span], ...]
    span: Span
    name_span: Span

    def get(self, key: str):
        return next((v for k, v, _ in self.args if k == key), None)

    def key_span(self, key: str) -> Span:
        return next((s for k, _, s in self.args if k == key), self.span)

    def keys(self) -> list[str]:
        return [k for k, _, _ in self.args]


def check_statement(stmt: Statement) -> None:
    """What the parser can check alone: the statement and its keys exist, none repeats."""
    if stmt.name not in SUGAR:
        raise SpecError(f"unknown aipp statement '{stmt.name}'", stmt.name_span,
                        did_you_mean(stmt.name, SUGAR) or
                        f"statements written key=value: {', '.join(SUGAR)}")
    seen = set()
    for key, _value, span in stmt.args:
        if key not in SUGAR[stmt.name]:
            raise SpecError(f"'{stmt.name}' has no key '{key}'", span,
                            did_you_mean(key, SUGAR[stmt.name]) or
                            f"its keys: {', '.join(SUGAR[stmt.name])}")
        if key in seen:
            raise SpecError(f"'{key}' is given twice", span)
        seen.add(key)


@dataclass
class ResolvedAipp:
    """One aipp_op block: ordered fields, the line that set each, and what to tell the user."""

    input: str
    rank: int
    fields: dict[str, Any]
    spans: dict[str, Span]
    block_span: Span | None
    model_hw: tuple[int, int]
    channels: int
    notes: list[str] = field(default_factory=list)       # e.g. fp16 rounding of constants
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"input": self.input, "related_input_rank": self.rank, "fields": dict(self.fields),
                "model_hw": list(self.model_hw), "fp16": self.notes, "warnings": self.warnings}


def input_geometry(model, input_name: str, span: Span | None) -> tuple[int, int, int]:
    """(C, H, W) of an image input, in the layout atc's --input_format says."""
    inp = next(i for i in model.inputs if i.name == input_name)
    if len(inp.shape) != 4:
        raise SpecError(f"AIPP input '{input_name}' has shape {list(inp.shape)}; AIPP feeds "
                        "4-D images", span, "AIPP applies to N,C,H,W (or N,H,W,C) image inputs")
    if inp.dtype not in ("float32", "float16"):
        raise SpecError(f"AIPP input '{input_name}' is {inp.dtype}; AIPP outputs float16 images",
                        span, "declare the model input as float32")
    if model.atc.input_format == "NHWC":
        _, h, w, c = inp.shape
    else:
        _, c, h, w = inp.shape
    return int(c), int(h), int(w)


def _number(stmt: Statement, key: str, integer: bool = False, default=None):
    v = stmt.get(key)
    if v is None:
        return default
    value = v.value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (integer and not isinstance(value, int)):
        raise SpecError(f"'{stmt.name} {key}=' takes {'an integer' if integer else 'a number'}, "
                        f"got {value!r}", v.span)
    return value


def _numbers(stmt: Statement, key: str) -> list[float] | None:
    v = stmt.get(key)
    if v is None:
        return None
    items = v.value if isinstance(v.value, tuple) else (v,)
    out = []
    for item in items:
        value = getattr(item, "value", item)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"'{stmt.name} {key}=' takes numbers, got {value!r}",
                            getattr(item, "span", v.span))
        out.append(float(value))
    if not 1 <= len(out) <= 4:
        raise SpecError(f"'{key}' has {len(out)} values; AIPP normalises 1 to 4 channels", v.span)
    return out


def _word(stmt: Statement, key: str, choices) -> str | None:
    v = stmt.get(key)
    if v is None:
        return None
    if not isinstance(v.value, str) or v.value not in choices:
        raise SpecError(f"invalid {key}={v.value!r} for '{stmt.name}'", v.span,
                        did_you_mean(str(v.value), choices) or f"one of: {', '.join(choices)}")
    return v.value


class _Fields:
    """Ordered fields with the span that set each; a field set twice is an error."""

    def __init__(self):
        self.values: dict[str, Any] = {}
        self.spans: dict[str, Span] = {}

    def set(self, name: str, value: Any, span: Span, what: str) -> None:
        if name in self.values:
            raise SpecError(f"{what} sets '{name}', which line {self.spans[name].line} sets too",
                            span, "set each AIPP field once")
        self.values[name] = value
        self.spans[name] = span


def resolve(model, aipp, soc_version: str | None = None) -> ResolvedAipp:
    """One aipp block expanded and checked. Statements expand in this order because each may
    need what an earlier one set: crop's default size needs the explicit pads, and aligned
    padding needs the crop window."""
    c, h, w = input_geometry(model, aipp.input, aipp.span)
    out = _Fields()
    block_span = aipp.span
    for name, value in aipp.fields:
        out.set(name, value, aipp.spans.get(name, block_span), f"'{name}'")
    statements = _statements_by_name(aipp)
    if "image" in statements:
        _expand_image(out, statements["image"])
    if "csc" in statements:
        _expand_csc(out, statements["csc"])
    padding_stmt = statements.get("padding")
    pads = _explicit_pads(out, padding_stmt)
    src_h = out.values.get("src_image_size_h") or h
    src_w = out.values.get("src_image_size_w") or w
    if "crop" in statements:
        _expand_crop(out, statements["crop"], (h, w), (src_h, src_w), pads)
    if padding_stmt is not None and _word(padding_stmt, "align", ALIGNS) is not None:
        _expand_aligned_padding(out, padding_stmt, (h, w), (src_h, src_w))
    if "normalize" in statements:
        _expand_normalize(out, statements["normalize"], c)

    fields = out.values
    notes = _fp16_notes(fields)
    resolved = ResolvedAipp(aipp.input, model.input_names.index(aipp.input),
                            _ordered(fields), out.spans, block_span, (h, w), c, notes)
    resolved.warnings = checks.check_block(resolved, model, soc_version)
    return resolved


def _statements_by_name(aipp) -> dict[str, Statement]:
    """The block's sugar statements by name; each may be written once."""
    statements: dict[str, Statement] = {}
    for s in getattr(aipp, "statements", ()):
        if s.name in statements:
            raise SpecError(f"'{s.name}' is written twice in aipp {aipp.input}", s.span,
                            f"first at line {statements[s.name].span.line}")
        statements[s.name] = s
    return statements


def _expand_image(out: _Fields, s: Statement) -> None:
    """`image w= h=` -> src_image_size_w/h."""
    for key, fname in (("w", "src_image_size_w"), ("h", "src_image_size_h")):
        value = _number(s, key, integer=True)
        if value is None:
            raise SpecError(f"'image' needs {key}=", s.span, "e.g. image w=512 h=512")
        out.set(fname, value, s.key_span(key), "'image'")


def _expand_csc(out: _Fields, s: Statement) -> None:
    """`csc preset=` -> csc_switch, the matrix and the biases; the preset must suit input_format."""
    name = _word(s, "preset", list(presets.PRESETS))
    if name is None:
        raise SpecError("'csc' needs preset=", s.span,
                        "e.g. csc preset=yuv2rgb_bt601_narrow (`gancc aipp presets` lists them)")
    preset = presets.PRESETS[name]
    fmt = out.values.get("input_format")
    is_yuv = fmt in ("YUV420SP_U8", "YUV400_U8")
    if fmt and (preset.source == "yuv") != is_yuv:
        raise SpecError(f"CSC preset {name} converts {preset.source.upper()} input, but "
                        f"input_format is {fmt}", s.key_span("preset"),
                        "pick a yuv2* preset for YUV420SP_U8, an rgb2* one for RGB888/XRGB8888")
    for fname, value in preset.fields().items():
        out.set(fname, value, s.span, f"'csc preset={name}'")


def _explicit_pads(out: _Fields, padding_stmt: Statement | None) -> dict[str, int]:
    """The pad sizes known before the crop: from plain *_padding_size fields, or from a
    `padding top= bottom= ...` statement (expanded here). An aligned padding waits for the crop."""
    pads = {"top": 0, "bottom": 0, "left": 0, "right": 0}
    for side in pads:
        pads[side] = int(out.values.get(f"{side}_padding_size", 0)) \
            if out.values.get("padding") else 0
    if padding_stmt is not None and _word(padding_stmt, "align", ALIGNS) is None:
        s = padding_stmt
        for side in pads:
            pads[side] = _number(s, side, integer=True, default=0)
        _set_padding(out, s, pads)
    return pads


def _expand_crop(out: _Fields, s: Statement, model_hw: tuple[int, int],
                 src_hw: tuple[int, int], pads: dict[str, int]) -> None:
    """`crop x= y= [w= h=]` or `crop align=center` -> crop, load_start_pos_*, crop_size_*.
    The size defaults to what the model needs after the explicit pads."""
    h, w = model_hw
    src_h, src_w = src_hw
    align = _word(s, "align", ALIGNS)
    if align == "topleft":
        raise SpecError("crop align is center, or give x= y=", s.key_span("align"))
    cw = _number(s, "w", integer=True, default=w - pads["left"] - pads["right"])
    ch = _number(s, "h", integer=True, default=h - pads["top"] - pads["bottom"])
    if align == "center":
        if s.get("x") is not None or s.get("y") is not None:
            raise SpecError("crop takes align=center or x= y=, not both", s.span)
        x, y = (src_w - cw) // 2, (src_h - ch) // 2
        if out.values.get("input_format") == "YUV420SP_U8":
            x, y = x & ~1, y & ~1
        if x < 0 or y < 0:
            raise SpecError(f"a {ch}x{cw} crop does not fit the {src_h}x{src_w} source image",
                            s.span)
    else:
        x = _number(s, "x", integer=True, default=0)
        y = _number(s, "y", integer=True, default=0)
    for fname, value, key in (("crop", True, None), ("load_start_pos_w", x, "x"),
                              ("load_start_pos_h", y, "y"), ("crop_size_w", cw, "w"),
                              ("crop_size_h", ch, "h")):
        out.set(fname, value, s.key_span(key) if key else s.span, "'crop'")


def _expand_aligned_padding(out: _Fields, s: Statement, model_hw: tuple[int, int],
                            src_hw: tuple[int, int]) -> None:
    """`padding align=center|topleft` -> the pads that bring the crop (or the source image)
    to the model's H/W."""
    h, w = model_hw
    src_h, src_w = src_hw
    for side in ("top", "bottom", "left", "right"):
        if s.get(side) is not None:
            raise SpecError("padding takes align= or the four sizes, not both", s.key_span(side))
    inner_h = out.values.get("crop_size_h") if out.values.get("crop") else src_h
    inner_w = out.values.get("crop_size_w") if out.values.get("crop") else src_w
    extra_h, extra_w = h - int(inner_h), w - int(inner_w)
    if extra_h < 0 or extra_w < 0:
        raise SpecError(f"the {inner_h}x{inner_w} image is larger than the model's {h}x{w}; "
                        "padding cannot shrink it", s.span, "crop it first: crop align=center")
    if _word(s, "align", ALIGNS) == "center":
        pads = {"top": extra_h // 2, "bottom": extra_h - extra_h // 2,
                "left": extra_w // 2, "right": extra_w - extra_w // 2}
    else:
        pads = {"top": 0, "bottom": extra_h, "left": 0, "right": extra_w}
    _set_padding(out, s, pads)


def _expand_normalize(out: _Fields, s: Statement, channels: int) -> None:
    """`normalize mean= std= [scale=]` -> min_chn_i and var_reci_chn_i per channel."""
    mean, std = _numbers(s, "mean"), _numbers(s, "std")
    if mean is None or std is None:
        raise SpecError("'normalize' needs mean= and std=", s.span,
                        "e.g. normalize mean=[0.5, 0.5, 0.5] std=[0.5, 0.5, 0.5] "
                        "(torchvision Normalize on ToTensor's [0, 1] values)")
    scale = float(_number(s, "scale", default=255))
    width = max(len(mean), len(std), channels)     # one value applies to every channel
    if len(std) == 1:
        std = std * width
    if len(mean) == 1:
        mean = mean * width
    if len(mean) != len(std):
        raise SpecError(f"normalize has {len(mean)} means and {len(std)} stds",
                        s.key_span("std"))
    for i, (m, sd) in enumerate(zip(mean, std)):
        if sd == 0:
            raise SpecError("a std of 0 divides by zero", s.key_span("std"))
        min_value, var = m * scale, 1.0 / (sd * scale)
        if not 0 <= min_value <= 255:
            raise SpecError(f"mean {m} x scale {scale:g} = {min_value:g} is outside min_chn's "
                            "[0, 255]", s.key_span("mean"),
                            "AIPP subtracts a non-negative min_chn; check mean= and scale=")
        out.set(f"min_chn_{i}", min_value, s.key_span("mean"), "'normalize'")
        out.set(f"var_reci_chn_{i}", var, s.key_span("std"), "'normalize'")


def _fp16_notes(fields: dict[str, Any]) -> list[str]:
    """fp16 rounding of the normalisation constants, as the hardware stores them."""
    notes: list[str] = []
    for i in range(4):
        for prefix in ("min_chn", "var_reci_chn"):
            name = f"{prefix}_{i}"
            if name in fields:
                rounded, rel = fp16_rounding(float(fields[name]))
                if rounded != float(fields[name]):
                    notes.append(f"{name} {fields[name]:.10g} -> fp16 {rounded!r} "
                                 f"(relative error {rel:.1e})")
    return notes


def _set_padding(out: _Fields, s: Statement, pads: dict[str, int]) -> None:
    out.set("padding", True, s.span, "'padding'")
    for side, value in pads.items():
        out.set(f"{side}_padding_size", value, s.key_span(side), "'padding'")
    value = _number(s, "value")
    if value is not None:
        out.set("padding_value", float(value), s.key_span("value"), "'padding'")


def _ordered(fields: dict[str, Any]) -> dict[str, Any]:
    from gancc.aipp.message import field_names

    order = {name: i for i, name in enumerate(field_names())}
    return {k: fields[k] for k in sorted(fields, key=lambda k: order.get(k, 999))}


def resolve_model(model, soc_version: str | None = None) -> list[ResolvedAipp]:
    """Every aipp block of a model, expanded and checked; plus the cross-block rules."""
    blocks = []
    seen: dict[str, Span | None] = {}
    for aipp in model.aipp:
        if aipp.input not in model.input_names:
            raise SpecError(f"aipp names input '{aipp.input}', which the model does not declare",
                            aipp.span, did_you_mean(aipp.input, model.input_names))
        if aipp.input in seen:
            raise SpecError(f"a second aipp block for input '{aipp.input}'", aipp.span,
                            "ATC rejects two AIPP ops at one input (E10052); merge the blocks")
        seen[aipp.input] = aipp.span
        blocks.append(resolve(model, aipp, soc_version))
    checks.check_atc_combination(blocks, model)
    return blocks


def block_dicts(blocks: list[ResolvedAipp]) -> list[dict[str, Any]]:
    """The aipp_op blocks as message.to_text takes them (aipp_mode and rank first)."""
    out = []
    for b in blocks:
        fields = {"aipp_mode": "static", "related_input_rank": b.rank}
        fields.update({k: v for k, v in b.fields.items() if k != "aipp_mode"})
        out.append(fields)
    return out

