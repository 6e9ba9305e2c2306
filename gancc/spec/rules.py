"""Declarative rewrite rules written in a spec, and their lowering onto the pass machinery.

    rule pads-to-zero "Reflect padding becomes zero padding" {
        match Pad where mode == "reflect"
        set mode = "constant"
    }

A rule matches one node, or a short chain `A -> B -> C` (each node's first output read only by
the next), filtered by predicates on attributes, constant inputs and the input dtype; its
actions edit the last node of the chain, or a node named with `as LABEL`. docs/spec.md
("Rules") is the reference.

Each rule becomes a Rewrite subclass made at run time (`rule_class`), so it runs through the
same pass manager as a Python rewrite: the same PassResult statistics, provenance tags,
verification after each pass, idempotence check and `gancc explain`. Its `source` is the
spec's file:line.

Rules are checked twice against the ONNX operator schemas (onnx.defs), each failure a
SpecError at the token with the nearest valid name as a hint:
- when the spec is parsed: op types exist in some opset, attributes exist in some version of
  the op, values have the attribute's type;
- against each model's opset (`check_at_opset`, from `gancc check` and the build): the op
  exists at that opset and has those attributes there (Pad's `pads` is an input since 11).

Rules belong to their spec file, not to the global registry: two specs may each declare a
rule of the same name, but a rule may not take the name of a registered (Python) rewrite.
"""

from __future__ import annotations

import dataclasses
import re
import weakref
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from lark import Token, v_args
from onnx import defs, helper

from gancc.errors import SpecError, Span, did_you_mean
from gancc.graph import Graph, provenance
from gancc.passes.base import Rewrite
from gancc.spec import lower
from gancc.spec.model import Call

AttrType = defs.OpSchema.AttrType
_KEBAB = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*$")     # as registry names

# dtype names a rule may write (`dtype == float32`, `Cast(to=float16)`), onnx's own plus the
# spelling of the spec's `input` statement
DTYPES: dict[str, int] = {
    name.lower(): value for name, value in onnx.TensorProto.DataType.items()
    if name != "UNDEFINED"
}
DTYPES.update({"float32": onnx.TensorProto.FLOAT, "float64": onnx.TensorProto.DOUBLE})
_DTYPE_NAMES = {value: name for name, value in DTYPES.items()}
_DTYPE_NAMES[onnx.TensorProto.FLOAT] = "float32"
_DTYPE_NAMES[onnx.TensorProto.DOUBLE] = "float64"


# -- the rule as parsed ---------------------------------------------------------------------

@dataclass(frozen=True)
class NodePattern:
    """One node of `match A as a -> B`: its op type and optional label."""

    op: str
    label: str | None
    span: Span


@dataclass(frozen=True)
class Predicate:
    """One `where` condition, on the node `label` (None: the last node of the chain).

    kind: "attr" (attribute compared with a value), "dtype" (element type of input 0),
    "constant" (`input[i] is [not] constant`), "input" (`input[i] == value`)."""

    kind: str
    label: str | None
    name: str                 # attribute name; "dtype"; "input"
    compare: str              # "==", "!=", "in", "is", "is not"
    value: Any
    index: int | None
    span: Span
    value_span: Span


@dataclass(frozen=True)
class Action:
    """One action: set / remove an attribute, op, bypass, insert before/after, rename."""

    kind: str
    label: str | None
    span: Span
    attr: str | None = None
    value: Any = None
    where: str | None = None  # insert: "before" | "after"
    call: Call | None = None  # insert: the new node, `Cast(to=10)`
    value_span: Span | None = None


@dataclass(frozen=True)
class RuleSpec:
    name: str
    summary: str
    nodes: tuple[NodePattern, ...]
    predicates: tuple[Predicate, ...]
    actions: tuple[Action, ...]
    span: Span
    name_span: Span
    text: str = ""            # the rule as written, for `gancc passes NAME`

    @property
    def source(self) -> str:
        return f"{self.span.file}:{self.span.line}"

    def node(self, label: str | None) -> NodePattern:
        if label is None:
            return self.nodes[-1]
        return next(n for n in self.nodes if n.label == label)


