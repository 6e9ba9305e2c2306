"""Named colour-space-conversion (CSC) presets: the matrices and biases of the Ascend AIPP
docs' CSC table (YUV->RGB/BGR, RGB->YUV/YVU, gray), and the defaults ATC fills in.

Output channel i is matrix row i. YUV inputs use `input_bias_*` (subtracted before the
matrix); RGB inputs use `output_bias_*` (added after it). `csc preset=NAME` in a spec
writes `csc_switch true`, all nine matrix entries and the three matching biases.
"""

from __future__ import annotations

from dataclasses import dataclass

Matrix = tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int, int]]


@dataclass(frozen=True)
class CscPreset:
    name: str
    matrix: Matrix
    bias: tuple[int, int, int]
    bias_kind: str            # "input" (YUV inputs) or "output" (RGB inputs)
    source: str               # "yuv" or "rgb": the input formats it applies to
    description: str

    def fields(self) -> dict[str, object]:
        out: dict[str, object] = {"csc_switch": True}
        for r in range(3):
            for c in range(3):
                out[f"matrix_r{r}c{c}"] = self.matrix[r][c]
        for i in range(3):
            out[f"{self.bias_kind}_bias_{i}"] = self.bias[i]
        return out


_YUV2RGB: dict[str, tuple[Matrix, tuple[int, int, int]]] = {
    "jpeg": (((256, 0, 359), (256, -88, -183), (256, 454, 0)), (0, 128, 128)),
    "bt601_narrow": (((298, 0, 409), (298, -100, -208), (298, 516, 0)), (16, 128, 128)),
    "bt601_wide": (((256, 0, 359), (256, -88, -183), (256, 454, 0)), (0, 128, 128)),
    "bt709_narrow": (((298, 0, 459), (298, -55, -136), (298, 541, 0)), (16, 128, 128)),
    "bt709_wide": (((256, 0, 403), (256, -48, -120), (256, 475, 0)), (0, 128, 128)),
}
_RGB2YUV: dict[str, tuple[Matrix, tuple[int, int, int]]] = {
    "jpeg": (((77, 150, 29), (-43, -85, 128), (128, -107, -21)), (0, 128, 128)),
    "bt601_narrow": (((66, 129, 25), (-38, -74, 112), (112, -94, -18)), (16, 128, 128)),
    "bt601_wide": (((77, 150, 29), (-43, -85, 128), (128, -107, -21)), (0, 128, 128)),
    "bt709_narrow": (((47, 157, 16), (-26, -87, 112), (112, -102, -10)), (16, 128, 128)),
    "bt709_wide": (((55, 183, 19), (-29, -99, 128), (128, -116, -12)), (0, 128, 128)),
}
_STANDARD_WORDS = {"jpeg": "JPEG (full range)", "bt601_narrow": "BT.601 narrow range",
                   "bt601_wide": "BT.601 wide (full) range", "bt709_narrow": "BT.709 narrow range",
                   "bt709_wide": "BT.709 wide (full) range"}


def _build() -> dict[str, CscPreset]:
    presets: dict[str, CscPreset] = {}
    for std, (m, bias) in _YUV2RGB.items():
        words = _STANDARD_WORDS[std]
        presets[f"yuv2rgb_{std}"] = CscPreset(f"yuv2rgb_{std}", m, bias, "input", "yuv",
                                              f"YUV -> RGB, {words}")
        presets[f"yuv2bgr_{std}"] = CscPreset(f"yuv2bgr_{std}", (m[2], m[1], m[0]), bias, "input",
                                              "yuv", f"YUV -> BGR, {words}")
    for std, (m, bias) in _RGB2YUV.items():
        words = _STANDARD_WORDS[std]
        presets[f"rgb2yuv_{std}"] = CscPreset(f"rgb2yuv_{std}", m, bias, "output", "rgb",
                                              f"RGB -> YUV444, {words}")
        presets[f"rgb2yvu_{std}"] = CscPreset(f"rgb2yvu_{std}", (m[0], m[2], m[1]), bias, "output",
                                              "rgb", f"RGB -> YVU444, {words}")
    presets["rgb2gray"] = CscPreset("rgb2gray", ((76, 150, 30), (0, 0, 0), (0, 0, 0)), (0, 0, 0),
                                    "output", "rgb", "RGB -> gray (channel 0)")
    presets["yuv2gray"] = CscPreset("yuv2gray", ((256, 0, 0), (0, 0, 0), (0, 0, 0)), (0, 0, 0),
                                    "input", "yuv", "YUV -> gray (channel 0)")
    return presets


PRESETS: dict[str, CscPreset] = _build()

# ATC's defaults when csc_switch is true and no matrix is written (GE SetCscDefaultValue):
# YUV420SP -> BGR BT.601 narrow (note: BGR, not RGB); every other format RGB -> YUV BT.601 narrow.
DEFAULT_FOR_YUV420SP = PRESETS["yuv2bgr_bt601_narrow"]
DEFAULT_OTHER = PRESETS["rgb2yuv_bt601_narrow"]


def default_csc(input_format: str) -> CscPreset:
    return DEFAULT_FOR_YUV420SP if input_format == "YUV420SP_U8" else DEFAULT_OTHER


def matrix_of(fields: dict) -> Matrix:
    """The matrix ATC uses: the fields set, the format's default for entries not set
    (GE fills the whole default matrix only when no entry is set)."""
    from gancc.aipp.message import MATRIX_FIELDS

    if not any(name in fields for name in MATRIX_FIELDS):
        return default_csc(fields.get("input_format", "")).matrix
    flat = [int(fields.get(name, 0)) for name in MATRIX_FIELDS]
    return (tuple(flat[0:3]), tuple(flat[3:6]), tuple(flat[6:9]))  # type: ignore[return-value]


def bias_of(fields: dict, kind: str) -> tuple[int, int, int]:
    from gancc.aipp.message import DEFAULTS

    return tuple(int(fields.get(f"{kind}_bias_{i}", DEFAULTS[f"{kind}_bias_{i}"]))
                 for i in range(3))  # type: ignore[return-value]


def recognise(fields: dict) -> CscPreset | None:
    """The preset whose matrix and (matching) biases these fields spell out, if any."""
    from gancc.aipp.message import MATRIX_FIELDS

    if not all(name in fields for name in MATRIX_FIELDS):
        return None
    m = matrix_of(fields)
    yuv = fields.get("input_format") in ("YUV420SP_U8", "YUV400_U8")
    for preset in PRESETS.values():
        if preset.matrix != m or (preset.source == "yuv") != yuv:
            continue
        if all(fields.get(f"{preset.bias_kind}_bias_{i}") == preset.bias[i] for i in range(3)):
            return preset
    return None
