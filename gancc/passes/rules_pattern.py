"""A pattern rule (`rule NAME exact { match Op(..) where .. let .. => Op(..) }`) run as a
node rewrite: the pattern is matched from its root op (the anchor, so a pass is linear in the
graph: gancc.passes.rules_match), the `where` conditions and `let` values are evaluated
(gancc.passes.rules_expr), and the replacement is planned in `match`, so `apply` only builds.

The replacement's root node writes the matched root's output tensor (readers and graph
outputs keep their names); its other nodes and new constants get fresh names. Matched nodes
that nothing reads any more are removed; one still read elsewhere stays (so a Pad read by
two Convs is fused into both, and goes with the second). A replacement that would rebuild
the matched node as it is declines, which keeps rules idempotent.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import onnx
from onnx import helper

from gancc.graph import Graph
from gancc.passes.base import Rewrite
from gancc.passes.rules_expr import Match, NotHeld, compile_rule, evaluate, show, truthy
from gancc.passes.rules_match import COMMUTATIVE, match_node
from gancc.passes.rules_pure import pure_subexpressions
from gancc.spec.checks import convert_value, op_schema
from gancc.spec.model import Expr, RuleSpec
from gancc.spec.pattern_checks import check_pattern_at_opset, is_op


@dataclass
class Planned:
    """A node of the replacement: op type, inputs (tensor names, Planned nodes, or arrays
    that become new initializers) and attributes (AttributeProtos)."""

    op: str
    inputs: list
    attributes: list[onnx.AttributeProto]


@lru_cache(maxsize=256)
def pattern_rule_class(rule: RuleSpec) -> type[PatternRewrite]:
    doc = (rule.summary or f"Spec rule {rule.name} ({rule.source})") + "\n\n" + \
        (rule.text or "") + f"\n\nDeclared at {rule.source}."
    cls = type("Rule_" + rule.name.replace("-", "_"), (PatternRewrite,),
               {"name": rule.name, "anchor": rule.pattern.value,
                "exact": rule.exactness == "exact", "source": rule.source, "rule": rule,
                # worked out once per rule: hashing a rule (a tree of frozen dataclasses) for
                # a cache lookup per candidate node would cost more than matching it
                "variants": commuted(rule.pattern), "pure": pure_subexpressions(rule),
                "compiled": compile_rule(_expressions(rule), pure_subexpressions(rule)),
                "__doc__": doc, "__module__": __name__})
    return dataclasses.dataclass(frozen=True)(cls)


def _expressions(rule: RuleSpec) -> list[Expr]:
    steps = [step[1] if step[0] == "where" else step[2] for step in rule.steps]
    return [rule.pattern, *steps, rule.replacement]


@lru_cache(maxsize=256)
def commuted(p: Expr) -> tuple[Expr, ...]:
    """`p` and its variants with the two operands of commutative ops swapped."""
    if p.kind != "call":
        return (p,)
    variants = [()]
    for a in p.args:
        variants = [v + (alt,) for v in variants for alt in commuted(a)]
    out = [dataclasses.replace(p, args=v) for v in variants]
    operands = [i for i, a in enumerate(p.args) if a.kind != "kw"]
    if p.value in COMMUTATIVE and len(operands) == 2:
        i, j = operands
        for v in list(out):
            args = list(v.args)
            args[i], args[j] = args[j], args[i]
            out.append(dataclasses.replace(v, args=tuple(args)))
    return tuple(out)


def source_text(rule: RuleSpec, e: Expr) -> str:
    """The text of `e` as written in the rule."""
    lines = rule.text.split("\n")
    first, last = e.span.line - rule.span.line, (e.span.end_line or e.span.line) - rule.span.line
    if not rule.text or first < 0 or last >= len(lines):
        return "condition"
    if first == last:
        return lines[first][e.span.col - 1:(e.span.end_col or 0) - 1]
    parts = [lines[first][e.span.col - 1:]] + lines[first + 1:last] + \
        [lines[last][:(e.span.end_col or 1) - 1]]
    return " ".join(p.strip() for p in parts)


class PatternRewrite(Rewrite):
    rule: Any = None
    variants: Any = ()         # the pattern with commutative operands swapped (commuted)
    pure: Any = None           # pure_subexpressions(rule)
    compiled: Any = None       # compile_rule(..): id(expr) -> function of a match

    def _opset(self, graph: Graph) -> int:
        def checked() -> int:
            opset = graph.opset() or 1
            check_pattern_at_opset(self.rule, opset)
            return opset
        return graph.memo(f"{__name__}.opset.{self.name}", checked)

    def match(self, graph: Graph, node: onnx.NodeProto):
        first = None
        for pattern in self.variants:                  # Add(x, z) also as Add(z, x)
            m = Match(graph, self._opset(graph), self.pure, self.compiled)
            reason = match_node(pattern, node, m) or _root_outputs(graph, node)
            if reason is None:
                reason = self._conditions(m)
            if reason is None:
                break
            first = first or reason
        else:
            return self.decline(first)
        try:
            plan = _plan(self.rule.replacement, m, top=True)
        except NotHeld as err:
            return self.decline(f"=> {source_text(self.rule, self.rule.replacement)}: {err}")
        in_place = False
        if isinstance(plan, str):
            reason = _bypass_blocker(graph, node, plan)
        else:
            inputs = _inputs(node)
            if _unchanged(plan, node, inputs):
                reason = "already rewritten: the replacement would change nothing"
            in_place = _editable_in_place(plan, node, inputs)
        return self.decline(reason) if reason else (m, plan, in_place)

    def _conditions(self, m: Match) -> str | None:
        for step in self.rule.steps:
            expr = step[1] if step[0] == "where" else step[2]
            try:
                value = self.compiled[id(expr)](m)
            except NotHeld as err:
                return f"{step[0]} {source_text(self.rule, expr)}: {err}"
            if step[0] == "let":
                m.lets[step[1]] = value
            elif not truthy(value):
                return f"where {source_text(self.rule, expr)}: {_seen(expr, m)}"
        return None

    def apply(self, graph: Graph, node: onnx.NodeProto, planned) -> None:
        m, plan, in_place = planned
        out = node.output[0]
        if in_place:
            _edit_in_place(graph, plan, node, self.name)
        elif isinstance(plan, str):
            graph.remove_node(node)
            _bypass(graph, node, plan)
        else:
            graph.remove_node(node)
            root = _build(graph, plan, node, self.name, out)
            root.name = node.name or root.name
        for matched in m.nodes[1:]:          # parents before their operands
            if not any(graph.consumers(t) or graph.is_graph_output(t)
                       for t in matched.output if t):
                graph.remove_node(matched)


def _root_outputs(graph: Graph, node: onnx.NodeProto) -> str | None:
    for i, t in enumerate(node.output[1:], 1):
        if t and (graph.consumers(t) or graph.is_graph_output(t)):
            return f"output {i} of '{node.name}' is read, and the replacement makes only one"
    return None


def _seen(e: Expr, m: Match) -> str:
    """What the parts of a failed condition were: `p.mode is "reflect"`."""
    if e.kind in ("and", "or"):
        failed = [a for a in e.args if not truthy(_safe(a, m))]
        return "; ".join(_seen(a, m) for a in failed[:1]) or "false"
    if e.kind in ("cmp", "in"):
        shown = [f"{_short(a)} is {show(_safe(a, m))}" for a in e.args if a.kind not in
                 ("num", "str", "list")]
        return ", ".join(shown) or "false"
    return f"{_short(e)} is {show(_safe(e, m))}"


def _short(e: Expr) -> str:
    if e.kind == "name":
        return e.value
    if e.kind == "call":
        return f"{e.value}(..)"
    return "the value"


def _safe(e: Expr, m: Match) -> Any:
    try:
        return evaluate(e, m)
    except NotHeld:
        return None


def _plan(e: Expr, m: Match, top: bool = False) -> Planned | str | np.ndarray:
    if e.kind in ("name", "opt") and e.value in m.tensors:
        return m.tensors[e.value] or ""
    if not (e.kind == "call" and is_op(e.value)):
        return _constant(e, m)
    schemas = m.graph.memo(f"{__name__}.schemas", dict)      # looking up a schema is slow
    if e.value not in schemas:
        schemas[e.value] = op_schema(e.value, m.opset)
    schema = schemas[e.value]
    attributes: dict[str, onnx.AttributeProto] = {}
    inputs = []
    tensors = m.tensors
    for a in e.args:
        if (a.kind == "name" or a.kind == "opt") and a.value in tensors:
            inputs.append(tensors[a.value] or "")       # a tensor of the pattern (fast path)
        elif a.kind == "splat":
            for attr in m.labels[a.value].attribute:
                attributes[attr.name] = attr
        elif a.kind == "kw":
            attributes.pop(a.value, None)
            attr = _kw_attribute(schema, a, m)
            if attr is not None:
                attributes[a.value] = attr
        else:
            inputs.append(_plan(a, m))
    while inputs and isinstance(inputs[-1], str) and not inputs[-1]:
        inputs.pop()                  # absent optional inputs at the end
    return Planned(e.value, inputs, list(attributes.values()))


def _kw_attribute(schema, a: Expr, m: Match) -> onnx.AttributeProto | None:
    """The attribute `name=EXPR` of a replacement node (None: `name=none`); made once per
    pass when EXPR is pure (mode="constant"), as its value is (gancc.passes.rules_pure)."""
    deps = m.pure.get(id(a.args[0]))
    key = None if deps is None else (id(a),) + tuple(m.tensors.get(n) for n in deps)
    if key is not None and key in m.computed:
        return m.computed[key]
    value = evaluate(a.args[0], m)
    attr = None if value is None else _attribute(schema, a.value, value)
    if key is not None:
        m.computed[key] = attr
    return attr


def _attribute(schema, name: str, value: Any) -> onnx.AttributeProto:
    if schema is None or name not in schema.attributes:
        raise NotHeld(f"{name} is not an attribute of this op at this opset")
    attr_type = schema.attributes[name].type
    if attr_type == onnx.AttributeProto.INTS and isinstance(value, np.ndarray) \
            and value.dtype.kind in "iu" and value.ndim == 1:
        # the common case (`pads=fused`), made directly: make_attribute checks each element
        attr = onnx.AttributeProto(name=name, type=onnx.AttributeProto.INTS)
        attr.ints.extend(value.tolist())
        return attr
    plain = tuple(np.asarray(value).reshape(-1).tolist()) if isinstance(value, np.ndarray) \
        and value.ndim else (value.item() if isinstance(value, np.generic) or
                             isinstance(value, np.ndarray) else value)
    try:
        converted = convert_value(attr_type, plain)
    except ValueError as err:
        raise NotHeld(f"{name} takes {err}, got {show(value)}") from None
    return helper.make_attribute(name, converted, attr_type=attr_type.value)


def _constant(e: Expr, m: Match) -> np.ndarray:
    """A new initializer's value: floats take the element type of the first float constant
    the expression reads (else float32), ints int64; `cast(..)` chooses its own."""
    value = np.asarray(evaluate(e, m))
    if e.kind == "call" and e.value == "cast":
        return value
    if value.dtype.kind == "f":
        return value.astype(_float_type(e, m) or np.float32)
    if value.dtype.kind in "iu":
        return value.astype(np.int64)
    return value


def _float_type(e: Expr, m: Match):
    if e.kind == "name" and m.tensors.get(e.value):
        const = m.graph.const_value(m.tensors[e.value])
        if const is not None and const.dtype.kind == "f":
            return const.dtype
    for a in e.args:
        if isinstance(a, Expr):
            found = _float_type(a, m)
            if found is not None:
                return found
    return None


def _inputs(node: onnx.NodeProto) -> list[str]:
    """The node's inputs without absent ones at the end."""
    inputs = list(node.input)
    while inputs and not inputs[-1]:
        inputs.pop()
    return inputs


