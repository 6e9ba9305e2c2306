"""Which parts of a pattern rule's expressions depend only on constant values, so a pass
computes each once per distinct set of constants instead of once per candidate node.

An expression is *pure* when it reads nothing but literals, the values of the pattern's
tensors (constants: an initializer's value does not change during a pass, docs/rewrites.md)
and `let` values that are pure themselves, through functions that do not look at the graph
(`len`, `max`, `zeros`, ...; not `readers`, `shape`, `is_output`, ...). Its value is then a
function of the tensor names it reads: `let r = len(pads) // 2` and `pads[0:2] == [0, 0]`
are computed once for the `pads` initializer every Pad of an onnxsim'd graph shares, and a
literal list such as `[0, 0]` once per pass. Node attributes (`p.mode`) and labels are not
pure. gancc.passes.rules_expr.evaluate looks each maximal pure subexpression up in the
pass's memo (`Graph.memo`), keyed by the expression and the tensors bound to its names.
"""

from __future__ import annotations

from functools import lru_cache

from gancc.spec.model import Expr, RuleSpec
from gancc.spec.pattern_checks import is_op

# functions whose value depends on the graph around a tensor, not on the tensor's value
GRAPH_FUNCTIONS = frozenset({"shape", "rank", "dtype", "readers", "is_const", "is_output"})
_CONSTANTS = ("none", "true", "false")


class _SameRule:
    """A cache key that is the rule object itself, not an equal one: the result holds ids of
    that object's own Expr nodes, which an equal rule parsed again does not share."""

    __slots__ = ("rule",)

    def __init__(self, rule: RuleSpec):
        self.rule = rule

    def __hash__(self) -> int:
        return id(self.rule)

    def __eq__(self, other) -> bool:
        return isinstance(other, _SameRule) and other.rule is self.rule


def pure_subexpressions(rule: RuleSpec) -> dict[int, tuple[str, ...]]:
    """id(expr) -> the pattern tensor names its value depends on, for every maximal pure
    subexpression of the rule's conditions, `let` values and replacement. The ids are those
    of the rule's own Expr objects (kept alive by the rule, which the cache holds)."""
    return _pure_subexpressions(_SameRule(rule))


@lru_cache(maxsize=256)
def _pure_subexpressions(key: _SameRule) -> dict[int, tuple[str, ...]]:
    rule = key.rule
    tensors = _pattern_tensors(rule.pattern)
    lets: dict[str, frozenset | None] = {}
    found: dict[int, tuple[str, ...]] = {}
    for step in rule.steps:
        if step[0] == "where":
            _mark(step[1], tensors, lets, found)
        else:
            _mark(step[2], tensors, lets, found)
            lets[step[1]] = _deps(step[2], tensors, lets)
    for arg in _replacement_values(rule.replacement):
        _mark(arg, tensors, lets, found)
    return found


def _pattern_tensors(p: Expr) -> frozenset[str]:
    names: set[str] = set()
    for a in p.args:
        if a.kind in ("name", "opt") and a.value != "_":
            names.add(a.value)
        elif a.kind == "call":
            names |= _pattern_tensors(a)
    return frozenset(names)


def _replacement_values(e: Expr):
    """The expressions of a replacement that are evaluated: attribute values, and operands
    that are not op calls or tensors (new constants)."""
    if e.kind != "call" or not is_op(e.value):
        yield e
        return
    for a in e.args:
        if a.kind == "kw":
            yield a.args[0]
        elif a.kind == "call" and is_op(a.value):
            yield from _replacement_values(a)
        elif a.kind not in ("splat", "opt", "name"):
            yield a


def _mark(e: Expr, tensors: frozenset, lets: dict, found: dict) -> None:
    deps = _deps(e, tensors, lets)
    if deps is not None:
        if e.kind not in ("num", "str", "name") or deps:   # a literal is its value already
            found[id(e)] = tuple(sorted(deps))
        return
    for a in e.args:
        if isinstance(a, Expr):
            _mark(a, tensors, lets, found)


def _deps(e: Expr, tensors: frozenset, lets: dict) -> frozenset | None:
    """The tensor names `e`'s value depends on; None when it is not pure."""
    if e.kind in ("num", "str"):
        return frozenset()
    if e.kind == "name":
        if e.value in _CONSTANTS:
            return frozenset()
        if e.value in lets:
            return lets[e.value]
        return frozenset({e.value}) if e.value in tensors else None    # labels, `p.mode`
    if e.kind in ("kw", "splat", "opt") or (e.kind == "call" and (
            is_op(e.value) or e.value in GRAPH_FUNCTIONS)):
        return None
    deps: frozenset = frozenset()
    for a in e.args:
        if a is None:             # an omitted slice bound
            continue
        inner = _deps(a, tensors, lets)
        if inner is None:
            return None
        deps |= inner
    return deps
