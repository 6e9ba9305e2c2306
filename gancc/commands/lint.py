"""`gancc lint MODEL.onnx`: what atc cannot parse in an ONNX file, and each fix."""

from __future__ import annotations

import argparse
from pathlib import Path

from gancc.commands._common import load_onnx
from gancc.errors import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    li = sub.add_parser("lint", help="check an ONNX file against what atc can parse",
                        description="ATC compatibility: ops and attributes atc cannot parse at "
                                    "the model's opset, and known risky cases, each with its fix. "
                                    "Exit status 1 when atc would fail.")
    li.add_argument("model", type=Path, help="the .onnx file")
    li.add_argument("--soc", metavar="SOC", help="the target soc_version, e.g. Ascend310P3")
    li.add_argument("--json", action="store_true", help="print the findings as JSON on stdout")


def run(args) -> int:
    import json

    from gancc.stages import lint

    model = load_onnx(args.model)
    if args.soc and not args.soc.startswith("Ascend"):
        raise UsageError(f"--soc {args.soc} does not name an Ascend SoC", "e.g. Ascend310P3")
    findings = lint.lint(model, args.soc)
    if args.json:
        print(json.dumps(lint.to_json(findings, args.soc), indent=2))
    else:
        for f in findings:
            print(f"{args.model}: {f.render()}")
        errors = sum(f.severity == "error" for f in findings)
        print(f"{args.model}: {errors} error(s), {len(findings) - errors} warning(s)"
              + (": atc can parse it" if not errors else ": atc would fail"))
    return 1 if any(f.severity == "error" for f in findings) else 0