@dataclass(frozen=True)
class RewritesDir:
    """`rewrites "folder/"`: Python rewrites to load before the pipelines are checked."""

    path: Path
    span: Span


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


def _schema(op: str, opset: int):
    """The schema of `op` at `opset`, or None when the op does not exist there."""
    try:
        return defs.get_schema(op, opset, "")
    except defs.SchemaError:
        return None


def _first_opset(op: str) -> int | None:
    versions = [s.since_version for s in defs.get_all_schemas_with_history()
                if s.name == op and s.domain in ("", "ai.onnx")]
    return min(versions) if versions else None


def _check_op(op: str, span: Span) -> None:
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


_TYPE_WORDS = {AttrType.INT: "an integer", AttrType.FLOAT: "a number",
               AttrType.STRING: 'a "string"', AttrType.INTS: "a list of integers",
               AttrType.FLOATS: "a list of numbers", AttrType.STRINGS: 'a list of "strings"'}


def convert_value(attr_type: Any, value: Any) -> Any:
    """`value` as written, converted to what an attribute of `attr_type` holds.

    Raises ValueError with what the attribute takes. A dtype name (float16) is accepted for an
    integer attribute, since those hold TensorProto element types (Cast's `to`)."""
    def one(kind: Any, v: Any) -> Any:
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

    if attr_type in (AttrType.INT, AttrType.FLOAT, AttrType.STRING):
        if isinstance(value, tuple):
            raise ValueError(_TYPE_WORDS[attr_type])
        return one(attr_type, value)
    element = {AttrType.INTS: AttrType.INT, AttrType.FLOATS: AttrType.FLOAT,
               AttrType.STRINGS: AttrType.STRING}.get(attr_type)
    if element is None:
        raise ValueError(f"a {str(attr_type).split('.')[-1]}, which a rule cannot write")
    if not isinstance(value, tuple):
        raise ValueError(_TYPE_WORDS[attr_type])
    try:
        return [one(element, v) for v in value]
    except ValueError:
        raise ValueError(_TYPE_WORDS[attr_type]) from None


def _typed(op: str, attr: str, attr_schema: Any, value: Any, span: Span) -> Any:
    try:
        return convert_value(attr_schema.type, value)
    except ValueError as err:
        hint = ("dtype names (float16, int64) stand for integer element types"
                if attr_schema.type == AttrType.INT and isinstance(value, str) else None)
        raise SpecError(f"attribute '{attr}' of {op} takes {err}, got {_show(value)}", span,
                        hint) from None


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"' if isinstance(value, str) else repr(value)


# -- parse-time checks: the parser's transformer builds RuleSpecs with these ------------------

