"""The documented AIPP rules, checked against a resolved block and the model it feeds.

Errors are SpecErrors at the line that set the offending field (the aipp block's line when
the problem is a missing field); things that are legal but probably wrong are returned as
warnings, which the build prints and records in report.json.
"""

from __future__ import annotations

import re

from gancc.aipp import presets
from gancc.aipp.message import (INPUT_FORMATS, MATRIX_FIELDS, RANGES, RESERVED_FIELDS,
                                SUPPORTED_INPUT_FORMATS, effective)
from gancc.errors import SpecError

# Output width after padding: W <= 1080 on Ascend 310, the Atlas inference series (310P) and
# the Atlas training series (910); W <= 4096 on 310B, 910B (A2) and A3.
_NARROW_SOCS = re.compile(r"^Ascend(310|310P\d|910|910A|910B|910ProA|910ProB|910PremiumA)$")
_WIDE_SOCS = re.compile(r"^Ascend(310B\d?|910B\d.*|910_93\d\d)$")


def padding_width_limit(soc: str | None) -> int | None:
    if not soc:
        return None
    if _NARROW_SOCS.match(soc):
        return 1080
    if _WIDE_SOCS.match(soc):
        return 4096
    return None


def rbuv_jpeg_warning(fields: dict) -> str | None:
    """The pair the CycleGAN Gen-1 recipe shipped: NV21 swap with the JPEG YUV->RGB matrix."""
    if fields.get("input_format") != "YUV420SP_U8" or not effective(fields, "rbuv_swap_switch"):
        return None
    if not effective(fields, "csc_switch"):
        return None
    if presets.matrix_of(fields) != presets.PRESETS["yuv2rgb_jpeg"].matrix:
        return None
    return ("rbuv_swap_switch true with the JPEG YUV->RGB matrix: U and V are swapped before "
            "CSC, so colours are right only if the input is NV21 (V first). The Ascend docs "
            "pair this matrix with rbuv_swap_switch false for NV12, which DVPP decodes to; the "
            "CycleGAN ModelZoo recipe shipped this pair (on NV12 input its chroma comes out exchanged). "
            "Set rbuv_swap_switch false unless your decoder really writes NV21.")


class _Findings:
    """Where a complaint about one block points (the line that set the field, else the aipp
    block's line), and the warnings collected so far."""

    def __init__(self, block):
        self.block = block
        self.warnings: list[str] = []

    def span(self, *names):
        for n in names:
            if n in self.block.spans:
                return self.block.spans[n]
        return self.block.block_span

    def fail(self, message, names=(), hint=None):
        raise SpecError(message, self.span(*names), hint)

    def warn(self, message, names=()):
        where = self.span(*names)
        self.warnings.append(f"{where}: {message}" if where else message)


def check_block(block, model, soc: str | None) -> list[str]:
    """Raise SpecError on a rule ATC enforces; return warnings for suspicious settings."""
    findings = _Findings(block)
    _check_format_and_ranges(block, findings)
    _check_geometry(block, soc, findings)
    _check_channels(block, findings)
    _check_csc(block, findings)
    return findings.warnings


def _check_format_and_ranges(block, findings: _Findings) -> None:
    """A supported input_format, no reserved field, every value inside its documented range."""
    f = block.fields
    fail = findings.fail
    fmt = f.get("input_format")
    if fmt is None:
        fail(f"aipp {block.input} needs an input_format", (),
             "e.g. `input_format RGB888_U8` or `input_format YUV420SP_U8`")
    if fmt not in SUPPORTED_INPUT_FORMATS:
        fail(f"input_format {fmt} is not supported by AIPP on Ascend 310/310P/910",
             ("input_format",), f"use one of {', '.join(SUPPORTED_INPUT_FORMATS)}"
             if fmt in INPUT_FORMATS else None)
    for name in f:
        if name in RESERVED_FIELDS:
            fail(f"AIPP field '{name}' is reserved and not supported by ATC", (name,), "remove it")
    for name, (low, high) in RANGES.items():
        if name in f and not low <= f[name] <= high:
            fail(f"{name} is {f[name]}, outside its documented range [{low:g}, {high:g}]", (name,))
    if fmt == "YUV400_U8" and effective(f, "csc_switch"):
        fail("csc_switch with YUV400_U8 (gray input) makes no sense and ATC rejects it",
             ("csc_switch",), "remove the CSC settings")


