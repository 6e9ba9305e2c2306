"""The rule engine: a spec's `rule` (gancc.spec.model.RuleSpec) run as a rewrite.

Each rule becomes a Rewrite subclass made at run time (`rule_class`), so it runs through the
same pass manager as a Python rewrite: the same PassResult statistics, provenance tags,
verification after each pass, idempotence check and `gancc explain`. Its `source` is the
spec's file:line. docs/spec.md ("Rules") says what each predicate and action does.

Values are converted with the same tables the front end checked them with
(gancc.spec.checks), so a value means the same when checked and when applied.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Any

import numpy as np
import onnx
from onnx import helper

from gancc.graph import Graph, provenance
from gancc.passes.base import Decline, Rewrite
from gancc.dtypes import type_name
from gancc.spec.checks import DTYPES, check_at_opset, convert_value, op_schema, show
from gancc.spec.model import Action, Predicate, RuleSpec


# lru_cache, not a dict: one class per parsed rule while it is in use, without growing with
# every spec a long-lived process reads. Rules are frozen, so equal rules share a class.
@lru_cache(maxsize=256)
def rule_class(rule: RuleSpec) -> type[RuleRewrite]:
    """The Rewrite subclass for `rule`."""
    doc = (rule.summary or f"Spec rule {rule.name} ({rule.source})") + "\n\n" + \
        (rule.text or "") + f"\n\nDeclared at {rule.source}."
    cls = type("Rule_" + rule.name.replace("-", "_"), (RuleRewrite,),
               {"name": rule.name, "anchor": rule.nodes[0].op, "exact": False,
                "source": rule.source, "rule": rule, "__doc__": doc, "__module__": __name__})
    return dataclasses.dataclass(frozen=True)(cls)


def make_rule_pass(rule: RuleSpec, opset: int | None = None, prove: bool = True) -> Rewrite:
    """A pass running `rule`; checked first against `opset` when given (a model's). A pattern
    rule declared `exact` is proven first (gancc.passes.rules_prove; once per process)."""
    if rule.pattern is not None:
        from gancc.passes.rules_pattern import pattern_rule_class
        from gancc.passes.rules_prove import require_proof
        from gancc.spec.pattern_checks import check_pattern_at_opset

        if opset is not None:
            check_pattern_at_opset(rule, opset)
        if prove and rule.exactness == "exact":
            require_proof(rule)
        return pattern_rule_class(rule)()
    if opset is not None:
        check_at_opset(rule, opset)
    return rule_class(rule)()


class _GraphFacts:
    """What a rule works out once per pass run: the graph's opset (the rule is checked against
    it), node order (for `insert after`) and known element types (for `dtype` predicates).
    Kept in the run's Graph memo, so nothing outlives the run."""

    def __init__(self, rule: RuleSpec, graph: Graph):
        self.opset = next((o.version for o in graph.model.opset_import
                           if o.domain in ("", "ai.onnx")), 1)
        check_at_opset(rule, self.opset)     # a rule the graph's opset cannot run is an error
        self._following: dict[int, onnx.NodeProto | None] | None = None
        self._elem_types: dict[str, int] | None = None

    def next_node(self, graph: Graph, node: onnx.NodeProto) -> onnx.NodeProto | None:
        """The node after `node` in graph order when the run began (None: the last)."""
        if self._following is None:
            nodes = graph.nodes()
            self._following = {id(a): b for a, b in zip(nodes, nodes[1:] + [None])}
        return self._following.get(id(node))

    def elem_types(self, graph: Graph) -> dict[str, int]:
        """tensor -> element type, from the graph's declarations and shape inference."""
        if self._elem_types is None:
            self._elem_types = _known_elem_types(graph)
        return self._elem_types


def _known_elem_types(graph: Graph) -> dict[str, int]:
    from gancc.graph.types import elem_types, inferred_elem_types

    try:   # shape inference on the weight-free graph: cheap, and may fail harmlessly
        return inferred_elem_types(graph.model)
    except Exception:   # a graph inference cannot follow: what the graph declares
        return elem_types(graph.graph)