def _unchanged(plan: Planned, node: onnx.NodeProto, inputs: list[str]) -> bool:
    if plan.op != node.op_type or len(plan.attributes) != len(node.attribute) \
            or len(plan.inputs) != len(inputs) \
            or not all(isinstance(i, str) for i in plan.inputs) or plan.inputs != inputs:
        return False
    own = {a.name: a for a in node.attribute}
    return all(own.get(a.name) == a for a in plan.attributes)


def _editable_in_place(plan: Planned, node: onnx.NodeProto, inputs: list[str]) -> bool:
    """A replacement root of the matched root's op type with as many inputs is an edit of
    that node (its inputs and attributes), not a new node: much cheaper on a large graph."""
    return plan.op == node.op_type and not node.domain and len(plan.inputs) == len(inputs) \
        and len([t for t in node.output if t]) == 1      # the replacement writes one output


def _edit_in_place(graph: Graph, plan: Planned, node: onnx.NodeProto, tag: str) -> None:
    for i, planned in enumerate(plan.inputs):
        if isinstance(planned, Planned):
            tensor = _build(graph, planned, node, tag).output[0]
        elif isinstance(planned, np.ndarray):
            tensor = graph.add_initializer(planned, f"{node.name or node.op_type}_{tag}_const")
        else:
            tensor = planned
        if node.input[i] != tensor:
            graph.set_input(node, i, tensor)
    wanted = {a.name: a for a in plan.attributes}
    for attr in list(node.attribute):
        planned = wanted.get(attr.name)
        if planned is None:
            graph.remove_attr(node, attr.name)
        elif planned is attr or planned == attr:      # `**c` hands the node's own over
            del wanted[attr.name]
    for name, attr in wanted.items():
        graph.remove_attr(node, name)        # tags the node with the rule (provenance)
        node.attribute.append(attr)
    if graph.author != tag:                  # the engine's Graph tags every edit already
        graph.tag(node, tag)


