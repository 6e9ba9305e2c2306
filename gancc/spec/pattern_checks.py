"""Checks of a pattern rule (`rule NAME exact { match Op(..) where .. let .. => Op(..) }`) as
it is read: op types and attributes against the ONNX schemas, names bound before they are
used, functions known with their number of arguments. Each failure is a SpecError at the
token with the nearest valid name. docs/spec.md ("Rules") describes the language; the rule
engine (gancc.passes.rules_pattern) runs it.
"""

from __future__ import annotations

from gancc.errors import SpecError, did_you_mean
from gancc.spec.checks import check_attribute, check_op, op_schema
from gancc.spec.model import Expr, RuleSpec

# The functions of conditions and computed values: name -> (fewest, most arguments, meaning).
# gancc.passes.rules_expr implements each (a test holds the two to the same names).
FUNCTIONS = {
    "len": (1, 1, "number of elements of a list or constant"),
    "all": (1, 1, "every element is true / non-zero"),
    "any": (1, 1, "some element is true / non-zero"),
    "max": (1, 1, "largest element"), "min": (1, 1, "smallest element"),
    "sum": (1, 1, "sum of the elements"), "abs": (1, 1, "element-wise absolute value"),
    "sqrt": (1, 1, "element-wise square root"),
    "shape": (1, 1, "the dims of a bound tensor (a list; -1 where unknown)"),
    "rank": (1, 1, "the number of dims of a bound tensor"),
    "dtype": (1, 1, "the element type name of a bound tensor (\"float32\")"),
    "readers": (1, 2, "how many nodes read a tensor or a labelled node's output "
                      "(of op type ARG2 only, when given)"),
    "is_const": (1, 1, "the tensor is an initializer or a Constant's output"),
    "is_output": (1, 1, "the tensor (or labelled node's output) is a graph output"),
    "default": (2, 2, "ARG1, or ARG2 when ARG1 is none (an absent input or attribute)"),
    "zeros": (1, 1, "a list of N zeros"), "ones": (1, 1, "a list of N ones"),
    "trailing": (2, 2, "ARG1 with size-1 axes appended up to rank ARG2 (per-channel scaling)"),
    "cast": (2, 2, "ARG1 as element type ARG2 (a dtype name, or dtype(x))"),
}
CONSTANTS = ("none", "true", "false")


def is_op(name: str) -> bool:
    """Op types are capitalised (Conv), functions are not (len)."""
    return name[:1].isupper()


def check_pattern_rule(rule: RuleSpec) -> RuleSpec:
    """The checks that need no opset; returns the rule."""
    root = rule.pattern
    if root.kind != "call" or not is_op(root.value):
        raise SpecError("a pattern starts with an op and its operands", root.span,
                        "e.g. `match Relu(x)` or `match Conv(Pad(x, pads) as p, w, b?)`")
    scope = _Scope()
    _pattern(root, scope)
    for step in rule.steps:
        if step[0] == "where":
            _expression(step[1], scope)
        else:
            _, name, value, span = step
            _expression(value, scope)
            if name in scope.names:
                raise SpecError(f"'{name}' is already bound in this rule", span)
            scope.names[name] = "value"
    _replacement(rule.replacement, scope, top=True)
    return rule


class _Scope:
    def __init__(self):
        self.names: dict[str, str] = {}       # name -> "tensor" | "value"
        self.labels: dict[str, str] = {}      # label -> op types ("Identity|Dropout")

    def bound(self) -> list[str]:
        return list(self.names) + list(self.labels)


def _pattern(e: Expr, scope: _Scope) -> None:
    """An op pattern: `Op|Op2(operand, ..., attr=value) as label`."""
    for op in e.value.split("|"):
        check_op(op, e.span)
    if e.label is not None:
        if e.label in scope.labels or e.label in scope.names:
            raise SpecError(f"'{e.label}' is bound twice in this pattern", e.span)
        scope.labels[e.label] = e.value
    for arg in e.args:
        if arg.kind == "call" and is_op(arg.value):
            _pattern(arg, scope)
        elif arg.kind in ("name", "opt") and "." not in arg.value:
            if arg.value in scope.labels:
                raise SpecError(f"'{arg.value}' labels a node; an operand is a tensor", arg.span)
            if arg.value != "_":
                scope.names[arg.value] = "tensor"
        elif arg.kind == "kw":
            _expression(arg.args[0], scope)
            check_attribute(e.value, arg.value, arg.span, _literal(arg.args[0]))
        else:
            raise SpecError("an operand of a pattern is an op pattern, a name, `name?` "
                            "(optional) or attr=value", arg.span,
                            "e.g. `Conv(Pad(x, pads) as p, w, b?, group=1)`")


