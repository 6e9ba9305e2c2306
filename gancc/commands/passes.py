"""`gancc passes [NAME]`: the rewrite catalogue, or one rewrite in full."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gancc.commands._common import load_user_rewrites, spec_rules


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("passes", help="list the rewrites, or describe one")
    p.add_argument("name", nargs="?", help="a rewrite to describe in full")
    p.add_argument("--rewrites", type=Path, action="append", metavar="DIR")
    p.add_argument("--spec", type=Path, metavar="SPEC", help="also list the rules of this spec")
    p.add_argument("--markdown", action="store_true",
                   help="print the catalogue as the markdown table of docs/rewrites.md")
    p.add_argument("--json", action="store_true",
                   help="print the catalogue as JSON (name, kind, options, summary)")


def run(args) -> int:
    from gancc.passes import registry
    from gancc.passes.rules import rule_class
    from gancc.spec.model import find_rule

    load_user_rewrites(args.rewrites)
    rules = spec_rules(args.spec)
    if args.markdown:
        from gancc.passes.catalogue import markdown_table

        sys.stdout.write(markdown_table(rules))
        return 0
    if args.name:
        rule = find_rule(rules, args.name)
        cls = rule_class(rule) if rule is not None else registry.get(args.name)
        _describe(cls, "spec rule" if rule is not None else None)
        return 0
    rows = []
    for name, cls in registry.all_rewrites().items():
        opts = ", ".join(f"{f.name}={f.default!r}" for f in registry.option_fields(cls))
        rows.append([name, "exact" if cls.exact else "lossy", opts, registry.summary(cls)])
    for rule in rules:
        rows.append([rule.name, "rule", "", f"{rule.summary or 'spec rule'} ({rule.source})"])
    columns = ["name", "kind", "options", "summary"]
    if args.json:
        import json

        print(json.dumps([dict(zip(columns, row)) for row in rows], indent=2))
        return 0
    from gancc.console import print_table

    print_table(columns, rows, title="gancc rewrites")
    return 0


def _describe(cls, kind: str | None) -> None:
    """One rewrite in full; plain text (not wrapped at 80 columns) when stdout is a pipe."""
    from gancc.console import stdout_is_terminal
    from gancc.passes import registry

    fields = registry.option_fields(cls)
    kind = kind or ("exact" if cls.exact else "lossy")
    head = f"{cls.name}  ({kind}, anchor: {cls.anchor or '(the whole graph)'}, " \
           f"defined at {cls.source})"
    lines = ["", registry.description(cls)]
    if fields:
        lines += ["", "options:"] + [f"  {f.name} = {f.default!r}" for f in fields]
    if not stdout_is_terminal():
        print("\n".join([head, *lines]))
        return
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False)
    console.print(f"[bold]{escape(head)}[/bold]")
    console.print("\n".join(lines), markup=False)
