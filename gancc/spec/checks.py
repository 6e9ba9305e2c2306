"""Checks of a spec's rules against the ONNX operator schemas (onnx.defs).

Each failure is a SpecError at the token, with the nearest valid name as a hint:
- when the spec is parsed (`check_rule`): op types exist in some opset, attributes exist in
  some version of the op, values have the attribute's type, labels name a node of the match;
- against a model's opset (`check_at_opset`, from `gancc check`, the build and the rule engine):
  the op exists at that opset and has those attributes there (Pad's `pads` is an input from 11).

The tables and conversions here (dtype names, `convert_value`) are also what the rule engine
(gancc.passes.rules) uses at run time, so a value means the same when checked and when applied.
Checks that need gancc's registries (architectures, rewrites) are not the front end's: they
are in gancc.checks and gancc.passes.factory.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Any

from onnx import defs

from gancc.dtypes import ONNX_TYPES
from gancc.errors import SpecError, Span, did_you_mean
from gancc.spec.model import Action, Call, NodePattern, RuleSpec

AttrType = defs.OpSchema.AttrType

# dtype names a rule may write (`dtype == float32`, `Cast(to=float16)`): gancc's one table
DTYPES = ONNX_TYPES


# -- the ONNX schemas ---------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _op_names() -> tuple[str, ...]:
    return tuple(sorted({s.name for s in defs.get_all_schemas_with_history()
                         if s.domain in ("", "ai.onnx")}))


@lru_cache(maxsize=None)
def _attributes_any_version(op: str) -> dict[str, Any]:
    """Every attribute some version of `op` has, with its type in the newest such version."""
    found: dict[str, Any] = {}
    versions = sorted((s for s in defs.get_all_schemas_with_history()
                       if s.name == op and s.domain in ("", "ai.onnx")),
                      key=lambda s: s.since_version)
    for schema in versions:
        for name, attr in schema.attributes.items():
            found[name] = attr
    return found


def op_schema(op: str, opset: int):
    """The schema of `op` at `opset`, or None when the op does not exist there."""
    try:
        return defs.get_schema(op, opset, "")
    except defs.SchemaError:
        return None


def _first_opset(op: str) -> int | None:
    versions = [s.since_version for s in defs.get_all_schemas_with_history()
                if s.name == op and s.domain in ("", "ai.onnx")]
    return min(versions) if versions else None


def check_op(op: str, span: Span) -> None:
    if not defs.has(op):
        raise SpecError(f"unknown ONNX operator '{op}'", span,
                        did_you_mean(op, _op_names()) or "op types are case-sensitive, e.g. Conv")


def _check_attr(op: str, name: str, span: Span, attrs: dict[str, Any] | None = None,
                where: str = "") -> Any:
    attrs = _attributes_any_version(op) if attrs is None else attrs
    if name not in attrs:
        listed = (f"{op}{where} has attributes: {', '.join(sorted(attrs))}" if attrs
                  else f"{op}{where} has no attributes")
        hint = did_you_mean(name, attrs) or listed
        raise SpecError(f"{op}{where} has no attribute '{name}'", span, hint)
    return attrs[name]


def check_attribute(ops: str, name: str, span: Span, value: Any = None) -> None:
    """For pattern rules (gancc.spec.pattern_checks): attribute `name` exists on one of the op
    types `ops` ("Identity|Dropout") in some version, and `value` (when not None) has its
    type. SpecError at `span`, with the nearest name, otherwise."""
    names = ops.split("|")
    for op in names:
        attrs = _attributes_any_version(op)
        if name in attrs:
            if value is not None:
                _typed(op, name, attrs[name], value, span)
            return
    _check_attr(names[0], name, span)


# -- values -------------------------------------------------------------------------------------

_TYPE_WORDS = {AttrType.INT: "an integer", AttrType.FLOAT: "a number",
               AttrType.STRING: 'a "string"', AttrType.INTS: "a list of integers",
               AttrType.FLOATS: "a list of numbers", AttrType.STRINGS: 'a list of "strings"'}
_ELEMENTS = {AttrType.INTS: AttrType.INT, AttrType.FLOATS: AttrType.FLOAT,
             AttrType.STRINGS: AttrType.STRING}


def _convert_one(kind: Any, v: Any) -> Any:
    if kind == AttrType.INT:
        if isinstance(v, bool):
            return int(v)
        if isinstance(v, int):
            return v
        if isinstance(v, str) and v in DTYPES:
            return DTYPES[v]
    elif kind == AttrType.FLOAT:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    elif kind == AttrType.STRING:
        if isinstance(v, str):
            return v
    raise ValueError(_TYPE_WORDS[kind])


def convert_value(attr_type: Any, value: Any) -> Any:
    """`value` as written, converted to what an attribute of `attr_type` holds.

    Raises ValueError with what the attribute takes. A dtype name (float16) is accepted for an
    integer attribute, since those hold TensorProto element types (Cast's `to`)."""
    if attr_type in (AttrType.INT, AttrType.FLOAT, AttrType.STRING):
        if isinstance(value, tuple):
            raise ValueError(_TYPE_WORDS[attr_type])
        return _convert_one(attr_type, value)
    element = _ELEMENTS.get(attr_type)
    if element is None:
        raise ValueError(f"a {str(attr_type).split('.')[-1]}, which a rule cannot write")
    if not isinstance(value, tuple):
        raise ValueError(_TYPE_WORDS[attr_type])
    try:
        return [_convert_one(element, v) for v in value]
    except ValueError:
        raise ValueError(_TYPE_WORDS[attr_type]) from None


def _typed(op: str, attr: str, attr_schema: Any, value: Any, span: Span) -> Any:
    try:
        return convert_value(attr_schema.type, value)
    except ValueError as err:
        hint = ("dtype names (float16, int64) stand for integer element types"
                if attr_schema.type == AttrType.INT and isinstance(value, str) else None)
        raise SpecError(f"attribute '{attr}' of {op} takes {err}, got {show(value)}", span,
                        hint) from None


def show(value: Any) -> str:
    """A value as a spec writes it: `"text"`, `[1, 2]`, `true`."""
    if isinstance(value, tuple):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"' if isinstance(value, str) else repr(value)


# -- a rule, when the spec is parsed ------------------------------------------------------------

def _check_label(rule: RuleSpec, label: str | None, span: Span) -> NodePattern:
    labels = [n.label for n in rule.nodes if n.label]
    if label is not None and label not in labels:
        raise SpecError(f"no node of this match is labelled '{label}'", span,
                        did_you_mean(label, labels) or
                        (f"labels: {', '.join(labels)}" if labels else
                         "label a node with `as`, e.g. `match Conv as c -> Relu`"))
    return rule.node(label)


def check_rule(rule: RuleSpec) -> RuleSpec:
    """The checks that need no opset: labels, op types, attribute names and value types.
    Returns the rule with `dtype` predicates told apart from attribute predicates."""
    seen: set[str] = set()
    for n in rule.nodes:
        if n.label in seen:
            raise SpecError(f"label '{n.label}' is used twice in this match", n.span)
        if n.label:
            seen.add(n.label)
    predicates = tuple(_check_predicate(rule, p) for p in rule.predicates)
    _check_actions(rule)
    return dataclasses.replace(rule, predicates=predicates)


def _check_predicate(rule: RuleSpec, p):
    node = _check_label(rule, p.label, p.span)
    attrs = _attributes_any_version(node.op)
    values = p.value if p.compare == "in" else (p.value,)
    if p.kind == "attr" and p.name == "dtype" and "dtype" not in attrs:
        # `dtype` is input 0's element type, unless the op has an attribute of that name
        for v in values:
            if not isinstance(v, str) or v not in DTYPES:
                raise SpecError(f"unknown dtype {show(v)}", p.value_span,
                                did_you_mean(str(v), DTYPES) or "e.g. float32, float16, int64")
        return dataclasses.replace(p, kind="dtype")
    if p.kind == "attr":
        attr = _check_attr(node.op, p.name, p.span, attrs)
        for v in values:
            _typed(node.op, p.name, attr, v, p.value_span)
    return p


def _check_actions(rule: RuleSpec) -> None:
    ops = [n.op for n in rule.nodes]          # op types as the actions change them
    bypassed: dict[int, Action] = {}
    for a in rule.actions:
        _check_label(rule, a.label, a.span if a.kind in ("set", "remove")
                     else a.value_span or a.span)
        i = rule.index(a.label)
        if i in bypassed:
            raise SpecError(f"this node is bypassed at line {bypassed[i].span.line}, so it has "
                            "nothing left to change", a.span,
                            "put `bypass` last, or drop the other actions on this node")
        if a.kind in ("set", "remove"):
            attr = _check_attr(ops[i], a.attr, a.span)
            if a.kind == "set":
                _typed(ops[i], a.attr, attr, a.value, a.value_span)
        elif a.kind == "op":
            ops[i] = a.value
        elif a.kind == "insert":
            _check_insert(a.call)
        elif a.kind == "bypass":
            bypassed[i] = a


def _check_insert(call: Call, schema: Any = None, where: str = "") -> None:
    attrs = schema.attributes if schema is not None else _attributes_any_version(call.name)
    for arg in call.args:
        if arg.name is None:
            raise SpecError("attributes of an inserted node are written name=value", arg.span,
                            f"e.g. {call.name}(to=float16)")
        attr = _check_attr(call.name, arg.name, arg.span, attrs, where)
        _typed(call.name, arg.name, attr, arg.value, arg.span)
    given = {a.name for a in call.args}
    missing = [name for name, a in attrs.items() if a.required and name not in given]
    if missing:
        raise SpecError(f"{call.name} needs attribute {', '.join(repr(m) for m in missing)}",
                        call.span, f"e.g. {call.name}({missing[0]}=...)")
    if schema is not None and (schema.min_input > 1 or schema.min_output > 1):
        raise SpecError(f"{call.name} takes {schema.min_input} inputs; only one-input ops can "
                        "be inserted", call.span)


# -- a rule, at a model's opset -----------------------------------------------------------------

def check_at_opset(rule: RuleSpec, opset: int) -> None:
    """The rule against the schemas at `opset` (a model's): ops exist there, with those
    attributes and types. SpecError at the offending token."""
    at = f" at opset {opset}"

    def schema_for(op: str, span: Span):
        schema = op_schema(op, opset)
        if schema is None:
            first = _first_opset(op)
            raise SpecError(f"{op} does not exist{at}", span,
                            f"it is defined from opset {first}" if first else None)
        return schema

    for n in rule.nodes:
        schema_for(n.op, n.span)
    for p in rule.predicates:
        if p.kind == "attr":
            op = rule.node(p.label).op
            attr = _check_attr(op, p.name, p.span, schema_for(op, p.span).attributes, at)
            for v in (p.value if p.compare == "in" else (p.value,)):
                _typed(op, p.name, attr, v, p.value_span)
    ops = [n.op for n in rule.nodes]
    for a in rule.actions:
        i = rule.index(a.label)
        if a.kind in ("set", "remove"):
            attr = _check_attr(ops[i], a.attr, a.span, schema_for(ops[i], a.span).attributes, at)
            if a.kind == "set":
                _typed(ops[i], a.attr, attr, a.value, a.value_span)
        elif a.kind == "op":
            schema_for(a.value, a.span)
            ops[i] = a.value
        elif a.kind == "insert":
            _check_insert(a.call, schema_for(a.call.name, a.call.span), at)