class RuleTransformer:
    """Transformer methods for `rule` and `rewrites` (mixed into the parser's _ToModel, which
    provides _span, _tok_span and spec_dir)."""

    @v_args(meta=True)
    def rewrites_dir(self, meta, children):
        (tok,) = children
        return RewritesDir(self.spec_dir / tok[1:-1], self._span(meta))

    @v_args(meta=True)
    def rule_node(self, meta, children):
        op = children[0]
        span = self._tok_span(op)
        _check_op(str(op), span)
        return NodePattern(str(op), str(children[1]) if len(children) > 1 else None, span)

    def _ref(self, tok: Token) -> tuple[str | None, str, Span]:
        """`c.mode` -> ("c", "mode"); `mode` -> (None, "mode")."""
        label, dot, name = str(tok).partition(".")
        if not dot:
            return None, label, self._tok_span(tok)
        return label, name, self._tok_span(tok)

    @v_args(meta=True)
    def pred_compare(self, meta, children):
        ref, cmp, value = children
        label, name, span = self._ref(ref)
        return Predicate("attr", label, name, str(cmp), lower.plain(value), None, span, value.span)

    @v_args(meta=True)
    def pred_in(self, meta, children):
        ref, values = children
        label, name, span = self._ref(ref)
        return Predicate("attr", label, name, "in", lower.plain(values), None, span, values.span)

    def pred_not(self, children):
        return "not"

    @v_args(meta=True)
    def pred_constant(self, meta, children):
        ref, index, *negated = children
        label, name, span = self._ref(ref)
        self._input_ref(name, span)
        return Predicate("constant", label, "input", "is not" if negated else "is", None,
                         int(index), span, self._span(meta))

    @v_args(meta=True)
    def pred_input(self, meta, children):
        ref, index, cmp, value = children
        label, name, span = self._ref(ref)
        self._input_ref(name, span)
        plain = lower.plain(value)
        flat = plain if isinstance(plain, tuple) else (plain,)
        if any(isinstance(v, (bool, str, tuple)) or not isinstance(v, (int, float)) for v in flat):
            raise SpecError(f"input[{index}] is compared with numbers, got {_show(plain)}",
                            value.span, "e.g. `input[1] == 0` or `input[1] == [0, 0, 1, 1]`")
        return Predicate("input", label, "input", str(cmp), plain, int(index), span, value.span)

    @staticmethod
    def _input_ref(name: str, span: Span) -> None:
        if name != "input":
            raise SpecError(f"'{name}[...]' is not a predicate", span,
                            "inputs are written input[i], e.g. `input[1] is constant`")

    def rule_target(self, children):
        (tok,) = children
        return (str(tok), self._tok_span(tok))

    @v_args(meta=True)
    def act_set(self, meta, children):
        ref, value = children
        label, name, span = self._ref(ref)
        return Action("set", label, span, attr=name, value=lower.plain(value),
                      value_span=value.span)

    @v_args(meta=True)
    def act_remove(self, meta, children):
        label, name, span = self._ref(children[0])
        return Action("remove", label, span, attr=name)

    @v_args(meta=True)
    def act_op(self, meta, children):
        op, *target = children
        span = self._tok_span(op)
        _check_op(str(op), span)
        return Action("op", target[0][0] if target else None, span, value=str(op),
                      value_span=target[0][1] if target else None)

    @v_args(meta=True)
    def act_bypass(self, meta, children):
        return Action("bypass", children[0][0] if children else None, self._span(meta),
                      value_span=children[0][1] if children else None)

    @v_args(meta=True)
    def act_insert(self, meta, children):
        where, call, *target = children
        _check_op(call.name, call.span)
        return Action("insert", target[0][0] if target else None, self._span(meta),
                      where=str(where), call=call, value_span=target[0][1] if target else None)

    @v_args(meta=True)
    def act_rename(self, meta, children):
        tok, *target = children
        name = tok[1:-1]
        if not name:
            raise SpecError("a node name cannot be empty", self._tok_span(tok))
        return Action("rename", target[0][0] if target else None, self._tok_span(tok),
                      value=name, value_span=target[0][1] if target else None)

    @v_args(meta=True)
    def rule_match(self, meta, children):
        nodes = tuple(c for c in children if isinstance(c, NodePattern))
        return nodes, tuple(c for c in children if isinstance(c, Predicate))

    @v_args(meta=True)
    def rule_def(self, meta, children):
        name, *rest = children
        summary = ""
        if rest and isinstance(rest[0], Token):
            summary = lower.plain(self.string([rest.pop(0)]))
        (nodes, predicates), *actions = rest
        if not _KEBAB.match(str(name)):
            raise SpecError(f"rule name '{name}' is not kebab-case", self._tok_span(name),
                            "use lower-case words joined by '-', e.g. drop-dropout")
        rule = RuleSpec(str(name), summary, nodes, predicates, tuple(actions), self._span(meta),
                        self._tok_span(name))
        return _check_rule(rule)


def _check_label(rule: RuleSpec, label: str | None, span: Span) -> NodePattern:
    labels = [n.label for n in rule.nodes if n.label]
    if label is not None and label not in labels:
        raise SpecError(f"no node of this match is labelled '{label}'", span,
                        did_you_mean(label, labels) or
                        (f"labels: {', '.join(labels)}" if labels else
                         "label a node with `as`, e.g. `match Conv as c -> Relu`"))
    return rule.node(label)


def _index(rule: RuleSpec, label: str | None) -> int:
    """Position in the chain of the node `label` names (None: the last node)."""
    if label is None:
        return len(rule.nodes) - 1
    return next(i for i, n in enumerate(rule.nodes) if n.label == label)


