"""The numpy AIPP emulator against hand-computed values (Ascend AIPP docs: swap -> crop ->
CSC -> fp16 normalisation -> padding) and the float pre-processing it stands in for."""

from __future__ import annotations

import numpy as np
import pytest

from gancc.aipp import emulate, presets
from gancc.aipp.emulate import emulate as run, float_preprocess, fp16_rounding


@pytest.mark.parametrize("value, rounded", [
    (1 / 255, 0.0039215087890625), (1 / 127.5, 0.007843017578125),
    (0.0171247538316637, 0.017120361328125), (123.675, 123.6875), (127.5, 127.5)])
def test_fp16_constants_match_the_documented_values(value, rounded):
    assert fp16_rounding(value)[0] == rounded


def rgb_block(**extra):
    return {"input_format": "RGB888_U8", "min_chn_0": 127.5, "min_chn_1": 127.5,
            "min_chn_2": 127.5, "var_reci_chn_0": 1 / 127.5, "var_reci_chn_1": 1 / 127.5,
            "var_reci_chn_2": 1 / 127.5, **extra}


def test_rgb_normalisation_is_computed_in_fp16():
    img = np.array([[[[0, 255, 200]]]], dtype=np.uint8)            # N=1, H=W=1, RGB
    out = run(rgb_block(), img)
    assert out.dtype == np.float16 and out.shape == (1, 3, 1, 1)
    var = np.float16(0.007843017578125)
    # (0 - 127.5) * var, (255 - 127.5) * var, (200 - 127.5) * var, each step in fp16
    expected = [np.float16(np.float16(-127.5) * var), np.float16(np.float16(127.5) * var),
                np.float16(np.float16(72.5) * var)]
    assert out[0, :, 0, 0].tolist() == [float(e) for e in expected]
    assert float(out[0, 0, 0, 0]) == -1.0     # -0.99998 in float64, rounded by the fp16 multiply


def test_rbuv_swap_reverses_packed_bgr_then_crop_then_padding():
    img = np.zeros((1, 4, 6, 3), dtype=np.uint8)
    img[0, 1, 2] = (10, 20, 30)                                     # B, G, R at (y=1, x=2)
    block = {"input_format": "RGB888_U8", "rbuv_swap_switch": True, "crop": True,
             "load_start_pos_w": 2, "load_start_pos_h": 1, "crop_size_w": 2, "crop_size_h": 2,
             "padding": True, "top_padding_size": 1, "left_padding_size": 0,
             "right_padding_size": 1, "bottom_padding_size": 0, "padding_value": -7.0}
    out = run(block, img)
    assert out.shape == (1, 3, 3, 3)
    assert out[0, :, 1, 0].tolist() == [30.0, 20.0, 10.0]           # RGB after the swap
    assert (out[0, :, 0, :] == -7).all() and (out[0, :, :, 2] == -7).all()   # padding rows/cols


def test_xrgb_ax_swap_drops_the_leading_byte():
    img = np.array([[[[99, 1, 2, 3]]]], dtype=np.uint8)
    assert run({"input_format": "XRGB8888_U8", "ax_swap_switch": True}, img)[0, :, 0, 0].tolist() \
        == [1, 2, 3]
    assert run({"input_format": "XRGB8888_U8"}, img)[0, :, 0, 0].tolist() == [99, 1, 2]


def nv12(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    h, w = y.shape
    uv = np.empty((h // 2, w), dtype=np.uint8)
    uv[:, 0::2], uv[:, 1::2] = u, v
    return np.concatenate([y, uv])[None]


def test_yuv420sp_csc_floor_and_round_rules():
    # one 2x2 block: Y=100, U=90, V=200 through the JPEG YUV->RGB matrix
    img = nv12(np.full((2, 2), 100, np.uint8), np.full((1, 1), 90, np.uint8),
               np.full((1, 1), 200, np.uint8))
    block = {"input_format": "YUV420SP_U8", **presets.PRESETS["yuv2rgb_jpeg"].fields()}
    t = np.array([100, 90 - 128, 200 - 128])
    s = np.array([[256, 0, 359], [256, -88, -183], [256, 454, 0]]) @ t   # [51448, 15768, 8348]
    floor = np.clip(s >> 8, 0, 255)
    assert run(block, img, csc_rounding="floor")[0, :, 0, 0].tolist() == floor.tolist()
    rounded = np.clip(np.floor((2 * s + 1) / 512 + 0.5), 0, 255)
    assert run(block, img, csc_rounding="round")[0, :, 0, 0].tolist() == rounded.tolist()
    assert floor.tolist() != rounded.tolist()       # 51448/256 = 200.97: the rules differ here


def test_yuv420sp_chroma_comes_from_the_cropped_2x2_block_and_nv21_swap():
    y = np.arange(16, dtype=np.uint8).reshape(4, 4)
    u = np.array([[10, 11], [12, 13]], np.uint8)
    v = np.array([[20, 21], [22, 23]], np.uint8)
    block = {"input_format": "YUV420SP_U8", "crop": True, "load_start_pos_w": 2,
             "load_start_pos_h": 2, "crop_size_w": 2, "crop_size_h": 2}
    out = run(block, nv12(y, u, v))                  # no CSC: YUV444 out
    assert out[0, 0].tolist() == [[10, 11], [14, 15]]
    assert (out[0, 1] == 13).all() and (out[0, 2] == 23).all()
    swapped = run({**block, "rbuv_swap_switch": True}, nv12(y, v, u))   # NV21 bytes, V first
    np.testing.assert_array_equal(swapped, out)


def test_cyclegan_recipe_config_emulation_is_close_to_float_preprocessing():
    block = {"input_format": "YUV420SP_U8", "csc_switch": True, "rbuv_swap_switch": True,
             "src_image_size_w": 512, "src_image_size_h": 512, "crop": True,
             "load_start_pos_h": 16, "load_start_pos_w": 16, "crop_size_w": 256,
             "crop_size_h": 256, **{f"min_chn_{i}": 127.5 for i in range(3)},
             **{f"var_reci_chn_{i}": 0.007843137254901 for i in range(3)},
             **{k: v for k, v in presets.PRESETS["yuv2rgb_jpeg"].fields().items()}}
    images = emulate.make_images(block, 2, (256, 256), seed=3)
    assert images.shape == (2, 768, 512) and images.dtype == np.uint8
    half = run(block, images)
    exact = float_preprocess(block, images)
    assert half.shape == exact.shape == (2, 3, 256, 256)
    diff = np.abs(half.astype(np.float64) - exact)
    # floor of the CSC costs up to 1 LSB (1/127.5), fp16 a few 1e-3 more
    assert diff.max() < 1 / 127.5 + 4e-3 and diff.mean() < 4e-3
    assert abs(float(half.min())) <= 1.0 and float(half.max()) <= 1.0


def test_emulator_rejects_a_crop_outside_the_image():
    with pytest.raises(ValueError, match="leaves"):
        run({"input_format": "RGB888_U8", "crop": True, "load_start_pos_w": 3,
             "crop_size_w": 2, "crop_size_h": 1}, np.zeros((1, 1, 4, 3), np.uint8))