def _source_size(fields: dict) -> tuple[int, int]:
    """src_image_size (h, w); 0 means unset."""
    return int(effective(fields, "src_image_size_h")), int(effective(fields, "src_image_size_w"))


def _check_geometry(block, soc: str | None, findings: _Findings) -> None:
    """src -> crop -> padding must end at the model's H/W, within the SoC's padded width."""
    f = block.fields
    padding = bool(effective(f, "padding"))
    _check_source_image(block, findings)
    out_w = _check_output_size(block, findings)
    limit = padding_width_limit(soc)
    if padding and limit and out_w > limit:
        findings.fail(f"with padding the AIPP output is {out_w} wide; {soc} allows at most {limit}",
                      ("padding",), "pad less, or crop first")
    if not padding and "padding_value" in f:
        findings.warn("padding_value is set but padding is off: it has no effect",
                      ("padding_value",))


def _check_source_image(block, findings: _Findings) -> None:
    """The source size is set when crop or padding needs it; YUV420SP windows are even."""
    f = block.fields
    src_h, src_w = _source_size(f)
    crop, padding = bool(effective(f, "crop")), bool(effective(f, "padding"))
    if (crop or padding) and (src_h == 0 or src_w == 0):
        findings.fail("src_image_size_w/h must be set when crop or padding is on",
                      ("crop", "padding"),
                      "write `image w=... h=...` (the size of the image fed to the model)")
    if f.get("input_format") == "YUV420SP_U8":
        for name in ("src_image_size_w", "src_image_size_h", "load_start_pos_w", "load_start_pos_h",
                     "crop_size_w", "crop_size_h"):
            if int(effective(f, name)) % 2:
                findings.fail(f"{name} is {f[name]}; YUV420SP_U8 needs even sizes and offsets",
                              (name,),
                              "chroma is subsampled 2x2, so windows start and end on even pixels")


def _check_output_size(block, findings: _Findings) -> int:
    """The padded crop (or source image) must be the model input's H x W; returns its width."""
    f = block.fields
    h, w = block.model_hw
    padding = bool(effective(f, "padding"))
    pads = [int(effective(f, f"{s}_padding_size")) if padding else 0
            for s in ("top", "bottom", "left", "right")]
    inner_h, inner_w, what = _padded_image(block, findings)
    out_h, out_w = inner_h + pads[0] + pads[1], inner_w + pads[2] + pads[3]
    if (out_h, out_w) != (h, w):
        pad_text = f" + padding {pads[0]}+{pads[1]} rows, {pads[2]}+{pads[3]} columns" if padding else ""
        findings.fail(f"AIPP produces {out_h}x{out_w} ({what}{pad_text}) but the model input "
                      f"'{block.input}' is {h}x{w}",
                      ("crop_size_w", "crop", "left_padding_size", "padding", "src_image_size_w"),
                      "crop/padding sizes must add up to the model's H and W (ATC E10052)")
    return out_w


def _padded_image(block, findings: _Findings) -> tuple[int, int, str]:
    """(H, W, description) of what padding surrounds: the crop window, checked to fit the
    source image, or else the source image (the model's size when unset)."""
    f = block.fields
    h, w = block.model_hw
    src_h, src_w = _source_size(f)
    padding = bool(effective(f, "padding"))
    if not effective(f, "crop"):
        return src_h or h, src_w or w, f"source image {src_h or h}x{src_w or w}"
    ly, lx = int(effective(f, "load_start_pos_h")), int(effective(f, "load_start_pos_w"))
    ch = int(effective(f, "crop_size_h")) or (h if not padding else 0)
    cw = int(effective(f, "crop_size_w")) or (w if not padding else 0)
    if ch == 0 or cw == 0:
        findings.fail("crop_size_w/h of 0 (use the model's size) is allowed only without padding",
                      ("crop_size_w", "crop"), "write the crop size")
    if ly + ch > src_h or lx + cw > src_w:
        findings.fail(f"the crop window {ch}x{cw} at (y={ly}, x={lx}) does not fit the "
                      f"{src_h}x{src_w} source image", ("crop_size_w", "load_start_pos_w", "crop"))
    return ch, cw, f"crop {ch}x{cw}"