def _attr_value(graph: Graph, node: onnx.NodeProto, name: str, opset: int) -> Any:
    """The attribute as set on `node`, else its schema default (None: neither)."""
    value = graph.attr(node, name)
    if value is None:
        schema = op_schema(node.op_type, opset)
        attr = schema.attributes.get(name) if schema is not None else None
        if attr is not None and attr.default_value.type:
            value = helper.get_attribute_value(attr.default_value)
            value = value.decode() if isinstance(value, bytes) else value
    if isinstance(value, (list, tuple)):
        return tuple(v.decode() if isinstance(v, bytes) else v for v in value)
    return value


def _converted(op: str, attr: str, value: Any, opset: int) -> Any:
    return convert_value(op_schema(op, opset).attributes[attr].type, value)


class RuleRewrite(Rewrite):
    """A spec rule, run by the pass manager as any rewrite is. See the module docstring."""

    rule: Any = None          # the RuleSpec (a class attribute, set by rule_class)

    def _facts(self, graph: Graph) -> _GraphFacts:
        return graph.memo(f"{__name__}.facts", lambda: _GraphFacts(self.rule, graph))

    def match(self, graph: Graph, node: onnx.NodeProto):
        facts = self._facts(graph)
        chain = self._chain(graph, node)
        if isinstance(chain, Decline):
            return chain
        rule: RuleSpec = self.rule
        nodes = {p.label: n for p, n in zip(rule.nodes, chain) if p.label}
        nodes[None] = chain[-1]
        for p in rule.predicates:
            reason = _test(graph, facts, nodes[p.label], p)
            if reason is not None:
                return self.decline(reason)
        return self._check_actions(graph, nodes, facts.opset)

    def _chain(self, graph: Graph, node: onnx.NodeProto) -> list[onnx.NodeProto] | Decline:
        """The nodes of `match A -> B -> C` from `node`: each node's first output read by the
        next node only."""
        chain = [node]
        for pattern in self.rule.nodes[1:]:
            current = chain[-1]
            out = current.output[0] if current.output else ""
            if not out or graph.is_graph_output(out):
                return self.decline(f"the {current.op_type} output is a graph output, "
                                    f"not read by a {pattern.op}")
            readers = graph.consumers(out)
            if len(readers) != 1:
                return self.decline(f"the {current.op_type} output has {len(readers)} readers, "
                                    f"not one {pattern.op}")
            if readers[0].op_type != pattern.op:
                return self.decline(f"the {current.op_type} output is read by "
                                    f"{readers[0].op_type}, not {pattern.op}")
            chain.append(readers[0])
        return chain

    def _check_actions(self, graph: Graph, nodes: dict, opset: int):
        """Declines for actions that cannot apply here, or that would change nothing."""
        changes = False
        op_types = {id(n): n.op_type for n in nodes.values()}   # as the `op` actions leave them
        for a in self.rule.actions:
            target = nodes[a.label]
            if a.kind == "op":
                op_types[id(target)] = a.value
            outcome = self._action_effect(graph, nodes, a, target, op_types[id(target)], opset)
            if isinstance(outcome, str):
                return self.decline(outcome)
            changes = changes or outcome
        if not changes:
            return self.decline("already rewritten: the actions would change nothing")
        return nodes

    def _action_effect(self, graph: Graph, nodes: dict, a: Action, target: onnx.NodeProto,
                       op_type: str, opset: int) -> bool | str:
        """Whether action `a` would change `target`, or why it cannot apply (a reason)."""
        if a.kind == "bypass":
            return _bypass_blocker(graph, target) or True
        if a.kind == "insert":
            if self.name in provenance(target):
                return f"'{target.name}' was already rewritten by {self.name}"
            return True
        if a.kind == "set":
            current = graph.attr(target, a.attr)
            current = tuple(current) if isinstance(current, list) else current
            value = _converted(op_type, a.attr, a.value, opset)
            return current != (tuple(value) if isinstance(value, list) else value)
        if a.kind == "remove":
            return graph.attr(target, a.attr) is not None
        if a.kind == "op":
            if target.op_type == a.value:
                return False
            removed = {x.attr for x in self.rule.actions
                       if x.kind == "remove" and nodes[x.label] is target}
            attributes = op_schema(a.value, opset).attributes
            for attribute in target.attribute:
                if attribute.name not in attributes and attribute.name not in removed:
                    return f"{a.value} has no attribute '{attribute.name}' (of '{target.name}')"
            return True
        return target.name != a.value      # rename

    def apply(self, graph: Graph, node: onnx.NodeProto, nodes: dict) -> None:
        facts = self._facts(graph)
        touched: list[onnx.NodeProto] = []
        for a in self.rule.actions:
            target = nodes[a.label]
            if a.kind == "bypass":
                # the readers, rewired, carry the rule's name (the removed node cannot)
                touched.extend(graph.consumers(target.output[0]))
                graph.replace_uses(target.output[0], target.input[0])
                graph.remove_node(target)
                continue
            if a.kind == "insert":
                self._insert(graph, facts, target, a)
            else:
                _edit(graph, target, a, facts.opset)
            touched.append(target)
        # tagged by name, not only by the Graph API's edits: a rule also retypes and renames
        # nodes other than its anchor, and the readers a bypass rewires carry its name too
        for target in touched:
            if not graph.is_removed(target):
                graph.tag(target, self.name)

    def _insert(self, graph: Graph, facts: _GraphFacts, target: onnx.NodeProto,
                a: Action) -> None:
        schema = op_schema(a.call.name, facts.opset)
        attrs = {arg.name: convert_value(schema.attributes[arg.name].type, arg.value)
                 for arg in a.call.args}
        name = f"{target.name or target.op_type}_{a.call.name}"
        if a.where == "before":
            original = target.input[0]
            fresh = graph.unique_name(f"{original}_{a.call.name.lower()}")
            graph.add_node(a.call.name, [original], [fresh], before=target, tag=self.name,
                           name=name, **attrs)
            graph.set_input(target, 0, fresh)
            return
        out = target.output[0]
        fresh = graph.unique_name(f"{out}_before_{a.call.name.lower()}")
        # the new node takes over the output name, so readers and graph outputs stay as they are
        graph.set_output(target, 0, fresh)
        graph.add_node(a.call.name, [fresh], [out], before=facts.next_node(graph, target),
                       tag=self.name, name=name, **attrs)
        _forget_type(graph, [out])
        if a.call.name == "Cast":             # a graph output's declared type follows the Cast
            for o in graph.graph.output:
                if o.name == out and o.type.HasField("tensor_type"):
                    o.type.tensor_type.elem_type = attrs["to"]


