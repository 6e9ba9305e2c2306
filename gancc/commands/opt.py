"""`gancc opt IN --passes PIPELINE -o OUT`: a textual rewrite pipeline on any ONNX file."""

from __future__ import annotations

import argparse
from pathlib import Path

from gancc.commands._common import load_input_graph, load_user_rewrites, spec_rules


def add_parser(sub: argparse._SubParsersAction) -> None:
    o = sub.add_parser("opt", help="run a rewrite pipeline on an ONNX file",
                       description="Apply a textual pipeline (as a build prints it) to any ONNX "
                                   "file, with the same verification as a build.")
    o.add_argument("input", type=Path)
    o.add_argument("--passes", required=True, metavar="PIPELINE",
                   help="e.g. 'reflect-pad-to-constant,fuse-pad-into-conv{max_pad=32}'")
    o.add_argument("-o", "--output", type=Path, required=True)
    o.add_argument("--rewrites", type=Path, action="append", metavar="DIR")
    o.add_argument("--spec", type=Path, metavar="SPEC", help="the spec whose rules to use")
    o.add_argument("--check-idempotent", action="store_true",
                   help="each pass must find nothing more to do on its own output")


def run(args) -> int:
    from gancc.graph import lift_constants
    from gancc.onnx_io import save_onnx
    from gancc.passes.factory import make_pipeline
    from gancc.passes.manager import VerifyOptions, run_pipeline
    from gancc.passes.pipeline_text import parse_steps

    load_user_rewrites(args.rewrites)
    rules = spec_rules(args.spec)
    passes = make_pipeline(parse_steps(args.passes), rules)
    model = load_input_graph(args.input, checker=True)   # the input's faults are its own
    lift_constants(model)
    results = run_pipeline(model, passes, VerifyOptions(idempotent=args.check_idempotent))
    save_onnx(model, args.output)    # atomic, and past protobuf's 2 GB limit
    for r in results:
        print(f"{r.name}: {r.matches} match(es), -{r.nodes_removed}/+{r.nodes_added} nodes")
    print(f"wrote {args.output}")
    return 0
