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


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from gancc.passes import registry
    from gancc.passes.rules import rule_class
    from gancc.spec.model import find_rule

    load_user_rewrites(args.rewrites)
    rules = spec_rules(args.spec)
    console = Console()
    if args.markdown:
        from gancc.passes.catalogue import markdown_table

        sys.stdout.write(markdown_table(rules))
        return 0
    if args.name:
        rule = find_rule(rules, args.name)
        cls = rule_class(rule) if rule is not None else registry.get(args.name)
        fields = registry.option_fields(cls)
        kind = "spec rule" if rule is not None else "exact" if cls.exact else "lossy"
        anchor = cls.anchor or "(the whole graph)"
        console.print(f"[bold]{cls.name}[/bold]  ({kind}, "
                      f"anchor: {anchor}, defined at {cls.source})\n")
        console.print(registry.description(cls), markup=False, highlight=False)
        if fields:
            console.print("\noptions:")
            for f in fields:
                console.print(f"  {f.name} = {f.default!r}", markup=False)
        return 0
    table = Table(title="gancc rewrites")
    for col in ("name", "kind", "options", "summary"):
        table.add_column(col)
    for name, cls in registry.all_rewrites().items():
        opts = ", ".join(f"{f.name}={f.default!r}" for f in registry.option_fields(cls))
        table.add_row(name, "exact" if cls.exact else "lossy", opts, registry.summary(cls))
    for rule in rules:
        table.add_row(rule.name, "rule", "", f"{rule.summary or 'spec rule'} ({rule.source})")
    console.print(table)
    return 0