def _build(graph: Graph, plan: Planned, before: onnx.NodeProto, tag: str,
           out: str | None = None) -> onnx.NodeProto:
    hint = before.name or before.op_type
    inputs = []
    for i in plan.inputs:
        if isinstance(i, Planned):
            inputs.append(_build(graph, i, before, tag).output[0])
        elif isinstance(i, np.ndarray):
            inputs.append(graph.add_initializer(i, f"{hint}_{tag}_const"))
        else:
            inputs.append(i)
    output = out or graph.unique_name(f"{hint}_{plan.op.lower()}_out")
    node = graph.add_node(plan.op, inputs, [output], before=before, name=f"{hint}_{plan.op}",
                          tag=tag)
    node.attribute.extend(plan.attributes)
    return node


def _bypass_blocker(graph: Graph, node: onnx.NodeProto, tensor: str) -> str | None:
    """Why `=> x` cannot take `node`'s place (None: it can)."""
    out = node.output[0]
    if not graph.is_graph_output(out):
        return None
    producer = graph.producer(tensor)
    if producer is None:
        return "it passes a graph input or a constant to a graph output"
    if graph.is_graph_output(tensor):
        return "its input is a graph output too"
    if len(graph.consumers(tensor)) > 1:
        return "it writes a graph output and its input has other readers"
    return None


def _bypass(graph: Graph, node: onnx.NodeProto, tensor: str) -> None:
    out = node.output[0]
    if not graph.is_graph_output(out):
        graph.replace_uses(out, tensor)
        return
    producer = graph.producer(tensor)     # writes the graph output's name itself
    graph.set_output(producer, list(producer.output).index(tensor), out)