def _check_rule(rule: RuleSpec) -> RuleSpec:
    """The checks that need no opset: labels, op types, attribute names and value types.
    Returns the rule with `dtype` predicates told apart from attribute predicates."""
    seen: set[str] = set()
    for n in rule.nodes:
        if n.label in seen:
            raise SpecError(f"label '{n.label}' is used twice in this match", n.span)
        if n.label:
            seen.add(n.label)
    predicates = []
    for p in rule.predicates:
        node = _check_label(rule, p.label, p.span)
        attrs = _attributes_any_version(node.op)
        if p.kind == "attr" and p.name == "dtype" and "dtype" not in attrs:
            # `dtype` is input 0's element type, unless the op has an attribute of that name
            for v in (p.value if p.compare == "in" else (p.value,)):
                if not isinstance(v, str) or v not in DTYPES:
                    raise SpecError(f"unknown dtype {_show(v)}", p.value_span,
                                    did_you_mean(str(v), DTYPES) or "e.g. float32, float16, int64")
            p = dataclasses.replace(p, kind="dtype")
        elif p.kind == "attr":
            attr = _check_attr(node.op, p.name, p.span, attrs)
            for v in (p.value if p.compare == "in" else (p.value,)):
                _typed(node.op, p.name, attr, v, p.value_span)
        predicates.append(p)
    ops = [n.op for n in rule.nodes]          # op types as the actions change them
    bypassed: dict[int, Action] = {}
    for a in rule.actions:
        _check_label(rule, a.label, a.span if a.kind in ("set", "remove")
                     else a.value_span or a.span)
        i = _index(rule, a.label)
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
    return dataclasses.replace(rule, predicates=tuple(predicates))


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


def check_at_opset(rule: RuleSpec, opset: int) -> None:
    """The rule against the schemas at `opset` (a model's): ops exist there, with those
    attributes and types. SpecError at the offending token."""
    at = f" at opset {opset}"

    def schema_for(op: str, span: Span):
        schema = _schema(op, opset)
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
        i = _index(rule, a.label)
        if a.kind in ("set", "remove"):
            attr = _check_attr(ops[i], a.attr, a.span, schema_for(ops[i], a.span).attributes, at)
            if a.kind == "set":
                _typed(ops[i], a.attr, attr, a.value, a.value_span)
        elif a.kind == "op":
            schema_for(a.value, a.span)
            ops[i] = a.value
        elif a.kind == "insert":
            _check_insert(a.call, schema_for(a.call.name, a.call.span), at)


def finish(items: tuple, text: str, path: str) -> tuple[tuple, tuple[RuleSpec, ...]]:
    """After the transform: load `rewrites` folders, check rule names, give every model the
    file's rules. Returns (models, rules)."""
    from gancc.passes import registry

    models = tuple(i for i in items if not isinstance(i, (RuleSpec, RewritesDir)))
    rules = tuple(i for i in items if isinstance(i, RuleSpec))
    for folder in (i for i in items if isinstance(i, RewritesDir)):
        try:
            registry.load_dir(folder.path)
        except registry.RegistryError as err:
            raise SpecError(err.message, folder.span, err.hint or
                            "the path is relative to the spec file's folder", text) from None
    if rules:
        lines = text.split("\n")
        known = registry.all_rewrites()
        seen: dict[str, RuleSpec] = {}
        for i, rule in enumerate(rules):
            if rule.name in known:
                raise SpecError(f"rule '{rule.name}' has the name of the rewrite defined at "
                                f"{known[rule.name].source}", rule.name_span,
                                "rename the rule", text)
            if rule.name in seen:
                raise SpecError(f"rule '{rule.name}' is declared twice", rule.name_span,
                                f"the first is at line {seen[rule.name].span.line}", text)
            seen[rule.name] = rule
            end = rule.span.end_line or rule.span.line
            written = "\n".join(lines[rule.span.line - 1:end])
            rules = rules[:i] + (dataclasses.replace(rule, text=written),) + rules[i + 1:]
        models = tuple(dataclasses.replace(m, rules=rules) for m in models)
    return models, rules


# -- lowering: a rule as a Rewrite ----------------------------------------------------------

_CLASSES: dict[RuleSpec, type[Rewrite]] = {}


