"""Templates: a model body with parameters, and models made from it.

    template cyclegan_generator(net, seed, image, result, om) { ...model statements... }
    model cyclegan_g_b = cyclegan_generator(net="G_B", seed=1, image=img_maps_sat, ...)

Expansion works on lark's tree, before the statements are read: each use gets a copy of the
template's statements with the parameters replaced, as a `model` tree that the parser then
reads like any other. A parameter stands where a value may (`seed=seed`, `out_nodes result`),
where a name of the model may (input, output, aipp and data names, `require ... for NAME`),
as a shape dimension, and inside any "string" as `${param}`. Replaced values keep the
position of the argument they came from, everything else the template's: an error points at
the line that caused it, and `located` adds a note naming the other place (the use, or the
template). `expanded_text` writes the same expansion as spec text (`gancc check --expand`).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

from lark import Token, Tree

from gancc.errors import GanccError, SpecError, Span, did_you_mean
from gancc.spec.model import ModelSpec, TemplateOrigin

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PARAM_IN_STRING = re.compile(r"\$\{([^}]*)\}")
# statements whose own NAME tokens are names a parameter may give, by child position
# (None: every NAME child): the input's name and dtype, output names, the aipp block's
# input, the input `data` is for, the output after `require ... for`
_NAME_SLOTS = {"input": None, "output": None, "aipp_block": (0,), "data": (0,), "require": (3,)}


@dataclass
class Template:
    name: str
    params: list[str]
    defaults: dict[str, Tree | Token]
    body: list                    # the statement trees, as parsed
    span: Span
    body_start: int               # text offsets of the body, between the braces
    body_end: int


@dataclass
class Use:
    """One `model NAME = template(...)`: the arguments bound to the template's parameters."""

    model: str
    template: Template
    bindings: dict[str, Tree | Token]
    span: Span
    splices: list[tuple[int, int, str]] = field(default_factory=list)   # for expanded_text


def _span(path: str, item) -> Span:
    if isinstance(item, Token):
        return Span(path, item.line, item.column, item.end_line, item.end_column)
    m = item.meta
    return Span(path, m.line, m.column, m.end_line, m.end_column)


def _templates(tree: Tree, path: str, text: str) -> dict[str, Template]:
    found: dict[str, Template] = {}
    for node in tree.children:
        if not isinstance(node, Tree) or node.data != "template_def":
            continue
        name_tok, *rest = node.children
        params = [c for c in rest if isinstance(c, Tree) and c.data == "template_param"]
        body = [c for c in rest if not (isinstance(c, Tree) and c.data == "template_param")]
        if str(name_tok) in found:
            raise SpecError(f"template '{name_tok}' is declared twice", _span(path, name_tok),
                            f"the first is at line {found[str(name_tok)].span.line}", text)
        names, defaults = [], {}
        for p in params:
            pname = str(p.children[0])
            if pname in names:
                raise SpecError(f"template '{name_tok}' has two parameters '{pname}'",
                                _span(path, p), None, text)
            names.append(pname)
            if len(p.children) > 1:
                defaults[pname] = p.children[1]
        after = (params[-1].meta.end_pos if params else name_tok.end_pos)
        start = text.index("{", text.index(")", after)) + 1
        found[str(name_tok)] = Template(str(name_tok), names, defaults, body,
                                        _span(path, name_tok), start, node.meta.end_pos - 1)
    return found


