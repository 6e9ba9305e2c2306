"""Lower reflect padding to Slice + Concat (exact): the same numbers, no reflect Pad for ATC.

Transformation, for each padded axis in turn (a reflect pad over several axes is the same as
one reflect pad per axis, applied one after another), with n the size of that axis:

    y = Pad(x, pads=[.., b, .., .., e, ..], mode="reflect")
        ->
    l_k = Slice(x, starts=[k], ends=[k + 1], axes=[axis])        k = b, b-1, .., 1
    r_k = Slice(x, starts=[k], ends=[k + 1], axes=[axis])        k = n-2, n-3, .., n-1-e
    y   = Concat(l_b, .., l_1, x, r_n-2, .., r_n-1-e, axis=axis)

Constraints (each is a reason the rewrite declines, shown by `gancc explain`):
- the Pad is reflect mode, with known constant pads and no `axes` input (opset 18), in a
  graph of opset 10 or later (the Slice made takes its starts and ends as inputs);
- pads are non-negative and not all zero;
- every padded axis has a known size n (graph input shape, value_info, or shape inference)
  and each pad is smaller than n: reflect never repeats the edge, so it can mirror at most
  n - 1 elements (ATC's PadV3 has the same limit).

Only unit-step Slices (starts, ends, axes as int64 initializers, shared between the Slices
of a pass that need the same value) and Concat are made, ops ATC registers at opset 11. Every node and tensor gets a name from Graph.unique_name, derived from
the Pad's name: a graph with many reflect Pads lowers without clashes, unlike msit's
KnowledgeModifyReflectionPad, whose fixed 'slice_0_0' broke on the second Pad.
"""

from __future__ import annotations

import onnx

from gancc.graph import Graph
from gancc.graph.ops import read_pad
from gancc.passes.base import Rewrite
from gancc.passes.registry import rewrite
from gancc.rewrites._common import int64_constant, shape


@rewrite("reflect-pad-exact")
class ReflectPadExact(Rewrite):
    anchor = "Pad"

    def match(self, graph: Graph, node: onnx.NodeProto):
        pad = read_pad(graph, node)
        if pad.mode != "reflect":
            return self.decline(f"mode is '{pad.mode}', not 'reflect'")
        if len(node.input) > 3 and node.input[3]:
            return self.decline("the Pad has an axes input; only pads over every axis are lowered")
        if pad.pads is None:
            return self.decline("pads are computed at run time, not a constant")
        opset = graph.opset() or 0
        if opset < 10:
            return self.decline(f"opset {opset}: Slice takes starts and ends as inputs from 10")
        if any(p < 0 for p in pad.pads):
            return self.decline("negative pads (cropping) are not lowered")
        if not any(pad.pads):
            return self.decline("all pads are zero")
        rank = len(pad.pads) // 2
        dims = shape(graph, node.input[0])
        plan = []
        for axis in range(rank):
            begin, end = pad.pads[axis], pad.pads[rank + axis]
            if not (begin or end):
                continue
            size = dims[axis] if dims is not None and len(dims) == rank else None
            if not isinstance(size, int) or size <= 0:
                return self.decline(f"the size of axis {axis} of '{node.input[0]}' is unknown")
            if max(begin, end) >= size:
                return self.decline(f"pad {max(begin, end)} on axis {axis} is not smaller "
                                    f"than its size {size}")
            plan.append((axis, begin, end, size))
        return plan

    def apply(self, graph: Graph, node: onnx.NodeProto, plan) -> None:
        base = node.name or "reflect_pad"
        current = node.input[0]
        for step, (axis, begin, end, size) in enumerate(plan):
            # the mirrored rows, in output order: x[b] .. x[1] before, x[n-2] .. x[n-1-e] after
            rows_before = list(range(begin, 0, -1))
            rows_after = list(range(size - 2, size - 2 - end, -1))
            axes = int64_constant(graph, [axis], f"{base}/i64")
            parts = [self._row(graph, node, current, row, axes, f"{base}/before{axis}_{row}")
                     for row in rows_before]
            parts.append(current)
            parts += [self._row(graph, node, current, row, axes, f"{base}/after{axis}_{row}")
                      for row in rows_after]
            last = step == len(plan) - 1
            # the last Concat writes the Pad's own output tensor, so readers and graph outputs
            # need no rewiring
            out = node.output[0] if last else graph.unique_name(f"{base}/concat{axis}_output")
            graph.add_node("Concat", parts, [out], before=node, name=f"{base}/concat{axis}",
                           axis=axis)
            current = out
        graph.remove_node(node)

    def _row(self, graph: Graph, node: onnx.NodeProto, data: str, row: int, axes: str,
             hint: str) -> str:
        starts = int64_constant(graph, [row], f"{node.name or 'reflect_pad'}/i64")
        ends = int64_constant(graph, [row + 1], f"{node.name or 'reflect_pad'}/i64")
        out = graph.unique_name(f"{hint}_output")
        graph.add_node("Slice", [data, starts, ends, axes], [out], before=node, name=hint)
        return out