def rule_class(rule: RuleSpec) -> type[Rewrite]:
    """The Rewrite subclass for `rule` (made once per rule)."""
    cls = _CLASSES.get(rule)
    if cls is None:
        doc = (rule.summary or f"Spec rule {rule.name} ({rule.source})") + "\n\n" + \
            (rule.text or "") + f"\n\nDeclared at {rule.source}."
        cls = type("Rule_" + rule.name.replace("-", "_"), (RuleRewrite,),
                   {"name": rule.name, "anchor": rule.nodes[0].op, "exact": False,
                    "source": rule.source, "rule": rule, "__doc__": doc,
                    "__module__": __name__})
        cls = dataclasses.dataclass(frozen=True)(cls)
        _CLASSES[rule] = cls
    return cls


def make_rule_pass(rule: RuleSpec, opset: int | None = None) -> Rewrite:
    if opset is not None:
        check_at_opset(rule, opset)
    return rule_class(rule)()


def find(rules: tuple[RuleSpec, ...], name: str) -> RuleSpec | None:
    return next((r for r in rules if r.name == name), None)


def make_pass(name: str, options: dict[str, Any] | None, rules: tuple[RuleSpec, ...] = ()
              ) -> Rewrite:
    """A spec rule named `name` if `rules` has one, else the registered rewrite."""
    from gancc.passes import registry

    rule = find(rules, name)
    if rule is None:
        return registry.make_pass(name, options)
    if options:
        raise registry.OptionError(f"rule '{name}' takes no options",
                                   f"it is declared at {rule.source}")
    return make_rule_pass(rule)


# Per-graph facts a rule computes once per pass: node positions, known element types.
_POSITIONS: "weakref.WeakKeyDictionary[Graph, dict[int, onnx.NodeProto | None]]" = \
    weakref.WeakKeyDictionary()
_DTYPES: "weakref.WeakKeyDictionary[Graph, dict[str, int]]" = weakref.WeakKeyDictionary()
_CHECKED: set[tuple[RuleSpec, int]] = set()


def _opset(graph: Graph) -> int:
    return next((o.version for o in graph.model.opset_import if o.domain in ("", "ai.onnx")), 1)


def _next_node(graph: Graph, node: onnx.NodeProto) -> onnx.NodeProto | None:
    """The node after `node` in graph order (None: it is the last), for `insert after`."""
    following = _POSITIONS.get(graph)
    if following is None:
        nodes = graph.nodes()
        following = {id(a): b for a, b in zip(nodes, nodes[1:] + [None])}
        _POSITIONS[graph] = following
    return following.get(id(node))


def _elem_types(graph: Graph) -> dict[str, int]:
    """tensor -> element type, from the graph's declarations and shape inference."""
    known = _DTYPES.get(graph)
    if known is None:
        from gancc.graph.light import skeleton_bytes

        g = graph.graph
        known = {}
        try:   # shape inference on the weight-less skeleton: cheap, and may fail harmlessly
            inferred = onnx.shape_inference.infer_shapes(skeleton_bytes(graph.model)).graph
            for v in inferred.value_info:
                if v.type.tensor_type.elem_type:
                    known[v.name] = v.type.tensor_type.elem_type
        except Exception:
            pass
        for v in list(g.input) + list(g.output) + list(g.value_info):
            if v.type.tensor_type.elem_type:
                known[v.name] = v.type.tensor_type.elem_type
        for t in g.initializer:
            known[t.name] = t.data_type
        _DTYPES[graph] = known
    return known


def _attr_value(graph: Graph, node: onnx.NodeProto, name: str, opset: int) -> Any:
    value = graph.attr(node, name)
    if value is None:
        schema = _schema(node.op_type, opset)
        attr = schema.attributes.get(name) if schema is not None else None
        if attr is not None and attr.default_value.type:
            value = helper.get_attribute_value(attr.default_value)
            value = value.decode() if isinstance(value, bytes) else value
    if isinstance(value, (list, tuple)):
        return tuple(v.decode() if isinstance(v, bytes) else v for v in value)
    return value


