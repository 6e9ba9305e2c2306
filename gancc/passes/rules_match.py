"""Matching a pattern rule's pattern (`Conv(Pad(x, pads) as p, w, b?) as c`) at one node.

The match starts at a node of the pattern's root op type (the rule's anchor) and walks up
through producers, one step per operand, so its cost is the pattern's size, not the graph's.
A variable used twice must bind the same tensor; `name?` binds an input that may be absent;
`_` matches any input; Add and Mul also match with their two operands swapped. A failure is
a sentence naming the sub-pattern that declined and what it saw, as `gancc explain` shows it.
"""

from __future__ import annotations

import onnx

from gancc.passes.rules_expr import Match, NotHeld, attr_value, equal, evaluate, show
from gancc.spec.model import Expr

COMMUTATIVE = frozenset({"Add", "Mul", "Max", "Min", "Sum", "And", "Or", "Xor", "Equal"})


def pattern_text(p: Expr) -> str:
    """A pattern as written, shortened: `Pad(x, pads, v?) as p`."""
    if p.kind in ("name", "num", "str"):
        return show(p.value) if p.kind == "str" else str(p.value)
    if p.kind == "opt":
        return f"{p.value}?"
    if p.kind == "kw":
        return f"{p.value}={pattern_text(p.args[0])}"
    if p.kind == "call":
        inner = ", ".join(pattern_text(a) if a.kind != "call" else f"{a.value}(..)"
                          for a in p.args)
        return f"{p.value}({inner})" + (f" as {p.label}" if p.label else "")
    return "(...)"


def _who(node: onnx.NodeProto) -> str:
    return f"{node.op_type} '{node.name}'" if node.name else node.op_type


def match_node(p: Expr, node: onnx.NodeProto, m: Match) -> str | None:
    """Bind pattern `p` at `node` into `m`; None when it matches, else why not."""
    if node.op_type not in p.value.split("|"):
        return f"{pattern_text(p)}: {_who(node)} is not {p.value}"
    if p.label:
        m.labels[p.label] = node
    m.nodes.append(node)
    operands = [a for a in p.args if a.kind != "kw"]
    extra = [t for t in node.input[len(operands):] if t]
    if extra:
        return (f"{pattern_text(p)}: {_who(node)} has {len(operands) + len(extra)} inputs, "
                f"the pattern lists {len(operands)}")
    reason = _operands(p, node, operands, m)
    if reason is not None and node.op_type in COMMUTATIVE and len(operands) == 2:
        saved = m.snapshot()
        swapped = _operands(p, node, operands[::-1], m)
        if swapped is None:
            reason = None
        else:
            m.restore(saved)
    if reason is not None:
        return reason
    return _attributes(p, node, m)


def _operands(p: Expr, node: onnx.NodeProto, operands: list[Expr], m: Match) -> str | None:
    saved = m.snapshot()
    for i, a in enumerate(operands):
        tensor = node.input[i] if i < len(node.input) else ""
        reason = _operand(p, node, i, a, tensor, m)
        if reason is not None:
            m.restore(saved)
            return reason
    return None


def _operand(p: Expr, node: onnx.NodeProto, i: int, a: Expr, tensor: str,
             m: Match) -> str | None:
    if a.kind == "name" and a.value == "_":
        return None
    if a.kind == "opt" or (a.kind == "name" and tensor):
        bound = m.tensors.get(a.value, tensor or None)
        if a.value in m.tensors and bound != (tensor or None):
            return (f"{pattern_text(p)}: {a.value} is '{bound}' and also input {i} "
                    f"'{tensor}' of {_who(node)}")
        m.tensors[a.value] = tensor or None
        return None
    if not tensor:
        return f"{pattern_text(p)}: input {i} of {_who(node)} is absent"
    producer = m.graph.producer(tensor)
    if producer is None:
        what = "a constant" if m.graph.const_value(tensor) is not None else "a graph input"
        return f"{pattern_text(a)}: input {i} of {_who(node)} is {what}, not {a.value}"
    if producer.output[0] != tensor:
        return f"{pattern_text(a)}: input {i} of {_who(node)} is not the first output of " \
               f"{_who(producer)}"
    return match_node(a, producer, m)


def _attributes(p: Expr, node: onnx.NodeProto, m: Match) -> str | None:
    for a in p.args:
        if a.kind != "kw":
            continue
        actual = attr_value(m.graph, node, a.value, m.opset)
        try:
            wanted = evaluate(a.args[0], m)
        except NotHeld as err:
            return f"{pattern_text(p)}: {err}"
        if not equal(actual, wanted):
            return f"{pattern_text(p)}: {a.value} of {_who(node)} is {show(actual)}, " \
                   f"not {show(wanted)}"
    return None
