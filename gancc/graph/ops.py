"""Readers for op attributes whose encoding changed across opsets."""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from gancc.graph import Graph


@dataclass(frozen=True)
class PadParams:
    mode: str
    pads: list[int] | None          # None when the pads are computed at run time
    value: float | None             # None when the constant value is computed at run time


def read_pad(graph: Graph, node: onnx.NodeProto) -> PadParams:
    """Pad's mode, pads and constant value, from attributes (opset < 11) or inputs (>= 11)."""
    mode = graph.attr(node, "mode", "constant")
    if graph.attr(node, "pads") is not None:          # opset 2-10: attributes
        return PadParams(mode, list(graph.attr(node, "pads")), float(graph.attr(node, "value", 0.0)))
    pads_value = graph.const_value(node.input[1]) if len(node.input) > 1 and node.input[1] else None
    pads = [int(p) for p in pads_value.reshape(-1)] if pads_value is not None else None
    value: float | None = 0.0
    if len(node.input) > 2 and node.input[2]:
        const = graph.const_value(node.input[2])
        value = float(const.reshape(-1)[0]) if const is not None and const.size else None
    return PadParams(mode, pads, value)


def zero_spatial_pad(graph: Graph, node: onnx.NodeProto, into: str) -> tuple[list[int], list[int]] | str:
    """(begins, ends) of a Pad whose padding a following op (`into`, e.g. "Conv") could take
    over, or the reason it cannot: it must add zeros, on spatial axes only, with constant
    non-negative pads, and its output must be read (and not be a graph output)."""
    pad = read_pad(graph, node)
    if pad.mode != "constant":
        return f"mode is '{pad.mode}', not 'constant'"
    if len(node.input) > 3 and node.input[3]:
        return "the Pad has an axes input; only pads over every axis are fused"
    if pad.pads is None:
        return "pads are computed at run time, not a constant"
    if pad.value is None or pad.value != 0.0:
        return f"pad value is {pad.value}, not 0"
    rank = len(pad.pads) // 2
    begins, ends = pad.pads[:rank], pad.pads[rank:]
    if rank < 3 or any(begins[:2]) or any(ends[:2]):
        return "pads touch the batch or channel axis"
    if any(p < 0 for p in pad.pads):
        return f"negative pads (cropping) cannot become {into} pads"
    if graph.is_graph_output(node.output[0]):
        return "the Pad output is a graph output"
    if not graph.consumers(node.output[0]):
        return "the Pad output is not read"
    return begins, ends
