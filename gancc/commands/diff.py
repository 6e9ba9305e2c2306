"""`gancc diff A [B]`: structural diff of two graphs or build stages.

Exit status as diff(1): 0 equal, 1 different, 2 trouble, so this command reports its own
errors and returns 2 rather than leaving them to the CLI's exit status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gancc.errors import GanccError


def add_parser(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("diff", help="structural diff of two graphs or two build stages",
                       description="Match the nodes of A and B by structure (topology, op type, "
                                   "attributes, constant values), not by name, and report what "
                                   "changed, grouped by the rewrite that made it. A and B are "
                                   ".onnx files, build folders, or dump stages DIR:STAGE "
                                   "(gancc build --dump-dir); with one DIR:STAGE operand, the "
                                   "diff is that stage against the one before it. Changes no "
                                   "new provenance tag accounts for are grouped as untagged. "
                                   "Exit status: 0 equal (renamed nodes and renamed symbolic "
                                   "dims are not differences), 1 different, 2 error.")
    d.add_argument("a", metavar="A", help="an .onnx file, a build folder, or DIR:STAGE "
                   "(a stage name, a number, or final)")
    d.add_argument("b", metavar="B", nargs="?", help="the same kinds as A (default: with "
                   "A=DIR:STAGE, the stage before it is compared with it)")
    d.add_argument("--json", action="store_true", help="print JSON (schema gancc.diff/1)")
    d.add_argument("--html", type=Path, metavar="FILE",
                   help="write a self-contained side-by-side HTML page instead of the text diff")
    d.add_argument("--context", type=int, default=3, metavar="N",
                   help="unchanged nodes shown around each change in the HTML (default 3)")
    d.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="colour the text (auto: on a terminal, unless NO_COLOR is set)")
    d.add_argument("-v", "--verbose", action="store_true",
                   help="also list renamed nodes and the matcher's statistics")


def run(args) -> int:
    """Exit 0 equal, 1 different, 2 trouble (as diff(1) does), so errors return 2 here."""
    try:
        from gancc.diff import diff_models
        from gancc.diff import load as operands
        from gancc.diff.text import render_text, to_json

        if args.b is None:
            a, b = operands.resolve_previous(args.a)
        else:
            a, b = operands.resolve(args.a), operands.resolve(args.b)
        result = diff_models(operands.load(a), operands.load(b), a.label, b.label)
        if args.html is not None:
            from gancc.diff.html import render_html
            from gancc.fsutil import write_text_atomic

            write_text_atomic(args.html, render_html(result, max(0, args.context)))
        try:
            if args.json:
                import json
                print(json.dumps(to_json(result), indent=2))
            elif args.html is not None:     # the page is the result; the exit status says equal
                print(f"wrote {args.html}")
            else:
                colour = args.color == "always" or (args.color == "auto" and sys.stdout.isatty()
                                                    and not os.environ.get("NO_COLOR"))
                sys.stdout.write(render_text(result, colour=colour, verbose=args.verbose))
            sys.stdout.flush()
        except BrokenPipeError:         # `gancc diff ... | head`: the reader has had enough
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0 if result.equal else 1
    except GanccError as err:
        print(err.render(), file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
