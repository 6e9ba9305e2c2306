"""`gancc check SPEC`: parse and check a spec without building anything."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gancc.commands._common import load_user_rewrites


def add_parser(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("check", help="check a spec without building",
                       description="Parse a spec and check its architectures, arguments, "
                                   "rewrites and options; nothing is exported or written.")
    c.add_argument("spec", type=Path)
    c.add_argument("--rewrites", type=Path, action="append", metavar="DIR")


def run(args) -> int:
    from gancc.checks import check_spec
    from gancc.spec import parse_file
    from gancc.spec.model import PyTorchSource

    load_user_rewrites(args.rewrites)
    spec = parse_file(args.spec)
    check_spec(spec)
    from gancc.aipp.resolve import resolve_model

    for m in spec.models:   # AIPP settings that are legal but probably wrong
        for block in resolve_model(m, m.atc.soc_version):
            for warning in block.warnings:
                print(f"warning: {warning}", file=sys.stderr)
    for m in spec.models:
        note = ""
        if isinstance(m.source, PyTorchSource) and m.source.weights and not m.source.weights.path.is_file():
            seed = m.source.weights.fallback_seed
            note = (f" (checkpoint {m.source.weights.path} not found: "
                    + (f"random weights, seed {seed})" if seed is not None else "build will fail)"))
        elif not isinstance(m.source, PyTorchSource) and not m.source.path.is_file():
            note = f" ({m.source.path} not found: build will fail)"
        print(f"{m.name}: ok{note}")
    rules = f", {len(spec.rules)} rule(s)" if spec.rules else ""
    print(f"{args.spec}: {len(spec.models)} model(s){rules}, no problems found")
    return 0