def _check_channels(block, findings: _Findings) -> None:
    """The channels AIPP gives must match the model input's."""
    f = block.fields
    fmt = f.get("input_format")
    gray = effective(f, "csc_switch") and presets.matrix_of(f)[1] == (0, 0, 0) \
        and presets.matrix_of(f)[2] == (0, 0, 0)
    if fmt == "YUV400_U8" and block.channels != 1:
        findings.fail(f"YUV400_U8 gives 1 channel, but input '{block.input}' has {block.channels}",
                      ("input_format",))
    if fmt != "YUV400_U8" and block.channels not in (1, 3):
        findings.fail(f"AIPP gives 3 channels ({fmt}), but input '{block.input}' has "
                      f"{block.channels}", ("input_format",))
    if block.channels == 1 and fmt != "YUV400_U8" and not gray:
        findings.warn(f"input '{block.input}' has 1 channel: the model sees only channel 0 of the "
                      f"{fmt} conversion; a gray preset (rgb2gray/yuv2gray) is the usual choice",
                      ("input_format",))


def _check_csc(block, findings: _Findings) -> None:
    """CSC defaults, a partly written matrix, and the CycleGAN pair: warnings only."""
    f = block.fields
    fmt = f.get("input_format")
    if effective(f, "csc_switch") and not any(n.startswith("matrix_") for n in f):
        default = presets.default_csc(fmt)
        findings.warn(f"csc_switch is on without a matrix: ATC uses its default for {fmt}, "
                      f"{default.description}. Write `csc preset=...` to say which one you mean.",
                      ("csc_switch",))
    written = [n for n in MATRIX_FIELDS if n in f]
    if effective(f, "csc_switch") and 0 < len(written) < len(MATRIX_FIELDS):
        missing = [n for n in MATRIX_FIELDS if n not in f]
        findings.warn(f"only {len(written)} of the 9 CSC matrix entries are set; the others "
                      f"({', '.join(missing)}) are 0, not the default matrix's values. "
                      "Write all nine, or use `csc preset=...`", (written[0],))
    pair = rbuv_jpeg_warning(f)
    if pair:
        findings.warn(pair, ("rbuv_swap_switch",))


def check_atc_combination(blocks, model) -> None:
    """Rules between static AIPP and atc options (ATC's main_impl / insert_aipp_op_util)."""
    if not blocks:
        return
    atc = model.atc
    spans = atc.spans
    first = blocks[0]
    if getattr(atc, "dynamic_dims", None):
        raise SpecError("dynamic_dims cannot be combined with AIPP (ATC E10001)",
                        spans.get("dynamic_dims"), "drop one: static AIPP needs fixed dims")
    if getattr(atc, "dynamic_image_size", None):
        for b in blocks:
            for name in ("crop", "padding"):
                if effective(b.fields, name):
                    raise SpecError(f"with dynamic_image_size, AIPP {name} must be off (ATC E10052)",
                                    b.spans.get(name, b.block_span))
            for name in ("src_image_size_w", "src_image_size_h"):
                if effective(b.fields, name):
                    raise SpecError(f"with dynamic_image_size, {name} must be 0 (ATC E10052)",
                                    b.spans.get(name, b.block_span))
    fp16_nodes = getattr(atc, "input_fp16_nodes", ()) or ()
    for b in blocks:
        if b.input in fp16_nodes:
            raise SpecError(f"input_fp16_nodes names '{b.input}', which AIPP feeds (ATC E10034)",
                            spans.get("input_fp16_nodes"), "an AIPP input is uint8; drop it")
    if atc.input_format not in ("NCHW", "NHWC"):
        raise SpecError(f"with AIPP, atc input_format is NCHW or NHWC, not {atc.input_format}",
                        spans.get("input_format", first.block_span))
