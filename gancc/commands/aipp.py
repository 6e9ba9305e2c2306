"""`gancc aipp import FILE | presets`: an existing AIPP config as spec syntax; the CSC presets."""

from __future__ import annotations

import argparse
from pathlib import Path

from gancc.errors import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    ai = sub.add_parser("aipp", help="AIPP tools: import a config, list CSC presets")
    ai_sub = ai.add_subparsers(dest="aipp_command", metavar="ACTION")
    imp = ai_sub.add_parser("import", help="print an existing AIPP config file as spec syntax")
    imp.add_argument("file", type=Path)
    imp.add_argument("--input", action="append", metavar="NAME",
                     help="input name for each aipp_op block, in order (default: input<rank>)")
    ai_sub.add_parser("presets", help="list the named CSC presets (`csc preset=NAME`)")


def run(args) -> int:
    if args.aipp_command == "import":
        from gancc.aipp.spectext import check_round_trip, read_config, to_spec

        blocks = read_config(args.file)
        text = to_spec(blocks, args.input, str(args.file))
        check_round_trip(blocks, text, args.input)   # what is printed parses back the same
        print(text, end="")
        return 0
    if args.aipp_command == "presets":
        from gancc.aipp.presets import PRESETS

        for p in PRESETS.values():
            rows = " / ".join(",".join(map(str, r)) for r in p.matrix)
            print(f"{p.name:<22} {p.description:<36} matrix {rows}  {p.bias_kind}_bias "
                  f"{','.join(map(str, p.bias))}")
        return 0
    raise UsageError("gancc aipp needs an action: import FILE, or presets",
                     "e.g. gancc aipp import aipp.cfg")
