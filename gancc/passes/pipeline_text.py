"""The textual pass pipeline: `reflect-pad-to-constant,fuse-pad-into-conv{max_pad=32}`.

The same syntax as a spec's `rewrite { ... }` block written on one line (MLIR's
-pass-pipeline). A build prints its pipeline this way, and `gancc opt --passes` reads it
back, so any build step can be replayed on its own.
"""

from __future__ import annotations

import re
from typing import Any

from gancc.errors import GanccError

_STEP = re.compile(r"\s*([a-z][a-z0-9_]*(?:-[a-z0-9_]+)*)\s*(?:\{([^{}]*)\})?\s*(?:,|$)")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _value(text: str) -> Any:
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    if _NUMBER.match(text):
        return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def _split_options(text: str) -> list[str]:
    """`k=1,s="a,b"` -> ['k=1', 's="a,b"']: commas inside a quoted string do not split."""
    items, current, quoted = [], [], False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    return [item for item in items if item.strip()]


def parse_pipeline(text: str) -> list[tuple[str, dict[str, Any]]]:
    """`a,b{k=v}` -> [("a", {}), ("b", {"k": v})]. Raises GanccError on bad syntax."""
    steps: list[tuple[str, dict[str, Any]]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _STEP.match(text, pos)
        if not m or m.end() == pos:
            raise GanccError(f"bad pass pipeline at character {pos + 1}: {text[pos:pos + 30]!r}",
                             "write passes as name or name{key=value,...}, separated by commas")
        options: dict[str, Any] = {}
        for item in filter(None, _split_options(m.group(2) or "")):
            if "=" not in item:
                raise GanccError(f"bad option {item.strip()!r} for pass '{m.group(1)}'",
                                 "options are written key=value")
            key, value = item.split("=", 1)
            options[key.strip()] = _value(value)
        steps.append((m.group(1), options))
        pos = m.end()
    return steps


def format_step(name: str, options: dict[str, Any], defaults: dict[str, Any] | None = None) -> str:
    shown = {k: v for k, v in options.items() if defaults is None or defaults.get(k) != v}
    if not shown:
        return name

    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str) and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", v):
            return f'"{v}"'
        return str(v)

    return name + "{" + ",".join(f"{k}={fmt(v)}" for k, v in shown.items()) + "}"
