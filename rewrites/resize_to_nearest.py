"""Switch linear and cubic Resize to nearest-neighbour (lossy), which ATC maps to its NN op.

Transformations:

    Resize(x, roi, scales, mode="linear")  ->  Resize(x, roi, scales, mode="nearest",
                                                      nearest_mode=<nearest_mode>)
    Resize(x, roi, scales, mode="cubic")   ->  the same; cubic_coeff_a and exclude_outside,
                                               which nearest does not use, are dropped
    Resize(..., mode="linear", antialias=1) ->  nearest without antialias (opset 18: nearest
                                               does not antialias, and onnxruntime refuses it)

Options: `coordinate_transformation_mode` (default "": keep the node's own) and
`nearest_mode` (default "floor", ONNX's default for nearest).

Constraints (each is a reason the rewrite declines, shown by `gancc explain`):
- only Resize nodes whose mode is linear or cubic; a nearest Resize is left alone;
- the inputs (roi, scales, sizes) are not touched, so output shapes do not change.

This changes the numbers: each output pixel copies one input pixel instead of blending its
neighbours, so upsampled feature maps turn blocky. ATC ignores `nearest_mode` and reads only
whether coordinate_transformation_mode is align_corners or a half-pixel mode (Ascend's Resize
parser), so onnxruntime's figures for this graph may differ from the device's in where the
nearest pixel is picked. The build report shows the cost next to the unmodified export.
"""

from __future__ import annotations

import onnx

from gancc.graph import Graph
from gancc.passes.base import Rewrite
from gancc.passes.registry import rewrite

_TRANSFORMS = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
               "tf_half_pixel_for_nearest", "tf_crop_and_resize", "half_pixel_symmetric")
_NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


@rewrite("resize-to-nearest")
class ResizeToNearest(Rewrite):
    anchor = "Resize"
    exact = False
    coordinate_transformation_mode: str = ""
    nearest_mode: str = "floor"

    def __post_init__(self) -> None:
        if self.coordinate_transformation_mode not in ("",) + _TRANSFORMS:
            raise ValueError("coordinate_transformation_mode must be one of "
                             f"{', '.join(_TRANSFORMS)} (or empty to keep each node's)")
        if self.nearest_mode not in _NEAREST:
            raise ValueError(f"nearest_mode must be one of {', '.join(_NEAREST)}")

    def match(self, graph: Graph, node: onnx.NodeProto):
        mode = graph.attr(node, "mode", "nearest")
        if mode not in ("linear", "cubic"):
            return self.decline(f"mode is already '{mode}'" if mode == "nearest"
                                else f"mode is '{mode}', not linear or cubic")
        return mode

    def apply(self, graph: Graph, node: onnx.NodeProto, mode) -> None:
        graph.set_attr(node, "mode", "nearest")
        graph.set_attr(node, "nearest_mode", self.nearest_mode)
        if self.coordinate_transformation_mode:
            graph.set_attr(node, "coordinate_transformation_mode",
                           self.coordinate_transformation_mode)
        # antialias (opset 18) applies to linear and cubic only: onnxruntime refuses a
        # nearest Resize that keeps antialias=1
        for unused in ("cubic_coeff_a", "exclude_outside", "antialias"):
            graph.remove_attr(node, unused)
