"""Write ConvTranspose's `kernel_shape` from its weight (exact).

Transformation:

    ConvTranspose(x, W[C_in, C_out/g, k_h, k_w])               (no kernel_shape attribute)
        ->
    ConvTranspose(x, W, kernel_shape=[k_h, k_w])

ONNX lets kernel_shape be inferred from the weight, but ATC's ConvTranspose plugin requires
the attribute ("attr kernel_shape must have value"); `gancc lint` reports the node and names
this rewrite. The value is the weight's spatial dims, so the numbers do not change.

Constraints:
- the node has no kernel_shape yet;
- the weight is a constant (an initializer) of rank 3 or more.
"""

from __future__ import annotations

import onnx

from gancc.graph import Graph
from gancc.passes.base import Rewrite
from gancc.passes.registry import rewrite


@rewrite("conv-transpose-kernel-shape")
class ConvTransposeKernelShape(Rewrite):
    anchor = "ConvTranspose"

    def match(self, graph: Graph, node: onnx.NodeProto):
        if graph.attr(node, "kernel_shape"):
            return self.decline("kernel_shape is already set")
        weight = graph.const_value(node.input[1]) if len(node.input) > 1 else None
        if weight is None:
            return self.decline("the weight is computed at run time, not a constant")
        if weight.ndim < 3:
            return self.decline(f"the weight has rank {weight.ndim}, not 3 or more")
        return [int(d) for d in weight.shape[2:]]

    def apply(self, graph: Graph, node: onnx.NodeProto, kernel_shape) -> None:
        graph.set_attr(node, "kernel_shape", kernel_shape)
