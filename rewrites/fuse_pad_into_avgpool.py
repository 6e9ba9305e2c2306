"""Fuse a zero constant Pad into the `pads` of the AveragePools that read it, where exact.

Transformations:

    y = Pad(x, pads=[0, 0, t, l, 0, 0, b, r], mode="constant", value=0)
    z = AveragePool(y, pads=[t0, l0, b0, r0], count_include_pad=1)
        ->
    z = AveragePool(x, pads=[t0 + t, l0 + l, b0 + b, r0 + r], count_include_pad=1)

    y = Pad(x, pads=[0, 0, t, l, 0, 0, b, r], mode="constant", value=0)
    z = AveragePool(y, count_include_pad=0)                   (no pads of its own)
        ->
    z = AveragePool(x, pads=[t, l, b, r], count_include_pad=1)

Why these are exact: with count_include_pad=1 a window's divisor is the kernel size wherever
the window lies, and pool padding is zeros, so explicit zeros and pool padding give the same
sums over the same divisor. A count_include_pad=0 pool divides by the number of elements it
was given, explicit zeros included; without pads of its own that is always the kernel size,
which count_include_pad=1 reproduces once the zeros become pool padding. With pads of its
own, those are not counted and the fused ones would be, so border averages would change:
the rewrite declines. (onnxoptimizer's fuse_pad_into_pool once fused regardless, onnx/optimizer
#269, a known source of wrong outputs.)

Constraints (each is a reason the rewrite declines, shown by `gancc explain`):
- the Pad is constant mode with value 0, known non-negative pads, zero on the batch and
  channel axes, and no `axes` input;
- every reader is an AveragePool reading it as its input, with count_include_pad=1 or
  no pads of its own, auto_pad NOTSET, ceil_mode 0 (a ceil-mode window can run past all
  padding, where the divisor rules differ) and no dilations other than 1;
- each fused pad stays smaller than the kernel along its axis (onnxruntime refuses a pool
  whose pads reach the kernel size);
- the Pad's output is not a graph output.
"""

from __future__ import annotations

import onnx

from gancc.graph import Graph
from gancc.graph.ops import zero_spatial_pad
from gancc.passes.base import Rewrite
from gancc.passes.registry import rewrite


@rewrite("fuse-pad-into-avgpool")
class FusePadIntoAvgPool(Rewrite):
    anchor = "Pad"

    def match(self, graph: Graph, node: onnx.NodeProto):
        checked = zero_spatial_pad(graph, node, into="pool")
        if isinstance(checked, str):
            return self.decline(checked)
        begins, ends = checked
        rank = len(begins)
        readers = graph.consumers(node.output[0])
        spatial = rank - 2
        fused = []
        for pool in readers:
            if pool.op_type != "AveragePool":
                return self.decline(f"reader '{pool.name}' is {pool.op_type}, not AveragePool")
            if graph.attr(pool, "count_include_pad", 0) != 1 and any(
                    graph.attr(pool, "pads", [0] * (2 * spatial))):
                return self.decline(f"reader '{pool.name}' has count_include_pad=0 and pads of "
                                    "its own: border averages would change")
            if graph.attr(pool, "auto_pad", "NOTSET") != "NOTSET":
                return self.decline(f"reader '{pool.name}' uses auto_pad")
            if graph.attr(pool, "ceil_mode", 0) != 0:
                return self.decline(f"reader '{pool.name}' has ceil_mode=1")
            if any(d != 1 for d in graph.attr(pool, "dilations", [1] * spatial)):
                return self.decline(f"reader '{pool.name}' has dilations")
            kernel = list(graph.attr(pool, "kernel_shape"))
            old = list(graph.attr(pool, "pads", [0] * (2 * spatial)))
            new = [old[i] + begins[2 + i] for i in range(spatial)] + \
                  [old[spatial + i] + ends[2 + i] for i in range(spatial)]
            if any(p >= kernel[i % spatial] for i, p in enumerate(new)):
                return self.decline(f"fused pads {new} of reader '{pool.name}' reach its "
                                    f"kernel {kernel}")
            fused.append((pool, new))
        return fused

    def apply(self, graph: Graph, node: onnx.NodeProto, fused) -> None:
        for pool, pads in fused:
            graph.set_attr(pool, "pads", pads)
            # no own pads (checked in match): every divisor was the kernel size; keep it so
            graph.set_attr(pool, "count_include_pad", 1)
            graph.set_input(pool, 0, node.input[0])
        graph.remove_node(node)