def _bind(node: Tree, templates: dict[str, Template], path: str, text: str) -> Use:
    """The arguments of `model NAME = template(args)`, checked against the parameters."""
    name_tok, call = node.children
    callee, *args = call.children
    if str(callee) not in templates:
        raise SpecError(f"no template '{callee}'", _span(path, callee),
                        did_you_mean(str(callee), templates) or
                        "declare it first: `template NAME(param, ...) { ... }`", text)
    template = templates[str(callee)]
    bindings: dict[str, Tree | Token] = {}
    for i, arg in enumerate(args):
        key, value = (str(arg.children[0]), arg.children[1]) if len(arg.children) == 2 \
            else (template.params[i] if i < len(template.params) else None, arg.children[0])
        if key is None:
            raise SpecError(f"template '{template.name}' takes {len(template.params)} "
                            f"argument(s), got {len(args)}", _span(path, arg), None, text)
        if key not in template.params:
            raise SpecError(f"template '{template.name}' has no parameter '{key}'",
                            _span(path, arg), did_you_mean(key, template.params) or
                            f"its parameters: {', '.join(template.params)}", text)
        if key in bindings:
            raise SpecError(f"argument '{key}' is given twice", _span(path, arg), None, text)
        bindings[key] = value
    missing = [p for p in template.params if p not in bindings and p not in template.defaults]
    if missing:
        raise SpecError(f"template '{template.name}' needs argument(s) {', '.join(missing)}",
                        _span(path, call), f"e.g. {missing[0]}=...", text)
    for p in template.params:
        bindings.setdefault(p, template.defaults.get(p))
    return Use(str(name_tok), template, bindings, _span(path, node))


class _Expander:
    """A copy of a template's statements with one use's arguments in place of its parameters;
    records each replacement as a text splice for `expanded_text`."""

    def __init__(self, use: Use, path: str, text: str):
        self.use, self.path, self.text = use, path, text

    def statement(self, node):
        if isinstance(node, Token):
            return self._string(node) if node.type == "STRING" else node
        if node.data in ("word", "option_word") and str(node.children[0]) in self.use.bindings:
            return self._value(node.children[0])
        slots = _NAME_SLOTS.get(node.data, ())
        children = []
        for i, child in enumerate(node.children):
            bound = isinstance(child, Token) and str(child) in self.use.bindings
            if bound and child.type == "NAME" and node.data in _NAME_SLOTS \
                    and (slots is None or i in slots):
                children.append(self._name(child))
            elif bound and node.data == "dim":
                children.append(self._dim(child))
            else:
                children.append(self.statement(child))
        return Tree(node.data, children, node.meta)

    def _arg(self, param: str):
        return self.use.bindings[param]

    def _source(self, value) -> str:
        start, end = (value.start_pos, value.end_pos) if isinstance(value, Token) \
            else (value.meta.start_pos, value.meta.end_pos)
        return self.text[start:end]

    def _fail(self, message: str, value, at: Token) -> SpecError:
        err = SpecError(message, _span(self.path, value), None, self.text)
        err.notes.append((_span(self.path, at), f"the parameter is used here, in template "
                                                f"'{self.use.template.name}'"))
        return err

    def _value(self, tok: Token):
        value = self._arg(str(tok))
        self.use.splices.append((tok.start_pos, tok.end_pos, self._source(value)))
        return copy.deepcopy(value)

    def _name(self, tok: Token) -> Token:
        value = self._arg(str(tok))
        inner = value.children[0] if isinstance(value, Tree) and value.children else value
        word = str(inner)[1:-1] if value.data == "string" else str(inner)
        if value.data not in ("word", "string") or not _NAME.match(word):
            raise self._fail(f"argument '{tok}' is used as a name, but {self._source(value)} is "
                             "not one", value, tok)
        self.use.splices.append((tok.start_pos, tok.end_pos, word))
        return Token.new_borrow_pos("NAME", word, inner)

    def _dim(self, tok: Token) -> Token:
        value = self._arg(str(tok))
        inner = value.children[0] if value.children else value
        if value.data == "word":
            kind = "NAME"
        elif value.data == "number" and str(inner).isdigit():
            kind = "INT"
        else:
            raise self._fail(f"argument '{tok}' is a shape dimension: a positive integer or a "
                             f"name, not {self._source(value)}", value, tok)
        self.use.splices.append((tok.start_pos, tok.end_pos, str(inner)))
        return Token.new_borrow_pos(kind, str(inner), inner)

    def _string(self, tok: Token) -> Token:
        def one(m: re.Match) -> str:
            param = m.group(1)
            if param not in self.use.bindings:
                err = SpecError(f"'${{{param}}}': template '{self.use.template.name}' has no "
                                f"parameter '{param}'", _span(self.path, tok),
                                did_you_mean(param, self.use.template.params) or
                                f"its parameters: {', '.join(self.use.template.params)}",
                                self.text)
                raise located(err, self.use)
            value = self._arg(param)
            if value.data == "list":
                raise self._fail(f"argument '{param}' is a list, which cannot go into a string",
                                 value, tok)
            source = self._source(value)
            return source[1:-1] if value.data == "string" else source

        new = _PARAM_IN_STRING.sub(one, str(tok))
        if new == str(tok):
            return tok
        self.use.splices.append((tok.start_pos, tok.end_pos, new))
        return Token.new_borrow_pos("STRING", new, tok)