def _literal(e: Expr):
    if e.kind in ("num", "str"):
        return e.value
    if e.kind == "list" and all(a.kind in ("num", "str") for a in e.args):
        return tuple(a.value for a in e.args)
    return None


def _expression(e: Expr | None, scope: _Scope) -> None:
    if e is None or e.kind in ("num", "str"):
        return
    if e.kind == "name":
        _name(e, scope)
        return
    if e.kind == "call":
        if is_op(e.value):
            raise SpecError(f"{e.value}(...) is an op: ops are written in the pattern (after "
                            "`match`) or the replacement (after `=>`)", e.span)
        _function(e)
    elif e.kind in ("opt", "kw", "splat"):
        raise SpecError("`name?`, attr=value and **label are written in op calls", e.span)
    for arg in e.args:
        _expression(arg, scope)


def _name(e: Expr, scope: _Scope) -> None:
    label, dot, attr = e.value.partition(".")
    if dot:
        if label not in scope.labels:
            raise SpecError(f"no node of this pattern is labelled '{label}'", e.span,
                            did_you_mean(label, list(scope.labels)) or
                            "label a node with `as`, e.g. `Pad(x, pads) as p`")
        check_attribute(scope.labels[label], attr, e.span)
    elif e.value not in scope.names and e.value not in scope.labels \
            and e.value not in CONSTANTS:
        raise SpecError(f"'{e.value}' is not bound by the pattern or a `let`", e.span,
                        did_you_mean(e.value, scope.bound() + list(CONSTANTS))
                        or "operands of the pattern and `let` names can be used")


def _function(e: Expr) -> None:
    if e.value not in FUNCTIONS:
        raise SpecError(f"unknown function '{e.value}'", e.span,
                        did_you_mean(e.value, list(FUNCTIONS)) or
                        f"functions: {', '.join(sorted(FUNCTIONS))}")
    fewest, most, _ = FUNCTIONS[e.value]
    if not fewest <= len(e.args) <= most:
        count = str(fewest) if fewest == most else f"{fewest} or {most}"
        raise SpecError(f"{e.value}() takes {count} argument(s), got {len(e.args)}", e.span)


def _replacement(e: Expr, scope: _Scope, top: bool = False) -> None:
    """`=> Op(operand, ..., attr=value, **label)`, or `=> x` (a bound tensor)."""
    if e.kind == "name" and scope.names.get(e.value) == "tensor":
        return
    if not (e.kind == "call" and is_op(e.value)):
        if top:
            raise SpecError("a replacement is an op call or a tensor of the pattern", e.span,
                            "e.g. `=> Conv(x, w, b?, **c, pads=n)` or `=> x`")
        _expression(e, scope)              # a new constant computed from the match
        return
    if "|" in e.value:
        raise SpecError("a replacement node has one op type", e.span)
    check_op(e.value, e.span)
    for arg in e.args:
        if arg.kind == "kw":
            if arg.args[0].kind != "name" or arg.args[0].value != "none":
                _expression(arg.args[0], scope)
            check_attribute(e.value, arg.value, arg.span, _literal(arg.args[0]))
        elif arg.kind == "splat":
            if arg.value not in scope.labels:
                raise SpecError(f"no node of this pattern is labelled '{arg.value}'", arg.span,
                                did_you_mean(arg.value, list(scope.labels)))
        elif arg.kind == "opt":
            _name(Expr("name", arg.value, (), arg.span), scope)
        else:
            _replacement(arg, scope)


def check_pattern_at_opset(rule: RuleSpec, opset: int) -> None:
    """Every op type of the rule exists at `opset` (a model's). SpecError at the op."""
    def walk(e):
        if not isinstance(e, Expr):
            return
        if e.kind == "call" and is_op(e.value):
            for op in e.value.split("|"):
                if op_schema(op, opset) is None:
                    raise SpecError(f"{op} does not exist at opset {opset}", e.span)
        for a in e.args:
            walk(a)

    walk(rule.pattern)
    walk(rule.replacement)

