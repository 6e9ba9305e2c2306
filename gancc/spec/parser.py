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

import dataclasses
import re
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, VisitError

from gancc.errors import GanccError, SpecError, Span, did_you_mean
from gancc.spec import lower, templates
from gancc.spec.model import (Arg, ArchRef, ArchsDir, Call, ExportedProgramSource, OnnxSource,
                              Output, PassStep, PyTorchSource, SpecFile, TensorFlowSource,
                              TorchScriptSource, Weights)
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


@lru_cache(maxsize=None)
def _terminal_texts() -> dict[str, str]:
    """What each terminal of the spec grammar matches, for terminals lark names itself
    (`__ANON_1` for '=>') or that the grammar names for its own use (P_ADD for + and ++)."""
    texts = {}
    for terminal in _parser().terminals:
        pattern = terminal.pattern
        if pattern.type == "str":
            texts[terminal.name] = f"'{pattern.value}'"
            continue
        # an alternation of literals, as lark writes one: (?:==|!=|<)
        body = pattern.value[3:-1] if pattern.value.startswith("(?:") else pattern.value
        choices = [re.sub(r"\\(.)", r"\1", alt) for alt in body.split("|")]
        if all(c and re.escape(c) == alt for c, alt in zip(choices, body.split("|"))):
            texts[terminal.name] = " or ".join(f"'{c}'" for c in choices)
    return texts


def _describe(terminal: str, end: str = "end of file") -> str:
    if terminal == "$END":
        return end
    if terminal in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[terminal]
    if terminal in _terminal_texts():
        return _terminal_texts()[terminal]
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
        return lower.Value(lower.number(str(tok), self._tok_span(tok)), self._tok_span(tok))

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
    def user_call(self, meta, children):
        """`"file.py:Name"(args)`: a Call named by the text, with the ArchRef it points at."""
        tok, *args = children
        ref = _arch_ref(tok[1:-1], self.spec_dir, self._tok_span(tok))
        return (Call(ref.text, tuple(args), self._span(meta)), ref)

    @v_args(meta=True)
    def user_arg(self, meta, children):
        *name, value = children
        return Arg(str(name[0]) if name else None, _python_value(value), self._span(meta))

    @v_args(meta=True)
    def weights_key(self, meta, children):
        (tok,) = children
        if not tok[1:-1]:
            raise SpecError("empty checkpoint key", self._tok_span(tok),
                            'name the entry that holds the state_dict, e.g. key "params_ema"')
        return ("key", tok[1:-1])

    @v_args(meta=True)
    def weights(self, meta, children):
        path_tok, *rest = children
        span = self._span(meta)
        key = rest.pop(0)[1] if rest and isinstance(rest[0], tuple) else None
        seed = lower.fallback_seed(rest[0]) if rest else None
        path = self.spec_dir / lower.check_text(path_tok[1:-1], self._tok_span(path_tok), "a path")
        return ("weights", Weights(path, seed, span, key), span)

    @v_args(meta=True)
    def mode(self, meta, children):
        (tok,) = children
        if str(tok) not in ("eval", "train"):
            raise SpecError(f"unknown mode '{tok}'", self._tok_span(tok),
                            did_you_mean(str(tok), ["eval", "train"]) or
                            "`mode eval` (the default) or `mode train` (forward as upstream "
                            "runs it in train mode; BatchNorm and Dropout stay in eval)")
        return ("mode", str(tok), self._span(meta))

    @v_args(meta=True)
    def archs_dir(self, meta, children):
        (tok,) = children
        return ArchsDir(self.spec_dir / tok[1:-1], self._span(meta))

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
        arch, user = found["arch"] if isinstance(found["arch"], tuple) else (found["arch"], None)
        return ("source", PyTorchSource(arch, found.get("weights"), span, user,
                                        found.get("mode", "eval")), span)

    @v_args(meta=True)
    def source_file(self, meta, children):
        kind, path_tok = children
        span = self._span(meta)
        kinds = {"onnx": OnnxSource, "tensorflow": TensorFlowSource,
                 "torchscript": TorchScriptSource, "exported": ExportedProgramSource}
        if str(kind) not in kinds:
            raise SpecError(f"unknown source kind '{kind}'", self._tok_span(kind),
                            did_you_mean(str(kind), list(kinds)) or
                            "supported: onnx \"file.onnx\", tensorflow \"frozen.pb\", "
                            "torchscript \"g.pt\", exported \"g.pt2\"")
        path = lower.check_text(path_tok[1:-1], self._tok_span(path_tok), "a path")
        return ("source", kinds[str(kind)](self.spec_dir / path, span), span)

    def dim(self, children):
        (tok,) = children
        return lower.integer(str(tok), self._tok_span(tok)) if tok.type == "INT" else str(tok)

    def shape(self, children):
        return tuple(children)

    @v_args(meta=True)
    def batch(self, meta, children):
        return tuple((lower.integer(str(t), self._tok_span(t)), self._tok_span(t)) for t in children)

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
        opset = lower.integer(str(tok), self._tok_span(tok))
        return ("opset", lower.check_opset(opset, self._tok_span(tok)), self._span(meta))

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
    def atc_batch(self, meta, children):
        sizes = [c for c in children if isinstance(c, Token)]
        settings = tuple(c for c in children if isinstance(c, lower.Setting))
        batches = tuple((lower.integer(str(t), self._tok_span(t)), self._tok_span(t)) for t in sizes)
        return lower.BatchSettings(batches, settings, self._span(meta))

    @v_args(meta=True)
    def atc_env(self, meta, children):
        name, value = children
        return lower.EnvSetting(str(name), self._tok_span(name), value, self._span(meta))

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


