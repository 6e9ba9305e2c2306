"""Parse a .gan file into a SpecFile, and a one-line pass pipeline into its steps.

lark parses with the grammar in gan.lark (LALR, contextual lexer, positions kept); a
Transformer maps the tree onto the frozen objects of gancc.spec.model, and gancc.spec.lower
checks the keys and values of the settings blocks. Syntax errors become SpecErrors with the
position, a caret and a hint; nothing here lets a lark exception escape.

A pipeline step has one grammar, pipeline.lark, which gan.lark imports for the `rewrite { }`
block and `parse_pipeline` reads on its own (`gancc opt --passes`): both go through the same
Transformer methods (_Steps), so a step written in either place parses to the same PassStep
and a mistake in it gets the same message at the same column.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, VisitError

from gancc.errors import GanccError, SpecError, Span, did_you_mean
from gancc.spec import lower
from gancc.spec.model import (Arg, Call, OnnxSource, Output, PassStep,
                              PyTorchSource, SpecFile, TensorFlowSource, Weights)
from gancc.spec.rules import RuleTransformer, finish as finish_rules

# How terminals read in "expected ..." messages.
_TERMINAL_WORDS = {
    "NAME": "a name", "PASS_NAME": "a rewrite name", "INT": "an integer",
    "SIGNED_NUMBER": "a number", "STRING": 'a "string"', "COMPARE": "a comparison (>=, >, <=, <)",
    "LBRACE": "'{'", "RBRACE": "'}'", "LSQB": "'['", "RSQB": "']'", "LPAR": "'('",
    "RPAR": "')'", "COMMA": "','", "COLON": "':'", "EQUAL": "'='", "$END": "end of file",
    "KEY_EQ": "key=value", "OPTION_WORD": "a value",
    "RULE_CMP": "'==' or '!='", "INSERT_WHERE": "'before' or 'after'",
}

# Escapes a "string" may contain.
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}

# Statements that are valid only inside a particular block, for a better hint.
_PLACEMENT_HINTS = {
    "arch": "'arch' goes inside a `source pytorch { ... }` block",
    "weights": "'weights' goes inside a `source pytorch { ... }` block",
    "require": "'require' goes inside a `validate { ... }` block",
    "data": "'data' goes inside a `validate { ... }` block",
    "batch": "'batch' follows the shape of an input: `input x: float32[N, 3, 256, 256] batch 1, 16`",
}


_GRAMMARS = Path(__file__).parent


@lru_cache(maxsize=None)
def _parser(grammar: str = "gan.lark", start: str = "start") -> Lark:
    # cache=True keeps the LALR tables in the temp folder, keyed by the grammar's hash (and the
    # files it imports): building them is a tenth of a second on every command otherwise.
    return Lark.open(str(_GRAMMARS / grammar), start=start, parser="lalr",
                     propagate_positions=True, maybe_placeholders=False, cache=True)


def _describe(terminal: str, end: str = "end of file") -> str:
    if terminal == "$END":
        return end
    if terminal in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[terminal]
    if terminal.isupper():  # anonymous keyword terminals are named after the keyword
        return f"'{terminal.lower()}'"
    return terminal


def _syntax_error(err: UnexpectedInput, path: str, text: str, end: str = "end of file"
                  ) -> SpecError:
    """The SpecError for a lark syntax error; `end` names the end of the text."""
    line, col = max(err.line, 1), max(err.column, 1)
    # lark counts lines at '\n' only; str.splitlines() also splits at '\f', '\u2028', ...
    source_lines = text.split("\n")
    if isinstance(err, UnexpectedCharacters):
        row = source_lines[line - 1] if line <= len(source_lines) else ""
        char = row[col - 1] if col <= len(row) else "?"
        hint = "strings use double quotes" if char == "'" else None
        return SpecError(f"unexpected character {char!r}", Span(path, line, col), hint, text)
    if isinstance(err, UnexpectedEOF) or getattr(err, "token", None) is None \
            or err.token.type == "$END":
        return _end_error(err, path, text, end)
    return _token_error(err, path, text, end)


def _end_error(err: UnexpectedInput, path: str, text: str, end: str) -> SpecError:
    expected = sorted(_describe(t, end) for t in getattr(err, "expected", []) or [])
    source_lines = text.split("\n")
    lines = source_lines[:-1] if len(source_lines) > 1 and not source_lines[-1] \
        else source_lines
    span = Span(path, len(lines), len(lines[-1]) + 1)
    msg = f"unexpected {end}"
    if expected:
        msg += f", expected {', '.join(expected)}"
    closing = end == "end of file" or "RBRACE" in (getattr(err, "expected", None) or ())
    return SpecError(msg, span, "is a closing '}' missing?" if closing else None, text)


def _token_error(err: UnexpectedInput, path: str, text: str, end: str) -> SpecError:
    token: Token = err.token
    expected_terms = sorted(getattr(err, "expected", set()) or set())
    expected = sorted({_describe(t, end) for t in expected_terms})
    # `key=` is one token only to the AIPP statements' lexer: elsewhere the mistake is the key
    # (and a pipeline step, read by pipeline.lark alone, reports just the key too)
    word = str(token)[:-1] if token.type == "KEY_EQ" else str(token)
    span = Span(path, token.line, token.column, token.end_line,
                token.column + len(word) if token.end_line == token.line else token.end_column)
    msg = f"unexpected '{word}'" if token.type != "STRING" else f"unexpected string {word}"
    if expected:
        msg += f", expected {' or '.join(expected) if len(expected) <= 2 else 'one of ' + ', '.join(expected)}"
    keywords = [t.lower() for t in expected_terms if t.isupper() and t not in _TERMINAL_WORDS]
    hint = _PLACEMENT_HINTS.get(word) or did_you_mean(word, keywords)
    if hint is None and "PASS_NAME" in expected_terms and token.type in ("NAME", "OPTION_WORD"):
        hint = "rewrite names are lower-case kebab-case, e.g. reflect-pad-to-constant"
    return SpecError(msg, span, hint, text)


# The value of an option written without one (`{k}`): not a valid option, reported by pass_step.
_NO_VALUE = object()


class _Steps(Transformer):
    """lark tree -> literals and pipeline steps: what pipeline.lark parses. Runs bottom-up;
    each method gets its children."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def _span(self, meta) -> Span:
        return Span(self.path, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tok_span(self, tok: Token) -> Span:
        return Span(self.path, tok.line, tok.column, tok.end_line, tok.end_column)

    # values ---------------------------------------------------------------------------
    def string(self, children):
        (tok,) = children

        def unescape(m: re.Match) -> str:
            if m.group(1) not in _ESCAPES:
                # STRING tokens never span lines, so the escape's column is an offset.
                col = tok.column + 1 + m.start()
                raise SpecError(f"unknown escape '\\{m.group(1)}' in a string",
                                Span(self.path, tok.line, col, tok.line, col + 2),
                                'known escapes: \\" \\\\ \\n \\t')
            return _ESCAPES[m.group(1)]

        # Not bytes.decode("unicode_escape"): that turns non-ASCII text into mojibake
        # and raises on a bad escape.
        return lower.Value(re.sub(r"\\(.)", unescape, tok[1:-1]), self._tok_span(tok))

    def word(self, children):
        (tok,) = children
        value = {"true": True, "false": False}.get(str(tok), str(tok))
        return lower.Value(value, self._tok_span(tok), bare=True)

    option_word = word

    def number(self, children):
        (tok,) = children
        text = str(tok)
        value = int(text) if text.lstrip("+-").isdigit() else float(text)
        return lower.Value(value, self._tok_span(tok))

    @v_args(meta=True)
    def list(self, meta, children):
        return lower.Value(tuple(children), self._span(meta))

    option_list = list

    # pipeline steps -----------------------------------------------------------------------
    @v_args(meta=True)
    def option(self, meta, children):
        name, *value = children
        # `{k}`: an Arg without a value, which pass_step reports naming the pass
        return Arg(str(name), lower.plain(value[0].value) if value else _NO_VALUE,
                   self._span(meta))

    def pass_options(self, children):
        return tuple(children)

    def pass_step(self, children):
        name, *opts = children
        options = opts[0] if opts else ()
        for option in options:
            if option.value is _NO_VALUE:
                raise SpecError(f"bad option '{option.name}' for pass '{name}'", option.span,
                                "options are written key=value")
        return PassStep(str(name), options, self._tok_span(name))

    def pipeline(self, children):
        return tuple(children)


class _ToModel(RuleTransformer, _Steps):
    """lark tree -> frozen spec objects."""

    def __init__(self, path: str, spec_dir: Path):
        super().__init__(path)
        self.spec_dir = spec_dir

    @v_args(meta=True)
    def arg(self, meta, children):
        if len(children) == 2:
            name, value = children
            return Arg(str(name), lower.plain(value.value), self._span(meta))
        return Arg(None, lower.plain(children[0].value), self._span(meta))

    @v_args(meta=True)
    def call(self, meta, children):
        name, *args = children
        return Call(str(name), tuple(args), self._span(meta))

    @v_args(meta=True)
    def setting(self, meta, children):
        key, *values = children
        return lower.Setting(str(key), tuple(values), self._span(meta), self._tok_span(key))

    # statements -------------------------------------------------------------------------
    @v_args(meta=True)
    def arch(self, meta, children):
        return ("arch", children[0], self._span(meta))

    @v_args(meta=True)
    def weights(self, meta, children):
        path_tok, *rest = children
        span = self._span(meta)
        seed = lower.fallback_seed(rest[0]) if rest else None
        path = self.spec_dir / path_tok[1:-1]
        return ("weights", Weights(path, seed, span), span)

    @v_args(meta=True)
    def source_block(self, meta, children):
        kind, *items = children
        span = self._span(meta)
        if str(kind) != "pytorch":
            hint = ("write `source onnx \"model.onnx\"` for an ONNX file"
                    if str(kind) == "onnx" else did_you_mean(str(kind), ["pytorch"]))
            raise SpecError(f"unknown source block '{kind}': a source block is `source pytorch {{ ... }}`",
                            self._tok_span(kind), hint)
        found = {}
        for key, value, item_span in items:
            if key in found:
                raise SpecError(f"'{key}' given twice in this source", item_span)
            found[key] = value
        if "arch" not in found:
            raise SpecError("a pytorch source needs an `arch name(...)` line", span,
                            "e.g. arch resnet_generator(ngf=64, n_blocks=9)")
        return ("source", PyTorchSource(found["arch"], found.get("weights"), span), span)

    @v_args(meta=True)
    def source_file(self, meta, children):
        kind, path_tok = children
        span = self._span(meta)
        if str(kind) not in ("onnx", "tensorflow"):
            raise SpecError(f"unknown source kind '{kind}'", self._tok_span(kind),
                            did_you_mean(str(kind), ["onnx", "tensorflow"]) or
                            "supported: onnx \"file.onnx\", tensorflow \"frozen.pb\"")
        kind_class = TensorFlowSource if str(kind) == "tensorflow" else OnnxSource
        return ("source", kind_class(self.spec_dir / path_tok[1:-1], span), span)

    def dim(self, children):
        (tok,) = children
        return int(tok) if tok.type == "INT" else str(tok)

    def shape(self, children):
        return tuple(children)

    @v_args(meta=True)
    def batch(self, meta, children):
        return tuple((int(t), self._tok_span(t)) for t in children)

    @v_args(meta=True)
    def input(self, meta, children):
        name, dtype, shape, *batch = children
        span = self._span(meta)
        return ("input", lower.make_input(str(name), dtype, self._tok_span(dtype), shape,
                                          batch[0] if batch else (), span), span)

    @v_args(meta=True)
    def output(self, meta, children):
        return ("output", tuple(Output(str(t), self._tok_span(t)) for t in children), self._span(meta))

    @v_args(meta=True)
    def opset(self, meta, children):
        (tok,) = children
        return ("opset", lower.check_opset(int(tok), self._tok_span(tok)), self._span(meta))

    @v_args(meta=True)
    def rewrite_block(self, meta, children):
        return ("rewrite", tuple(children), self._span(meta))

    @v_args(meta=True)
    def aipp_arg(self, meta, children):
        key, value = children
        return (str(key)[:-1], value, self._tok_span(key))

    @v_args(meta=True)
    def aipp_statement(self, meta, children):
        from gancc.aipp.resolve import Statement, check_statement

        name, *args = children
        stmt = Statement(str(name), tuple(args), self._span(meta), self._tok_span(name))
        check_statement(stmt)
        return stmt

    @v_args(meta=True)
    def aipp_block(self, meta, children):
        name, *settings = children
        span = self._span(meta)
        return ("aipp", lower.make_aipp(str(name), settings, span), span)

    @v_args(meta=True)
    def atc_block(self, meta, children):
        return ("atc", lower.make_atc(children), self._span(meta))

    @v_args(meta=True)
    def require(self, meta, children):
        metric, cmp, number, *out = children
        return lower.make_requirement(str(metric), self._tok_span(metric), str(cmp), number.value,
                                      str(out[0]) if out else None, self._span(meta))

    @v_args(meta=True)
    def data(self, meta, children):
        name, call = children
        return lower.make_data(str(name), call)

    @v_args(meta=True)
    def validate_block(self, meta, children):
        return ("validate", lower.make_validation(children), self._span(meta))

    @v_args(meta=True)
    def model(self, meta, children):
        name, *items = children
        return lower.make_model(str(name), items, self._span(meta), self._tok_span(name))

    def start(self, children):
        return tuple(children)


def _transform(transformer: Transformer, tree, text: str):
    """Run `transformer`; a SpecError raised inside it comes out as itself, with the text."""
    try:
        return transformer.transform(tree)
    except VisitError as err:
        inner = err.orig_exc
        if isinstance(inner, SpecError):
            if inner.source is None:
                inner.source = text
            raise inner from None
        raise


def parse_text(text: str, path: str | Path = "<spec>") -> SpecFile:
    """Parse spec text. Raises SpecError (never a lark or Python exception) on bad input."""
    path = Path(path)
    name = str(path)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as err:
        raise _syntax_error(err, name, text) from None
    items = _transform(_ToModel(name, path.parent), tree, text)
    # rules and `rewrites "dir"` are file-level: every model gets them
    models, rules, dirs = finish_rules(items, text)
    try:
        lower.check_unique_models(models)
    except SpecError as err:
        err.source = text  # the path may not exist on disk: show the text that was parsed
        raise
    if not models and not rules:     # a file of rules only serves `--spec` (explain, opt)
        raise SpecError("the spec declares no model", Span(name, 1, 1),
                        "start with `model <name> { ... }`", text)
    return SpecFile(path, models, text, rules, dirs)


def parse_pipeline(text: str, path: str = "<passes>") -> tuple[PassStep, ...]:
    """A one-line pipeline, `a,b{k=v}`, as the steps a `rewrite { }` block would give (spans
    at line 1, column = character). Raises SpecError on bad input."""
    try:
        tree = _parser("pipeline.lark", "pipeline").parse(text)
    except UnexpectedInput as err:
        raise _syntax_error(err, path, text, end="end of the pipeline") from None
    return _transform(_Steps(path), tree, text)


def parse_file(path: str | Path) -> SpecFile:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GanccError(f"spec file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise GanccError(f"cannot read spec file {path}: {err}") from None
    return parse_text(text, path)
