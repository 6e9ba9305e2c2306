"""Replace reflect padding by constant padding (lossy): the edit older ATC releases needed.

Transformations:

    Pad(x, pads, mode="reflect")  ->  Pad(x, pads, mode="constant")          value=0 (default)
    Pad(x, pads, mode="reflect")  ->  Pad(x, pads, value_const, mode="constant")   value!=0

Constraints:
- only `Pad` nodes are touched: no other op's `mode` attribute (Resize, Upsample) is read or
  changed, unlike the CycleGAN recipe's script, which rewrote every `mode` in the graph;
- only `mode="reflect"` matches (`edge` and `constant` pads are left alone);
- opset 2-10 graphs (pads as attributes) and opset >= 11 graphs (pads as inputs) both work;
- a non-zero `value` at opset >= 11 becomes an initializer of the padded tensor's dtype
  (float16 in an fp16 graph), so that tensor's dtype must be declared (graph input or
  value_info, as after shape inference); otherwise the Pad is declined.

This changes the numbers: the border band of each padded feature map sees zeros instead of
mirrored pixels. On CycleGAN's ResnetGenerator the result equals exporting the same weights
with ZeroPad2d, and the error concentrates in an ~8 pixel border. The build report shows the
cost next to the unmodified export.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper

from gancc.graph import Graph
from gancc.passes.base import Rewrite
from gancc.passes.registry import rewrite


@rewrite("reflect-pad-to-constant")
class ReflectPadToConstant(Rewrite):
    anchor = "Pad"
    exact = False
    value: float = 0.0

    def __post_init__(self) -> None:
        # 1e309 reads as inf: a Pad that fills borders with inf (or nan) poisons every output
        if not math.isfinite(self.value):
            raise ValueError(f"option 'value' is {self.value}: the pad value must be a finite "
                             "number")

    def match(self, graph: Graph, node: onnx.NodeProto):
        """{"value_dtype": the numpy dtype of the constant_value input to write, or None}"""
        mode = graph.attr(node, "mode", "constant")
        if mode != "reflect":
            return self.decline(f"mode is '{mode}', not 'reflect'")
        if self.value != 0.0 and graph.attr(node, "pads") is None:
            dtype = graph.elem_type(node.input[0])
            if dtype is None:
                return self.decline(f"the dtype of '{node.input[0]}' is not declared, and a "
                                    "constant_value input must have it: run shape inference")
            return {"value_dtype": helper.tensor_dtype_to_np_dtype(dtype)}
        return {"value_dtype": None}

    def apply(self, graph: Graph, node: onnx.NodeProto, match) -> None:
        graph.set_attr(node, "mode", "constant")
        # A reflect Pad may carry a constant value (ignored in reflect mode); it must not
        # leak into the constant Pad: an existing one is replaced by `value` (dropped for 0).
        if graph.attr(node, "pads") is not None:       # opset < 11: value is an attribute
            if self.value != 0.0 or graph.attr(node, "value") is not None:
                graph.set_attr(node, "value", self.value)
        elif self.value == 0.0:
            if len(node.input) > 2 and node.input[2]:
                graph.set_input(node, 2, "")           # constant mode pads with 0 by default
        else:
            const = graph.add_initializer(np.array(self.value, dtype=match["value_dtype"]),
                                          f"{node.name}_value")
            while len(node.input) < 3:
                node.input.append("")
            graph.set_input(node, 2, const)