# How deep `[...]` lists may nest. The Transformer recurses per level, so a list nested a few
# hundred deep would hit Python's recursion limit; no value gancc reads nests past 3.
MAX_NESTING = 32


def _check_nesting(text: str, path: str) -> None:
    """A SpecError at the first '[' deeper than MAX_NESTING (strings and comments skipped)."""
    if text.count("[") <= MAX_NESTING:
        return
    depth, line, col, i = 0, 1, 0, 0
    in_string = in_comment = False
    while i < len(text):
        ch = text[i]
        col += 1
        if ch == "\n":
            line, col, in_string, in_comment = line + 1, 0, False, False
        elif in_comment:
            pass
        elif in_string:
            if ch == "\\":
                i, col = i + 1, col + 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "#":
            in_comment = True
        elif ch == "[":
            depth += 1
            if depth > MAX_NESTING:
                raise SpecError(f"lists nest more than {MAX_NESTING} deep here",
                                Span(path, line, col, line, col + 1),
                                "no spec value is a list nested that deep", text)
        elif ch == "]":
            depth = max(0, depth - 1)
        i += 1


def _error_span(path: str, obj) -> Span | None:
    """Where the tree or token lark was visiting when a Transformer method raised."""
    meta = getattr(obj, "meta", None)
    if meta is not None and not getattr(meta, "empty", True):
        return Span(path, meta.line, meta.column, meta.end_line, meta.end_column)
    if isinstance(obj, Token) and obj.line is not None:
        return Span(path, obj.line, obj.column, obj.end_line, obj.end_column)
    return None


def _transform(transformer: Transformer, tree, text: str, path: str):
    """Run `transformer`. lark wraps whatever a method raises in a VisitError: a GanccError comes
    out as itself (a SpecError with the text, for the caret); a value Python cannot take
    (ValueError, OverflowError, too deep) as a SpecError at the construct; anything else as
    the original exception, which is a gancc bug."""
    try:
        return transformer.transform(tree)
    except VisitError as err:
        inner = err.orig_exc
        if isinstance(inner, SpecError) and inner.source is None:
            inner.source = text
        if isinstance(inner, GanccError):
            raise inner from None
        if isinstance(inner, (ValueError, OverflowError, RecursionError)):
            raise SpecError(f"cannot read this value: {inner}", _error_span(path, err.obj),
                            "numbers in a spec are 64-bit integers or finite decimals",
                            text) from None
        raise inner from None
    except RecursionError:
        raise SpecError("the spec nests too deeply to read", Span(path, 1, 1),
                        f"lists nest at most {MAX_NESTING} deep", text) from None