def expand(tree: Tree, path: str, text: str) -> list[tuple[Tree, Use | None]]:
    """The file's top-level statements with templates expanded: each `model NAME = t(...)`
    becomes a `model` tree (and its Use, for `located`); template declarations are dropped."""
    templates = _templates(tree, path, text)
    out: list[tuple[Tree, Use | None]] = []
    for node in tree.children:
        if isinstance(node, Tree) and node.data == "template_def":
            continue
        if not (isinstance(node, Tree) and node.data == "model_use"):
            out.append((node, None))
            continue
        use = _bind(node, templates, path, text)
        expander = _Expander(use, path, text)
        body = [expander.statement(s) for s in use.template.body]
        out.append((Tree("model", [node.children[0], *body], node.meta), use))
    return out


def origin(use: Use, text: str) -> TemplateOrigin:
    """What a model made by `use` keeps of it (ModelSpec.made_from)."""
    template = use.template
    return TemplateOrigin(template.name, template.span, _line_of(text, template.body_end),
                          use.span)


def located(err: SpecError, use: Use) -> SpecError:
    """`err`, raised inside a model made from a template while it is read: see _noted."""
    return _noted(err, use.model, origin(use, err.source or ""))


def in_model(err: GanccError, model: ModelSpec) -> GanccError:
    """`err`, found in `model` after expansion (checks, the build), with the same note as an
    error found while reading it; unchanged for a model written out, or another error kind."""
    if isinstance(err, SpecError) and model.made_from is not None:
        _noted(err, model.name, model.made_from)
    return err


def _noted(err: SpecError, model: str, made: TemplateOrigin) -> SpecError:
    """A note naming the other place: the use when the error is in the template, the
    template when it is at the use (an argument); none when the error has one already."""
    span, decl = err.span, made.template_span
    if any(where in (made.use, decl) for where, _ in err.notes):
        return err
    in_template = span is not None and span.file == decl.file and \
        decl.line <= span.line <= made.last_line
    if in_template:
        err.notes.append((made.use, f"in model '{model}', made from template "
                                    f"'{made.template}' here"))
    elif not err.notes:
        err.notes.append((decl, f"model '{model}' is made from template "
                                f"'{made.template}', declared here"))
    return err


def _line_of(text: str | None, offset: int) -> int:
    return text.count("\n", 0, offset) + 1 if text is not None else 0


def expanded_text(tree: Tree, path: str, text: str) -> str:
    """The spec with every template use written out as a `model NAME { ... }` block and the
    template declarations removed: what `gancc check --expand` prints; it parses back."""
    uses = {id(use_tree): use for use_tree, use in
            zip([n for n in tree.children if isinstance(n, Tree) and n.data == "model_use"],
                [u for _, u in expand(tree, path, text) if u is not None])}
    pieces, pos = [], 0
    for node in tree.children:
        if not isinstance(node, Tree) or node.data not in ("template_def", "model_use"):
            continue
        pieces.append(text[pos:node.meta.start_pos])
        pos = node.meta.end_pos
        if node.data == "model_use":
            use = uses[id(node)]
            t = use.template
            body, cursor = [], t.body_start
            for start, end, new in sorted(use.splices):
                body += [text[cursor:start], new]
                cursor = end
            body.append(text[cursor:t.body_end])
            pieces.append(f"# made from template {t.name} ({t.span})\n"
                          f"model {use.model} {{{''.join(body)}}}")
    pieces.append(text[pos:])
    return re.sub(r"\n{3,}", "\n\n", "".join(pieces))
