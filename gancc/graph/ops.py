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
