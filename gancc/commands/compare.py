"""`gancc compare SPEC`: device outputs against the ONNX graph, by the recipe's metric and the
spec's `require` lines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gancc.commands._common import add_data_arguments, one_model


def add_parser(sub: argparse._SubParsersAction) -> None:
    cp = sub.add_parser("compare", help="compare device outputs with the ONNX graph",
                        description="Run the built ONNX graph on the prepared inputs and compare "
                                    "every output with the device's: the recipes' cosine "
                                    "criterion (--min) and the spec's `require` lines, on the "
                                    "whole set's figures.")
    add_data_arguments(cp)
    cp.add_argument("--bins", type=Path, required=True, metavar="DIR")
    cp.add_argument("--inputs", type=Path, required=True, metavar="DIR", help="the `gancc prep` folder")
    cp.add_argument("--onnx", type=Path, metavar="FILE",
                    help="default: BUILD_DIR/<model>/<model>.onnx")
    cp.add_argument("-o", "--out-dir", type=Path, default=Path("build"), metavar="BUILD_DIR")
    cp.add_argument("--tool", choices=("ais_bench", "msame", "benchmark"))
    cp.add_argument("--dtype", choices=("float32", "float16"), default="float32")
    cp.add_argument("--min", type=float, metavar="X",
                    help="the recipes' criterion, per output: the mean per-pixel channel cosine "
                         "(across the channels of the output's layout; the flattened cosine for "
                         "a one-channel output) must be >= X (default 0.99)")
    cp.add_argument("--require", action="append", metavar="'METRIC OP X [for OUTPUT]'",
                    help="replace the spec's `require` lines (repeatable), e.g. for fp16 device "
                         "outputs: --require 'max_abs <= 2e-3'")
    cp.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    cp.add_argument("--html", type=Path, metavar="FILE",
                    help="also write the page `gancc validate` writes: per-figure distributions "
                         "over the files, the worst file, the checks")


def run(args) -> int:
    import json

    from gancc.data_io import compare, parse_require
    from gancc.fsutil import write_text_atomic

    model = one_model(args)
    onnx_path = args.onnx or args.out_dir / model.name / f"{model.name}.onnx"
    requires = [parse_require(t) for t in args.require] if args.require else None
    summary = compare(model, onnx_path, args.bins, args.inputs, args.tool, args.dtype, requires,
                      0.99 if args.min is None else args.min)
    for name, out in summary["outputs"].items():
        metric = out["headline"]
        print(f"{name}:")
        for row in out["rows"]:
            print(f"  {row['file']}: {metric} {row[metric]:.6f}  max_abs {row['max_abs']:.3g}")
        print(f"  {summary['files']} file(s), mean {metric} {out['mean']:.6f}, "
              f"worst {out['worst']:.6f}, max_abs {out['set']['max_abs']:.3g}")
    for check in summary["checks"]:
        verdict = "ok" if check["passed"] else "FAILED"
        print(f"  {check['output']}: {check['metric']} {check['value']:.6g} {check['require']} "
              f"({check['where']}): {verdict}")
    _set_figures(summary)
    if args.json:
        write_text_atomic(args.json, json.dumps(summary, indent=2) + "\n")
    if args.html:
        from gancc.validation import page

        write_text_atomic(args.html, page.render(_page_result(summary)))
    if summary["missing"]:
        print(f"error: {len(summary['missing'])} prepared file(s) have no output: "
              f"{', '.join(summary['missing'][:5])}", file=sys.stderr)
    for failure in summary["failures"]:
        print(f"error: {failure}", file=sys.stderr)
    return 1 if summary["missing"] or summary["failures"] else 0


def _set_figures(summary: dict) -> None:
    """The per-file rows and per-figure statistics of `gancc validate` (validation.summary),
    added to compare's summary as `samples` and `figures`."""
    from gancc.validation.summary import rows_from_compare, summarise

    summary["samples"] = rows_from_compare(summary)
    summary["figures"] = summarise(summary["samples"])


def _page_result(summary: dict) -> dict:
    """compare's summary in the shape validation.html renders; the checks are compare's own
    (on the set's figures), each with its worst file beside it."""
    checks = []
    for c in summary["checks"]:
        stats = summary["figures"].get(f"{c['output']}.device.{c['metric']}", {})
        worst = stats.get("min" if c["require"].startswith(">") else "max", c["value"])
        checks.append({**c, "mean": c["value"], "worst": worst,
                       "worst_id": stats.get("worst_id", "-")})
    return {"model": summary["model"], "samples": summary["samples"], "reused": 0,
            "engine": {"name": "gancc compare (onnxruntime, one process)"},
            "summary": {"figures": summary["figures"], "checks": checks,
                        "failures": summary["failures"], "passed": not summary["failures"]}}
