"""A numpy emulator of static AIPP, and the float pre-processing it stands in for.

`emulate` follows the hardware's fixed order: channel swap -> crop -> CSC -> normalisation
("DTC", in float16 as the hardware computes it) -> padding, from uint8 input laid out as the
.om expects it:

    RGB888_U8    (N, H, W, 3) packed RGB (BGR with rbuv_swap_switch)
    XRGB8888_U8  (N, H, W, 4) packed 4 bytes per pixel (ax_swap_switch: X first)
    YUV400_U8    (N, H, W)    gray plane
    YUV420SP_U8  (N, H*3/2, W) NV12 bytes: the Y plane, then interleaved U,V rows
                              (NV21, V first, with rbuv_swap_switch)

and returns the float16 NCHW tensor the model's first layer sees. CSC rounds as the docs
write it (`>> 8`, floor) or as the open arch35 kernel does (round half away from zero of
(2S+1)/512); which one the 310/310P/910 hardware uses is undocumented, so both are offered.

`float_preprocess` is the float pipeline a CPU user would write for the same image: the
same swap, crop and chroma upsampling, CSC in exact arithmetic (S/256, clipped), and
normalisation in float64 with the configured (not fp16-rounded) constants. Comparing the
model on the two shows what AIPP's integer CSC and fp16 normalisation cost.
"""

from __future__ import annotations

import numpy as np

from gancc.aipp import presets
from gancc.aipp.message import effective

CSC_ROUNDING = ("floor", "round")


def source_size(fields: dict, model_hw: tuple[int, int]) -> tuple[int, int]:
    """(H, W) of the image fed to AIPP: src_image_size, or the model's H/W when 0."""
    h = int(effective(fields, "src_image_size_h")) or model_hw[0]
    w = int(effective(fields, "src_image_size_w")) or model_hw[1]
    return h, w


