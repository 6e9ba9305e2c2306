"""The `rule` and `rewrites` statements of a spec: the Transformer methods that build them.

    rule pads-to-zero "Reflect padding becomes zero padding" {
        match Pad where mode == "reflect"
        set mode = "constant"
    }
    rewrites "my_rewrites/"

A rule matches one node, or a short chain `A -> B -> C` (each node's first output read only by
the next), filtered by predicates on attributes, constant inputs and the input dtype; its
actions edit the last node of the chain, or a node named with `as LABEL`. docs/spec.md
("Rules") is the reference.

The parsed form is gancc.spec.model.RuleSpec, checked against the ONNX schemas as it is built
(gancc.spec.checks). Running a rule is the rewrite engine's business (gancc.passes.rules), and
so is loading a `rewrites` folder and checking that no rule takes the name of a registered
rewrite (gancc.passes.factory): parsing a spec runs no user code.

Rules belong to their spec file, not to the global registry: two specs may each declare a
rule of the same name.
"""

from __future__ import annotations

import dataclasses
import re

from lark import Token, v_args

from gancc.errors import SpecError, Span
from gancc.spec import lower
from gancc.spec.checks import check_op, check_rule, show
from gancc.spec.model import Action, Expr, NodePattern, Predicate, RewritesDir, RuleSpec
from gancc.spec.pattern_checks import check_pattern_rule

_KEBAB = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*$")     # as registry names


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
        check_op(str(op), span)
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
            raise SpecError(f"input[{index}] is compared with numbers, got {show(plain)}",
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
        check_op(str(op), span)
        return Action("op", target[0][0] if target else None, span, value=str(op),
                      value_span=target[0][1] if target else None)

    @v_args(meta=True)
    def act_bypass(self, meta, children):
        return Action("bypass", children[0][0] if children else None, self._span(meta),
                      value_span=children[0][1] if children else None)

    @v_args(meta=True)
    def act_insert(self, meta, children):
        where, call, *target = children
        check_op(call.name, call.span)
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
        return check_rule(rule)

    # -- pattern rules: `rule NAME exact { match Op(..) where .. let .. => Op(..) }` ----------

    @v_args(meta=True)
    def pattern_rule(self, meta, children):
        name, *rest = children
        summary = ""
        if str(rest[0].type) == "STRING":
            summary = lower.plain(self.string([rest.pop(0)]))
        exactness, pattern, *steps = rest
        replacement = _literals(steps.pop())
        pattern = _literals(pattern)
        steps = [s[:-2] + (_literals(s[-2]), s[-1]) if s[0] == "let" else (s[0], _literals(s[1]))
                 for s in steps]
        if not _KEBAB.match(str(name)):
            raise SpecError(f"rule name '{name}' is not kebab-case", self._tok_span(name),
                            "use lower-case words joined by '-', e.g. drop-dropout")
        rule = RuleSpec(str(name), summary, (), (), (), self._span(meta), self._tok_span(name),
                        exactness=str(exactness), pattern=pattern, steps=tuple(steps),
                        replacement=replacement)
        return check_pattern_rule(rule)

    def p_where(self, children):
        return ("where", children[0])

    def p_let(self, children):
        return ("let", str(children[0]), children[1], self._tok_span(children[0]))

    def _expr(self, kind, value, args, meta, label=None) -> Expr:
        return Expr(kind, value, tuple(args), self._span(meta), label)

    @v_args(meta=True)
    def p_name(self, meta, children):
        return Expr("name", str(children[0]), (), self._tok_span(children[0]))

    @v_args(meta=True)
    def p_optional(self, meta, children):
        return Expr("opt", str(children[0]), (), self._tok_span(children[0]))

    @v_args(meta=True)
    def p_call(self, meta, children):
        ops = [c for c in children if isinstance(c, Token)]
        args = [c for c in children if not isinstance(c, Token)]
        return self._expr("call", "|".join(str(o) for o in ops), args, meta)

    @v_args(meta=True)
    def p_labelled(self, meta, children):
        call, label = children
        return dataclasses.replace(call, label=str(label))

    @v_args(meta=True)
    def p_kwarg(self, meta, children):
        return Expr("kw", str(children[0]), (children[1],), self._tok_span(children[0]))

    @v_args(meta=True)
    def p_splat(self, meta, children):
        return self._expr("splat", str(children[0]), (), meta)

    @v_args(meta=True)
    def p_list(self, meta, children):
        return self._expr("list", None, [c for c in children if c is not None], meta)

    @v_args(meta=True)
    def p_binary(self, meta, children):
        left, op, right = children
        return self._expr("bin", str(op), (left, right), meta)

    @v_args(meta=True)
    def p_minus(self, meta, children):
        return self._expr("bin", "-", children, meta)

    @v_args(meta=True)
    def p_compare(self, meta, children):
        left, op, right = children
        return self._expr("cmp", str(op), (left, right), meta)

    @v_args(meta=True)
    def p_in(self, meta, children):
        return self._expr("in", None, children, meta)

    @v_args(meta=True)
    def p_and(self, meta, children):
        return self._expr("and", None, children, meta)

    @v_args(meta=True)
    def p_or(self, meta, children):
        return self._expr("or", None, children, meta)

    @v_args(meta=True)
    def p_not(self, meta, children):
        return self._expr("not", None, children, meta)

    @v_args(meta=True)
    def p_negate(self, meta, children):
        return self._expr("neg", None, children, meta)

    @v_args(meta=True)
    def p_index(self, meta, children):
        base, (kind, args) = children
        return self._expr(kind, None, (base,) + args, meta)

    def p_at(self, children):
        return ("index", (children[0],))

    def p_slice(self, children):
        return ("slice", (children[0], children[1]))

    def p_slice_from(self, children):
        return ("slice", (children[0], None))

    def p_slice_to(self, children):
        return ("slice", (None, children[0]))


def _literals(e):
    """The tree with its `number`s and `string`s (lower.Values) made Exprs."""
    if e is None or isinstance(e, Expr) and not e.args:
        return e
    if isinstance(e, lower.Value):
        plain = lower.plain(e)
        return Expr("str" if isinstance(plain, str) else "num", plain, (), e.span)
    return dataclasses.replace(e, args=tuple(_literals(a) for a in e.args))


def finish(items: tuple, text: str) -> tuple[tuple, tuple[RuleSpec, ...], tuple[RewritesDir, ...]]:
    """After the transform: check that rule names are unique, keep each rule's text, and give
    every model the file's rules and `rewrites` folders. Returns (models, rules, folders)."""
    models = tuple(i for i in items if not isinstance(i, (RuleSpec, RewritesDir)))
    dirs = tuple(i for i in items if isinstance(i, RewritesDir))
    lines = text.split("\n")
    seen: dict[str, RuleSpec] = {}
    rules = []
    for rule in (i for i in items if isinstance(i, RuleSpec)):
        if rule.name in seen:
            raise SpecError(f"rule '{rule.name}' is declared twice", rule.name_span,
                            f"the first is at line {seen[rule.name].span.line}", text)
        seen[rule.name] = rule
        end = rule.span.end_line or rule.span.line
        rules.append(dataclasses.replace(rule, text="\n".join(lines[rule.span.line - 1:end])))
    if rules or dirs:
        models = tuple(dataclasses.replace(m, rules=tuple(rules), rewrite_dirs=dirs)
                       for m in models)
    return models, tuple(rules), dirs
