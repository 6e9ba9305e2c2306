"""`gancc compare SPEC`: device outputs against the ONNX graph, by the recipe's metric."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gancc.commands._common import add_data_arguments, one_model


def add_parser(sub: argparse._SubParsersAction) -> None:
    cp = sub.add_parser("compare", help="compare device outputs with the ONNX graph",
                        description="Run the built ONNX graph on the prepared inputs and compute "
                                    "the recipe's metric against the device outputs.")
    add_data_arguments(cp)
    cp.add_argument("--bins", type=Path, required=True, metavar="DIR")
    cp.add_argument("--inputs", type=Path, required=True, metavar="DIR", help="the `gancc prep` folder")
    cp.add_argument("--onnx", type=Path, metavar="FILE",
                    help="default: BUILD_DIR/<model>/<model>.onnx")
    cp.add_argument("-o", "--out-dir", type=Path, default=Path("build"), metavar="BUILD_DIR")
    cp.add_argument("--tool", choices=("ais_bench", "msame"))
    cp.add_argument("--dtype", choices=("float32", "float16"), default="float32")
    cp.add_argument("--min", type=float, metavar="X",
                    help="fail (exit 1) when the mean pixel_cosine is below X (default 0.99)")
    cp.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")


def run(args) -> int:
    import json

    from gancc.data_io import compare
    from gancc.fsutil import write_text_atomic

    model = one_model(args)
    onnx_path = args.onnx or args.out_dir / model.name / f"{model.name}.onnx"
    summary = compare(model, onnx_path, args.bins, args.inputs, args.tool, args.dtype)
    metric = summary["metric"]
    for row in summary["rows"]:
        print(f"  {row['file']}: {metric} {row[metric]:.6f}  max_abs {row['max_abs']:.3g}")
    print(f"{model.name}: {summary['files']} file(s), mean {metric} {summary['mean']:.6f}, "
          f"worst {summary['worst']:.6f}")
    if args.json:
        write_text_atomic(args.json, json.dumps(summary, indent=2) + "\n")
    failed = False
    if summary["missing"]:
        print(f"  {len(summary['missing'])} prepared file(s) have no output: "
              f"{', '.join(summary['missing'][:5])}", file=sys.stderr)
        failed = True
    if metric == "pixel_cosine":
        threshold = 0.99 if args.min is None else args.min
        if summary["mean"] < threshold:
            print(f"error: mean pixel_cosine {summary['mean']:.6f} is below {threshold}",
                  file=sys.stderr)
            failed = True
    return 1 if failed else 0