def make_images(fields: dict, n: int, model_hw: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Seeded uint8 test images in the layout the AIPP input format expects."""
    h, w = source_size(fields, model_hw)
    rng = np.random.default_rng(seed)
    fmt = fields["input_format"]
    if fmt == "YUV420SP_U8":
        return rng.integers(0, 256, (n, h * 3 // 2, w), dtype=np.uint8)
    if fmt == "YUV400_U8":
        return rng.integers(0, 256, (n, h, w), dtype=np.uint8)
    channels = 4 if fmt == "XRGB8888_U8" else 3
    return rng.integers(0, 256, (n, h, w, channels), dtype=np.uint8)


def _swapped_cropped(fields: dict, images: np.ndarray) -> np.ndarray:
    """Steps 1-2: channel swap and crop, as int32 (N, h, w, C) pixels (YUV444 for NV12)."""
    fmt = fields["input_format"]
    rbuv = bool(effective(fields, "rbuv_swap_switch"))
    x = np.asarray(images)
    if x.dtype != np.uint8:
        raise ValueError(f"AIPP input is uint8, got {x.dtype}")
    if fmt == "YUV420SP_U8":
        src_h = x.shape[1] * 2 // 3
    else:
        src_h = x.shape[1]
    src_w = x.shape[2]
    if effective(fields, "crop"):
        ly, lx = int(effective(fields, "load_start_pos_h")), int(effective(fields, "load_start_pos_w"))
        ch = int(effective(fields, "crop_size_h")) or src_h
        cw = int(effective(fields, "crop_size_w")) or src_w
    else:
        ly, lx, ch, cw = 0, 0, src_h, src_w
    if ly + ch > src_h or lx + cw > src_w:
        raise ValueError(f"crop {ch}x{cw} at ({ly},{lx}) leaves the {src_h}x{src_w} image")
    if fmt == "YUV420SP_U8":
        y_plane = x[:, :src_h, :].astype(np.int32)
        uv = x[:, src_h:, :].astype(np.int32)
        if rbuv:   # NV21: V first; swap each byte pair back to U,V
            uv = uv.reshape(uv.shape[0], uv.shape[1], -1, 2)[..., ::-1].reshape(uv.shape)
        rows = (ly + (np.arange(ch) & ~1)) >> 1
        cols = lx + (np.arange(cw) & ~1)
        u = uv[:, rows][:, :, cols]
        v = uv[:, rows][:, :, cols + 1]
        yy = y_plane[:, ly:ly + ch, lx:lx + cw]
        return np.stack([yy, u, v], axis=-1)
    if fmt == "YUV400_U8":
        plane = x if x.ndim == 3 else x[..., 0]
        return plane[:, ly:ly + ch, lx:lx + cw, None].astype(np.int32)
    if fmt == "XRGB8888_U8":
        x = x[..., 1:] if effective(fields, "ax_swap_switch") else x[..., :3]
    if rbuv:
        x = x[..., ::-1]
    return x[:, ly:ly + ch, lx:lx + cw, :].astype(np.int32)


def _csc_int(fields: dict, pixels: np.ndarray, rounding: str) -> np.ndarray:
    fmt = fields["input_format"]
    m = np.asarray(presets.matrix_of(fields), dtype=np.int64)
    t = pixels.astype(np.int64)
    yuv = fmt in ("YUV420SP_U8", "YUV400_U8")
    if yuv:
        t = t - np.asarray(presets.bias_of(fields, "input"), dtype=np.int64)
    s = np.einsum("ij,nhwj->nhwi", m, t)
    if rounding == "floor":
        v = s >> 8                                     # arithmetic shift: floor of S/256
    elif rounding == "round":
        q = (2 * s + 1) / 512.0
        v = (np.sign(q) * np.floor(np.abs(q) + 0.5)).astype(np.int64)   # C roundf
    else:
        raise ValueError(f"csc rounding is one of {CSC_ROUNDING}")
    if not yuv:
        v = v + np.asarray(presets.bias_of(fields, "output"), dtype=np.int64)
    return np.clip(v, 0, 255).astype(np.int32)


def _csc_float(fields: dict, pixels: np.ndarray) -> np.ndarray:
    fmt = fields["input_format"]
    m = np.asarray(presets.matrix_of(fields), dtype=np.float64)
    t = pixels.astype(np.float64)
    yuv = fmt in ("YUV420SP_U8", "YUV400_U8")
    if yuv:
        t = t - np.asarray(presets.bias_of(fields, "input"), dtype=np.float64)
    v = np.einsum("ij,nhwj->nhwi", m, t) / 256.0
    if not yuv:
        v = v + np.asarray(presets.bias_of(fields, "output"), dtype=np.float64)
    return np.clip(v, 0.0, 255.0)


def _pads(fields: dict) -> tuple[int, int, int, int]:
    if not effective(fields, "padding"):
        return 0, 0, 0, 0
    return tuple(int(effective(fields, f"{s}_padding_size"))   # type: ignore[return-value]
                 for s in ("top", "bottom", "left", "right"))


def emulate(fields: dict, images: np.ndarray, channels: int = 3,
            csc_rounding: str = "floor") -> np.ndarray:
    """uint8 images -> the float16 NCHW tensor AIPP hands the model (`channels` channels)."""
    pixels = _swapped_cropped(fields, images)
    if effective(fields, "csc_switch"):
        pixels = _csc_int(fields, pixels, csc_rounding)
    c = min(channels, pixels.shape[-1])
    f16 = np.float16
    out = np.empty(pixels.shape[:3] + (c,), dtype=f16)
    for i in range(c):
        mean = int(effective(fields, f"mean_chn_{i}"))
        a = (pixels[..., i] - mean).astype(f16)
        b = (a - to_fp16(effective(fields, f"min_chn_{i}"))).astype(f16)
        out[..., i] = (b * to_fp16(effective(fields, f"var_reci_chn_{i}"))).astype(f16)
    top, bottom, left, right = _pads(fields)
    if top or bottom or left or right:
        out = np.pad(out, ((0, 0), (top, bottom), (left, right), (0, 0)),
                     constant_values=f16(effective(fields, "padding_value")))
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def float_preprocess(fields: dict, images: np.ndarray, channels: int = 3) -> np.ndarray:
    """The same image through exact float pre-processing: float32 NCHW."""
    pixels = _swapped_cropped(fields, images).astype(np.float64)
    if effective(fields, "csc_switch"):
        pixels = _csc_float(fields, pixels)
    c = min(channels, pixels.shape[-1])
    out = np.empty(pixels.shape[:3] + (c,), dtype=np.float64)
    for i in range(c):
        out[..., i] = (pixels[..., i] - float(effective(fields, f"mean_chn_{i}"))
                       - float(effective(fields, f"min_chn_{i}"))) \
            * float(effective(fields, f"var_reci_chn_{i}"))
    top, bottom, left, right = _pads(fields)
    if top or bottom or left or right:
        out = np.pad(out, ((0, 0), (top, bottom), (left, right), (0, 0)),
                     constant_values=float(effective(fields, "padding_value")))
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2)).astype(np.float32)


def to_fp16(value: float) -> np.float16:
    """A config number as the hardware holds it: parsed into the proto's float32, then
    stored as an IEEE float16 register value."""
    return np.float16(np.float32(value))


def fp16_rounding(value: float) -> tuple[float, float]:
    """The float16 value the hardware stores for `value`, and the relative error."""
    rounded = float(to_fp16(value))
    rel = abs(rounded - value) / abs(value) if value else 0.0
    return rounded, rel
