"""The textual pass pipeline: `reflect-pad-to-constant,fuse-pad-into-conv{max_pad=32}`.

A spec's `rewrite { ... }` block written on one line, with commas between the steps (MLIR's
-pass-pipeline). A build prints its pipeline this way (`format_step`), and `gancc opt --passes`
reads it back (`parse_steps`), so any build step can be replayed on its own. The grammar of a
step is the spec's own (gancc/spec/pipeline.lark), so a step means the same in both places.
"""

from __future__ import annotations

import re
from typing import Any

from gancc.errors import GanccError
from gancc.spec.model import PassStep

# The hint of a pipeline syntax error whose message has none of its own (as before the
# pipeline had a grammar).
PIPELINE_HINT = "write passes as name or name{key=value,...}, separated by commas"

_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")     # strings written without quotes
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}


def parse_steps(text: str) -> tuple[PassStep, ...]:
    """`a,b{k=v}` -> its steps, as a spec's `rewrite { a b{k=v} }` gives them. A GanccError
    names the character of a mistake, with the message a spec gives for it."""
    from gancc.errors import SpecError
    from gancc.spec.parser import parse_pipeline

    try:
        return parse_pipeline(text)
    except SpecError as err:
        lines = text.split("\n")
        at = sum(len(line) + 1 for line in lines[:err.span.line - 1]) + err.span.col
        raise GanccError(f"bad pass pipeline at character {at}: {err.message}",
                         err.hint or PIPELINE_HINT) from None


def parse_pipeline(text: str) -> list[tuple[str, dict[str, Any]]]:
    """`a,b{k=v}` -> [("a", {}), ("b", {"k": v})]. Raises GanccError on bad syntax."""
    return [(step.name, step.option_dict()) for step in parse_steps(text)]


def format_value(value: Any) -> str:
    """`value` as a step option writes it; parse_steps reads it back as the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    if isinstance(value, str):
        if _BARE.fullmatch(value) and value not in ("true", "false"):
            return value
        return '"' + "".join(_ESCAPES.get(ch, ch) for ch in value) + '"'
    return str(value)


def format_step(name: str, options: dict[str, Any], defaults: dict[str, Any] | None = None) -> str:
    """One step, `name{key=value,...}`, leaving out options equal to their `defaults`."""
    shown = {k: v for k, v in options.items() if defaults is None or defaults.get(k) != v}
    if not shown:
        return name
    return name + "{" + ",".join(f"{k}={format_value(v)}" for k, v in shown.items()) + "}"