class RuleRewrite(Rewrite):
    """A spec rule, run by the pass manager as any rewrite is. See the module docstring."""

    rule: Any = None          # the RuleSpec (a class attribute, set by rule_class)

    def match(self, graph: Graph, node: onnx.NodeProto):
        rule: RuleSpec = self.rule
        opset = _opset(graph)
        if (rule, opset) not in _CHECKED:      # a rule the graph's opset cannot run is an error
            check_at_opset(rule, opset)
            _CHECKED.add((rule, opset))
        # the chain: each node's first output read by the next node only
        chain = [node]
        for pattern in rule.nodes[1:]:
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
        nodes = {p.label: n for p, n in zip(rule.nodes, chain) if p.label}
        nodes[None] = chain[-1]
        for p in rule.predicates:
            reason = self._test(graph, nodes[p.label], p, opset)
            if reason is not None:
                return self.decline(reason)
        return self._check_actions(graph, nodes, opset)

    def _test(self, graph: Graph, node: onnx.NodeProto, p: Predicate, opset: int) -> str | None:
        """Why `node` fails predicate `p`, or None when it holds."""
        if p.kind in ("attr", "dtype"):
            values = p.value if p.compare == "in" else (p.value,)
            if p.kind == "dtype":
                elem = _elem_types(graph).get(node.input[0]) if node.input else None
                if elem is None:
                    return "the dtype of input 0 is not known"
                holds = elem in [DTYPES[v] for v in values]
                what, shown = "input 0 is", _DTYPE_NAMES.get(elem, str(elem))
                want = p.value if p.compare != "in" else "[" + ", ".join(values) + "]"
            else:
                actual = _attr_value(graph, node, p.name, opset)
                if actual is None:    # absent, and the schema gives no default
                    return None if p.compare == "!=" else f"{p.name} is not set"
                attr = _schema(node.op_type, opset).attributes[p.name]
                wanted = [convert_value(attr.type, v) for v in values]
                holds = actual in [tuple(w) if isinstance(w, list) else w for w in wanted]
                # strings quoted as the decline reasons of Python rewrites write them
                what, shown = f"{p.name} is", _quoted(actual)
                want = _quoted(p.value) if p.compare != "in" else _show(p.value)
            if p.compare == "==" and not holds:
                return f"{what} {shown}, not {want}"
            if p.compare == "!=" and holds:
                return f"{what} {shown}"
            if p.compare == "in" and not holds:
                return f"{what} {shown}, not one of {want}"
            return None
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
            return f"input {index} is {_show_array(value)}, not {_show(p.value)}"
        if p.compare == "!=" and equal:
            return f"input {index} is {_show_array(value)}"
        return None

    def _check_actions(self, graph: Graph, nodes: dict, opset: int):
        """Declines for actions that cannot apply here, or that would change nothing."""
        rule: RuleSpec = self.rule
        noop = True
        op_types = {id(n): n.op_type for n in nodes.values()}   # as the `op` actions leave them
        for a in rule.actions:
            target = nodes[a.label]
            if a.kind == "bypass":
                out = target.output[0] if target.output else ""
                if not target.input or not target.input[0]:
                    return self.decline(f"'{target.name}' has no input 0 to bypass to")
                if graph.is_graph_output(out):
                    return self.decline(f"the {target.op_type} output is a graph output")
                for extra in target.output[1:]:
                    if extra and (graph.consumers(extra) or graph.is_graph_output(extra)):
                        return self.decline(f"output '{extra}' of the {target.op_type} is read")
                noop = False
            elif a.kind == "insert":
                if self.name in provenance(target):
                    return self.decline(f"'{target.name}' was already rewritten by {self.name}")
                noop = False
            elif a.kind == "set":
                current = graph.attr(target, a.attr)
                current = tuple(current) if isinstance(current, list) else current
                value = self._value(op_types[id(target)], a.attr, a.value, opset)
                if current != (tuple(value) if isinstance(value, list) else value):
                    noop = False
            elif a.kind == "remove":
                if graph.attr(target, a.attr) is not None:
                    noop = False
            elif a.kind == "op":
                op_types[id(target)] = a.value
                if target.op_type != a.value:
                    noop = False
                    schema = _schema(a.value, opset)
                    removed = {x.attr for x in rule.actions if x.kind == "remove"
                               and nodes[x.label] is target}
                    for attribute in target.attribute:
                        if attribute.name not in schema.attributes and \
                                attribute.name not in removed:
                            return self.decline(f"{a.value} has no attribute "
                                                f"'{attribute.name}' (of '{target.name}')")
            elif a.kind == "rename":
                if target.name != a.value:
                    noop = False
        if noop:
            return self.decline("already rewritten: the actions would change nothing")
        return nodes

    @staticmethod
    def _value(op: str, attr: str, value: Any, opset: int) -> Any:
        schema = _schema(op, opset)
        return convert_value(schema.attributes[attr].type, value)

    def apply(self, graph: Graph, node: onnx.NodeProto, nodes: dict) -> None:
        rule: RuleSpec = self.rule
        opset = _opset(graph)
        touched: list[onnx.NodeProto] = []
        for a in rule.actions:
            target = nodes[a.label]
            if a.kind == "set":
                schema = _schema(target.op_type, opset).attributes[a.attr]
                value = convert_value(schema.type, a.value)
                graph.remove_attr(target, a.attr)
                target.attribute.append(helper.make_attribute(a.attr, value,
                                                              attr_type=schema.type.value))
            elif a.kind == "remove":
                graph.remove_attr(target, a.attr)
            elif a.kind == "op":
                target.op_type = a.value
                _forget_type(graph, target.output)
            elif a.kind == "rename":
                target.name = graph.unique_name(a.value)
            elif a.kind == "bypass":
                # the readers, rewired, carry the rule's name (the removed node cannot)
                touched.extend(graph.consumers(target.output[0]))
                graph.replace_uses(target.output[0], target.input[0])
                graph.remove_node(target)
            elif a.kind == "insert":
                self._insert(graph, target, a, opset)
            if a.kind != "bypass":
                touched.append(target)
        for target in touched:
            if not graph.is_removed(target):
                graph.tag(target, self.name)

    def _insert(self, graph: Graph, target: onnx.NodeProto, a: Action, opset: int) -> None:
        schema = _schema(a.call.name, opset)
        attrs = {arg.name: convert_value(schema.attributes[arg.name].type, arg.value)
                 for arg in a.call.args}
        if a.where == "before":
            original = target.input[0]
            fresh = graph.unique_name(f"{original}_{a.call.name.lower()}")
            graph.add_node(a.call.name, [original], [fresh], before=target, tag=self.name,
                           name=f"{target.name or target.op_type}_{a.call.name}", **attrs)
            graph.set_input(target, 0, fresh)
            return
        out = target.output[0]
        fresh = graph.unique_name(f"{out}_before_{a.call.name.lower()}")
        # the new node takes over the output name, so readers and graph outputs stay as they are
        target.output[0] = fresh
        graph.add_node(a.call.name, [fresh], [out], before=_next_node(graph, target),
                       tag=self.name, name=f"{target.name or target.op_type}_{a.call.name}",
                       **attrs)
        _forget_type(graph, [out])
        if a.call.name == "Cast":             # a graph output's declared type follows the Cast
            for o in graph.graph.output:
                if o.name == out and o.type.HasField("tensor_type"):
                    o.type.tensor_type.elem_type = attrs["to"]


def _forget_type(graph: Graph, tensors) -> None:
    """Drop value_info of tensors whose type a rule may have changed (inference redoes it)."""
    names = set(tensors)
    kept = [v for v in graph.graph.value_info if v.name not in names]
    if len(kept) != len(graph.graph.value_info):
        del graph.graph.value_info[:]
        graph.graph.value_info.extend(kept)


def _quoted(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else _show(value)


def _show_array(value: np.ndarray) -> str:
    flat = value.reshape(-1).tolist()
    if len(flat) == 1 and value.ndim == 0:
        return _show(flat[0])
    return _show(tuple(flat[:8])) + (" ..." if len(flat) > 8 else "")


def rules_for_cli(spec_path: Path | None) -> tuple[RuleSpec, ...]:
    """The rules of a spec named with --spec (none without one)."""
    if spec_path is None:
        return ()
    from gancc.spec import parse_file

    return parse_file(spec_path).rules


__all__ = ["RuleSpec", "RewritesDir", "RuleTransformer", "check_at_opset", "finish",
           "make_pass", "make_rule_pass", "rule_class"]
