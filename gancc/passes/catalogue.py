"""The rewrite catalogue as text: the markdown table of docs/rewrites.md (`gancc passes
--markdown`), generated from the registry so the documentation cannot drift from the code.
"""

from __future__ import annotations

from gancc.passes import registry

HEADER = "| name | kind | what |\n|---|---|---|\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def options_text(cls) -> str:
    fields = registry.option_fields(cls)
    if not fields:
        return ""
    return " Options: " + ", ".join(f"`{f.name}` (default {f.default!r})" for f in fields) + "."


def markdown_table(rules: tuple = ()) -> str:
    """One row per registered rewrite (then per spec rule), sorted by name."""
    rows = []
    for name, cls in registry.all_rewrites().items():
        rows.append(f"| `{name}` | {'exact' if cls.exact else 'lossy'} | "
                    f"{_cell(registry.summary(cls) + options_text(cls))} |")
    for rule in sorted(rules, key=lambda r: r.name):
        rows.append(f"| `{rule.name}` | rule | {_cell(rule.summary or 'spec rule')} "
                    f"({_cell(rule.source)}) |")
    return HEADER + "\n".join(rows) + "\n"
