"""`gancc check SPEC`: parse and check a spec without building anything."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gancc.commands._common import load_user_rewrites, seed


def add_parser(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("check", help="check a spec without building",
                       description="Parse a spec and check its architectures, arguments, "
                                   "rewrites and options; nothing is exported or written.")
    c.add_argument("spec", type=Path)
    c.add_argument("--rewrites", type=Path, action="append", metavar="DIR")
    c.add_argument("--soc-version", metavar="SOC", help="as for build: the soc_version the "
                   "build will be given (else the spec's, else npu-smi's)")
    c.add_argument("--random-weights", nargs="?", const=0, type=seed, metavar="SEED",
                   help="as for build: a missing checkpoint is then not an error")
    c.add_argument("--no-code", action="store_true",
                   help="load no Python the spec names (`rewrites \"dir/\"`, `archs`, an "
                        "architecture file): checking an untrusted spec then runs none of its "
                        "code; the checks that need that code are skipped, and listed")
    c.add_argument("--expand", action="store_true",
                   help="print the spec with its templates written out (it parses back) on "
                        "stdout; the check's verdict goes to stderr")


def run(args) -> int:
    from gancc.checks import check_spec
    from gancc.spec import parse_file
    from gancc.spec.model import PyTorchSource, TensorFlowSource

    load_user_rewrites(args.rewrites)    # named on the command line: the user's own choice
    spec = parse_file(args.spec)
    if args.no_code:
        for skipped in _check_without_code(spec, args.soc_version, args.random_weights):
            print(f"skipped (--no-code): {skipped}", file=sys.stderr)
    else:
        check_spec(spec, args.soc_version, args.random_weights)   # what the build checks first
    from gancc.aipp.resolve import resolve_model

    from gancc.stages.atc_tuning import tuning_warnings

    for m in spec.models:   # as the build warns: atc options a target SoC may not take
        for warning in tuning_warnings(m, (args.soc_version,) if args.soc_version
                                       else m.atc.soc_versions or (m.atc.soc_version,)):
            print(f"warning: {warning}", file=sys.stderr)
    for m in spec.models:   # AIPP settings that are legal but probably wrong, on any SoC
        shown: set[str] = set()
        for soc in m.atc.soc_versions or (m.atc.soc_version,):
            for block in resolve_model(m, soc):
                for warning in block.warnings:
                    if warning not in shown:
                        shown.add(warning)
                        print(f"warning: {warning}", file=sys.stderr)
    verdict = sys.stderr if args.expand else sys.stdout   # with --expand, stdout is the spec
    for m in spec.models:
        note = ""
        weights = m.source.weights if isinstance(m.source, PyTorchSource) else None
        if weights is not None and not weights.path.exists():
            seed = args.random_weights if args.random_weights is not None else weights.fallback_seed
            note = f" (checkpoint {weights.path} not found: random weights, seed {seed})"
        elif isinstance(m.source, TensorFlowSource):   # the build's documented fallback
            from gancc.stages.tensorflow import converter_missing

            why = converter_missing()
            note = (f" (not converted to ONNX here: {why}; the build writes atc.sh for the "
                    ".pb and validates nothing)") if why else ""
        print(f"{m.name}: ok{note}", file=verdict)
    rules = f", {len(spec.rules)} rule(s)" if spec.rules else ""
    print(f"{args.spec}: {len(spec.models)} model(s){rules}, no problems found", file=verdict)
    if args.expand:
        from gancc.spec.parser import expand_text

        sys.stdout.write(expand_text(spec.source, args.spec))
    return 0


def _check_without_code(spec, soc_version: str | None, random_seed: int | None) -> list[str]:
    """check_spec's checks that run none of the spec's Python (its `rewrites` and `archs`
    folders, an architecture file or module); returns what was skipped, and why."""
    from gancc.aipp.resolve import resolve_model
    from gancc.checks import check_architecture, check_build_inputs
    from gancc.passes import factory
    from gancc.spec.model import PyTorchSource
    from gancc.errors import GanccError
    from gancc.spec.templates import in_model

    skipped = []
    if spec.rewrite_dirs:
        skipped.append("the rewrite pipelines: the spec loads Python rewrites from "
                       + ", ".join(str(d.path) for d in spec.rewrite_dirs))
    for model in spec.models:
        try:
            source = model.source
            user_code = isinstance(source, PyTorchSource) and (source.user is not None
                                                              or model.arch_dirs)
            if user_code:
                skipped.append(f"model '{model.name}': the architecture and its trace (its "
                               "code is the spec's)")
            elif isinstance(source, PyTorchSource):
                check_architecture(model)
            if not spec.rewrite_dirs:
                factory.make_passes(model, spec.source)
            check_build_inputs(model, soc_version, random_seed)
            for soc in model.atc.soc_versions or (model.atc.soc_version,):
                resolve_model(model, soc)
        except GanccError as err:       # a model made from a template: name it, and its use
            in_model(err, model)
            raise
    return skipped