def _edit(graph: Graph, target: onnx.NodeProto, a: Action, opset: int) -> None:
    """Apply a `set`, `remove`, `op` or `rename` action to `target`."""
    if a.kind == "set":
        schema = op_schema(target.op_type, opset).attributes[a.attr]
        value = convert_value(schema.type, a.value)
        graph.remove_attr(target, a.attr)
        target.attribute.append(helper.make_attribute(a.attr, value, attr_type=schema.type.value))
    elif a.kind == "remove":
        graph.remove_attr(target, a.attr)
    elif a.kind == "op":
        target.op_type = a.value
        _forget_type(graph, target.output)
    elif a.kind == "rename":
        target.name = graph.unique_name(a.value)


def _bypass_blocker(graph: Graph, target: onnx.NodeProto) -> str | None:
    """Why `target` cannot be bypassed (None: it can)."""
    out = target.output[0] if target.output else ""
    if not target.input or not target.input[0]:
        return f"'{target.name}' has no input 0 to bypass to"
    if graph.is_graph_output(out):
        return f"the {target.op_type} output is a graph output"
    for extra in target.output[1:]:
        if extra and (graph.consumers(extra) or graph.is_graph_output(extra)):
            return f"output '{extra}' of the {target.op_type} is read"
    return None


def _test(graph: Graph, facts: _GraphFacts, node: onnx.NodeProto, p: Predicate) -> str | None:
    """Why `node` fails predicate `p`, or None when it holds."""
    if p.kind == "dtype":
        return _test_dtype(graph, facts, node, p)
    if p.kind == "attr":
        return _test_attr(graph, node, p, facts.opset)
    return _test_input(graph, node, p)