def _read_statements(transformer: Transformer, tree, text: str, path: str) -> tuple:
    """The file's statements, read one at a time after its templates are expanded, so that
    an error inside a model made from a template also names the other place (templates.py)."""
    items = []
    for node, use in templates.expand(tree, path, text):
        try:
            item = _transform(transformer, node, text, path)
        except SpecError as err:
            raise (templates.located(err, use) if use is not None else err) from None
        if use is not None:     # for errors found later: checks and the build (in_model)
            item = dataclasses.replace(item, made_from=templates.origin(use, text))
        items.append(item)
    return tuple(items)


def expand_text(text: str, path: str | Path = "<spec>") -> str:
    """The spec with its templates written out (`gancc check --expand`); it parses to the
    same models. Errors are raised as parse_text raises them."""
    parse_text(text, path)
    return templates.expanded_text(_parser().parse(text), str(Path(path)), text)


def parse_text(text: str, path: str | Path = "<spec>") -> SpecFile:
    """Parse spec text. Raises SpecError (never a lark or Python exception) on bad input."""
    path = Path(path)
    name = str(path)
    _check_nesting(text, name)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as err:
        raise _syntax_error(err, name, text) from None
    items = _read_statements(_ToModel(name, path.parent), tree, text, name)
    arch_dirs = tuple(i for i in items if isinstance(i, ArchsDir))
    items = tuple(i for i in items if not isinstance(i, ArchsDir))
    # rules, `rewrites "dir"` and `archs "dir"` are file-level: every model gets them
    models, rules, dirs = finish_rules(items, text)
    if arch_dirs:
        models = tuple(dataclasses.replace(m, arch_dirs=arch_dirs) for m in models)
    try:
        lower.check_unique_models(models)
    except SpecError as err:
        err.source = text  # the path may not exist on disk: show the text that was parsed
        raise
    if not models and not rules:     # a file of rules only serves `--spec` (explain, opt)
        raise SpecError("the spec declares no model", Span(name, 1, 1),
                        "start with `model <name> { ... }`", text)
    return SpecFile(path, models, text, rules, dirs, arch_dirs)


def parse_pipeline(text: str, path: str = "<passes>") -> tuple[PassStep, ...]:
    """A one-line pipeline, `a,b{k=v}`, as the steps a `rewrite { }` block would give (spans
    at line 1, column = character). Raises SpecError on bad input."""
    _check_nesting(text, path)
    try:
        tree = _parser("pipeline.lark", "pipeline").parse(text)
    except UnexpectedInput as err:
        raise _syntax_error(err, path, text, end="end of the pipeline") from None
    return _transform(_Steps(path), tree, text, path)


def parse_file(path: str | Path) -> SpecFile:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GanccError(f"spec file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise GanccError(f"cannot read spec file {path}: {err}") from None
    return parse_text(text, path)


def _python_value(value: lower.Value):
    """An argument for a user's Python callable: a bare `none` is None (lists stay tuples
    here, so the spec stays hashable; gancc.archs.user passes them as lists)."""
    if isinstance(value.value, tuple):
        return tuple(_python_value(v) for v in value.value)
    return None if value.bare and value.value == "none" else value.value


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")


def _arch_ref(text: str, spec_dir: Path, span: Span) -> ArchRef:
    """`"nets.py:UNet"` (a file relative to the spec) or `"pkg.mod:UNet"` (a module)."""
    where, colon, attr = text.rpartition(":")
    hint = ('write "file.py:Name" (a file next to the spec) or "package.module:Name"; Name is '
            "a class or a function returning an nn.Module")
    if not colon or not where or not _IDENTIFIER.match(attr):
        raise SpecError(f"bad architecture reference \"{text}\"", span, hint)
    if where.endswith(".py"):
        return ArchRef(text, spec_dir / where, None, attr, span)
    if not all(_IDENTIFIER.match(part) for part in where.split(".")):
        raise SpecError(f"bad architecture reference \"{text}\": '{where}' is neither a .py file "
                        "nor a module name", span, hint)
    return ArchRef(text, None, where, attr, span)
