"""`gancc explain REWRITE MODEL.onnx`: what one rewrite does to each candidate node, and why."""

from __future__ import annotations

import argparse
from pathlib import Path

from gancc.commands._common import load_input_graph, load_user_rewrites, spec_rules
from gancc.errors import GanccError


def add_parser(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("explain", help="what a rewrite does to each candidate node, and why",
                       description="Run one rewrite on a copy of an ONNX file and show, for each "
                                   "node of its anchor op type, whether it fired or why it "
                                   "declined. The file is not modified.")
    e.add_argument("rewrite", metavar="REWRITE",
                   help="a rewrite or spec rule, optionally with options: 'name{key=value}'")
    e.add_argument("input", type=Path, metavar="MODEL.onnx")
    e.add_argument("--options", metavar="'{k=v,...}'", help="options, as in a pipeline step")
    e.add_argument("--spec", type=Path, metavar="SPEC", help="the spec whose rules to use")
    e.add_argument("--rewrites", type=Path, action="append", metavar="DIR")
    e.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args) -> int:
    import json

    from gancc.passes.explain import explain, render
    from gancc.passes.factory import make_step
    from gancc.passes.pipeline_text import parse_steps

    load_user_rewrites(args.rewrites)
    rules = spec_rules(args.spec)
    steps = parse_steps(args.rewrite + (args.options or ""))
    if len(steps) != 1:
        raise GanccError(f"explain takes one rewrite, got {len(steps)}: {args.rewrite}",
                         "explain them one at a time")
    try:
        rule = make_step(steps[0], rules)
    except GanccError as err:
        if args.spec is None and err.hint == "`gancc passes` lists them all":
            err.hint = "`gancc passes` lists them all; a spec's rule needs --spec SPEC"
        raise
    model = load_input_graph(args.input, checker=True)
    result = explain(rule, model)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        render(result, str(args.input))
    return 0