def _verdict(p: Predicate, holds: bool, what: str, shown: str, want: str) -> str | None:
    """The decline reason of a compared predicate (None: it holds)."""
    if p.compare == "==" and not holds:
        return f"{what} {shown}, not {want}"
    if p.compare == "!=" and holds:
        return f"{what} {shown}"
    if p.compare == "in" and not holds:
        return f"{what} {shown}, not one of {want}"
    return None


def _test_dtype(graph: Graph, facts: _GraphFacts, node: onnx.NodeProto,
                p: Predicate) -> str | None:
    values = p.value if p.compare == "in" else (p.value,)
    elem = facts.elem_types(graph).get(node.input[0]) if node.input else None
    if elem is None:
        return "the dtype of input 0 is not known"
    holds = elem in [DTYPES[v] for v in values]
    want = p.value if p.compare != "in" else "[" + ", ".join(values) + "]"
    return _verdict(p, holds, "input 0 is", type_name(elem) if elem else str(elem), want)


def _test_attr(graph: Graph, node: onnx.NodeProto, p: Predicate, opset: int) -> str | None:
    actual = _attr_value(graph, node, p.name, opset)
    if actual is None:    # absent, and the schema gives no default
        return None if p.compare == "!=" else f"{p.name} is not set"
    values = p.value if p.compare == "in" else (p.value,)
    wanted = [_converted(node.op_type, p.name, v, opset) for v in values]
    holds = actual in [tuple(w) if isinstance(w, list) else w for w in wanted]
    # strings quoted as the decline reasons of Python rewrites write them
    want = _quoted(p.value) if p.compare != "in" else show(p.value)
    return _verdict(p, holds, f"{p.name} is", _quoted(actual), want)


def _test_input(graph: Graph, node: onnx.NodeProto, p: Predicate) -> str | None:
    index = p.index or 0
    tensor = node.input[index] if index < len(node.input) else ""
    value = graph.const_value(tensor) if tensor else None
    if p.kind == "constant":
        if p.compare == "is" and value is None:
            return f"input {index} is not a constant" if tensor else f"input {index} is absent"
        if p.compare == "is not" and value is not None:
            return f"input {index} is a constant"
        return None
    if value is None:
        return f"input {index} is not a constant"
    want = np.asarray(p.value, dtype=np.float64)
    got = value.astype(np.float64)
    equal = (got.size == want.size and np.array_equal(got.reshape(-1), want.reshape(-1))) \
        if want.ndim else (got.size > 0 and bool(np.all(got == want)))
    if p.compare == "==" and not equal:
        return f"input {index} is {_show_array(value)}, not {show(p.value)}"
    if p.compare == "!=" and equal:
        return f"input {index} is {_show_array(value)}"
    return None


def _forget_type(graph: Graph, tensors) -> None:
    """Drop value_info of tensors whose type a rule may have changed (inference redoes it)."""
    names = set(tensors)
    kept = [v for v in graph.graph.value_info if v.name not in names]
    if len(kept) != len(graph.graph.value_info):
        del graph.graph.value_info[:]
        graph.graph.value_info.extend(kept)


def _quoted(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else show(value)


def _show_array(value: np.ndarray) -> str:
    flat = value.reshape(-1).tolist()
    if len(flat) == 1 and value.ndim == 0:
        return show(flat[0])
    return show(tuple(flat[:8])) + (" ..." if len(flat) > 8 else "")
