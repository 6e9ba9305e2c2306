"""Every error a user can cause, and how it is shown.

All of them derive from GanccError, whose `render()` is the only thing the CLI prints for
them: no Python traceback ever reaches a user for a mistake of theirs. Each kind names the
place the user has to look at:

- SpecError: a .gan file, with `file:line:col`, the offending line, a caret and a hint;
- CheckpointError: a weights file and the state_dict keys that are wrong;
- GraphError: an ONNX graph and the node (and the rewrite that produced it, if known);
- ToolError: an external program (atc, ais_bench), its command line, exit code and log tail;
- ValidationError: an output whose figure fell below the spec's threshold.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable


@dataclass(frozen=True)
class Span:
    """A region of a spec file: 1-based line and column, end exclusive."""

    file: str
    line: int
    col: int
    end_line: int | None = None
    end_col: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A hint naming the closest valid choice, or None when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


class GanccError(Exception):
    """Base of all user-facing errors. `render()` is what the user reads."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        text = f"error: {self.message}"
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text


class UsageError(GanccError):
    """A command line that asks for nothing gancc can do (a missing action, a flag out of
    range): exit status 2, as argparse's own usage errors."""


class SpecError(GanccError):
    """A mistake in a .gan spec, pointing at file:line:col with a caret."""

    def __init__(self, message: str, span: Span | None, hint: str | None = None,
                 source: str | None = None):
        super().__init__(message, hint)
        self.span = span
        self.source = source
        # other places in the spec that explain this one (a template's use), shown after it
        self.notes: list[tuple[Span, str]] = []

    def _source_line(self, span: Span | None = None) -> str | None:
        span = span or self.span
        if span is None:
            return None
        text = self.source
        if text is None:
            try:
                text = Path(self.span.file).read_text(encoding="utf-8", errors="replace")
            except OSError:
                return None
        # lark counts lines by '\n' only; str.splitlines() would also break at \f, \v, \u2028
        lines = text.split("\n")
        if 1 <= span.line <= len(lines):
            return lines[span.line - 1]
        return None

    def render(self) -> str:
        if self.span is None:
            return super().render()
        out = [f"{self.span}: error: {self.message}"]
        line = self._source_line()
        if line is not None:
            gutter = f"{self.span.line:>5} | "
            out.append(gutter + line.expandtabs(4))
            width = 1
            if self.span.end_line == self.span.line and self.span.end_col:
                width = max(1, self.span.end_col - self.span.col)
            # expandtabs keeps the caret under the right column when the line has tabs
            prefix = line[: self.span.col - 1].expandtabs(4)
            out.append(" " * (len(gutter) - 2) + "| " + " " * len(prefix) + "^" * width)
        if self.hint:
            out.append(f"hint: {self.hint}")
        for span, text in self.notes:
            out.append(f"{span}: note: {text}")
            line = self._source_line(span)
            if line is not None:
                out.append(f"{span.line:>5} | " + line.expandtabs(4))
        return "\n".join(out)


class CheckpointError(GanccError):
    """A weights file that cannot be used: unreadable, unsafe, or with wrong keys."""

    def __init__(self, path: str | Path, message: str, hint: str | None = None,
                 missing: list[str] | None = None, unexpected: list[str] | None = None):
        super().__init__(message, hint)
        self.path = str(path)
        self.missing = missing or []
        self.unexpected = unexpected or []

    def render(self) -> str:
        out = [f"{self.path}: error: {self.message}"]
        for title, keys in (("missing keys", self.missing), ("unexpected keys", self.unexpected)):
            if keys:
                out.append(f"  {title} ({len(keys)}):")
                shown = keys[:20]
                out += [f"    {k}" for k in shown]
                if len(keys) > len(shown):
                    out.append(f"    ... and {len(keys) - len(shown)} more")
        if self.hint:
            out.append(f"hint: {self.hint}")
        return "\n".join(out)


class GraphError(GanccError):
    """A problem with an ONNX graph, naming the node (and its provenance, if any)."""

    def __init__(self, message: str, node: str | None = None, model: str | None = None,
                 hint: str | None = None):
        super().__init__(message, hint)
        self.node = node
        self.model = model

    def render(self) -> str:
        where = self.model or "graph"
        if self.node:
            where += f": node '{self.node}'"
        text = f"{where}: error: {self.message}"
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text


class ToolError(GanccError):
    """An external tool (atc, ais_bench, msame) that failed."""

    def __init__(self, command: list[str] | str, returncode: int, output_tail: str,
                 message: str | None = None, hint: str | None = None):
        cmd = command if isinstance(command, str) else " ".join(command)
        super().__init__(message or f"command failed with exit code {returncode}", hint)
        self.command = cmd
        self.returncode = returncode
        self.output_tail = output_tail

    def render(self) -> str:
        out = [f"error: {self.message}", f"  command: {self.command}"]
        if self.output_tail.strip():
            out.append("  last output:")
            out += ["    " + line for line in self.output_tail.strip().splitlines()[-15:]]
        if self.hint:
            out.append(f"hint: {self.hint}")
        return "\n".join(out)


class ValidationError(GanccError):
    """An output whose accuracy figure is below the spec's threshold."""
