"""Fuse a zero constant Pad into the `pads` of the Conv nodes that read it (exact).

Transformation:

    y = Pad(x, pads=[0, 0, t, l, 0, 0, b, r], mode="constant", value=0)
    z = Conv(y, W, B, pads=[t0, l0, b0, r0])
        ->
    z = Conv(x, W, B, pads=[t0 + t, l0 + l, b0 + b, r0 + r])

Constraints (each is a reason the rewrite declines, shown by `gancc explain`):
- the Pad is constant mode with value 0 (zero padding is what Conv's own padding adds);
- its pads are known constants, non-negative, and zero on the batch and channel axes;
- it has no `axes` input (opset 18), so its pads cover every axis;
- every reader of the Pad's output is a Conv reading it as its data input, with
  auto_pad NOTSET (explicit pads); ConvTranspose pads mean something else and never fuse;
- the Pad's output is not a graph output;
- no resulting Conv pad exceeds `max_pad` (ATC's Conv accepts pads up to 255 per side).

When several Convs read the same Pad, all of them are updated and the Pad is removed.
"""

from __future__ import annotations

import onnx

from gancc.graph import Graph
from gancc.graph.ops import zero_spatial_pad
from gancc.passes.base import Rewrite
from gancc.passes.registry import rewrite


@rewrite("fuse-pad-into-conv")
class FusePadIntoConv(Rewrite):
    anchor = "Pad"
    max_pad: int = 255

    def __post_init__(self) -> None:
        # a negative bound would decline every Pad without saying the option is the reason
        if not 0 <= self.max_pad <= 255:
            raise ValueError(f"option 'max_pad' is {self.max_pad}: it must be from 0 to 255 "
                             "(ATC's Conv takes pads up to 255 per side)")

    def match(self, graph: Graph, node: onnx.NodeProto):
        checked = zero_spatial_pad(graph, node, into="Conv")
        if isinstance(checked, str):
            return self.decline(checked)
        begins, ends = checked
        rank = len(begins)
        readers = graph.consumers(node.output[0])
        for conv in readers:
            if conv.op_type != "Conv":
                return self.decline(f"reader '{conv.name}' is {conv.op_type}, not Conv")
            if list(conv.input).index(node.output[0]) != 0 or list(conv.input).count(node.output[0]) > 1:
                return self.decline(f"reader '{conv.name}' reads the Pad as a weight, not as data")
            if graph.attr(conv, "auto_pad", "NOTSET") != "NOTSET":
                return self.decline(f"reader '{conv.name}' uses auto_pad")
        spatial = rank - 2
        fused = []
        for conv in readers:
            old = list(graph.attr(conv, "pads", [0] * (2 * spatial)))
            new = [old[i] + begins[2 + i] for i in range(spatial)] + \
                  [old[spatial + i] + ends[2 + i] for i in range(spatial)]
            if max(new) > self.max_pad:
                return self.decline(f"fused pads {new} exceed max_pad={self.max_pad}")
            fused.append((conv, new))
        return fused

    def apply(self, graph: Graph, node: onnx.NodeProto, fused) -> None:
        for conv, pads in fused:
            graph.set_attr(conv, "pads", pads)
            graph.set_input(conv, 0, node.input[0])
        graph.remove_node(node)
