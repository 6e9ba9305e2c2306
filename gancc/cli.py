"""The `gancc` command line.

    gancc build SPEC      export -> simplify -> rewrite -> atc commands -> validate -> report
    gancc check SPEC      check a spec (syntax, architectures, rewrites) without building
    gancc passes [NAME]   list the rewrites, or describe one
    gancc opt IN -o OUT --passes PIPELINE   run a textual rewrite pipeline on any ONNX file

User mistakes end in a message naming the file and line (or node, or key) and what to do,
with exit status 1; usage errors exit 2. A traceback is printed only for gancc's own bugs
when GANCC_DEBUG=1 is set.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from gancc import __version__
from gancc.errors import GanccError

EPILOG = """examples:
  gancc build specs/cyclegan.gan                 build every model in the spec
  gancc build specs/cyclegan.gan --model cyclegan_g_a -o out/
  gancc build specs/cyclegan.gan --random-weights   use seeded weights if a checkpoint is missing
  gancc check specs/cyclegan.gan
  gancc passes fuse-pad-into-conv
  gancc opt model.onnx --passes 'reflect-pad-to-constant,fuse-pad-into-conv' -o out.onnx
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gancc", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compile GAN generators from PyTorch weights (or ONNX) to atc-ready ONNX, "
                    "atc commands and AIPP configs for Huawei Ascend NPUs, validated on the CPU.")
    parser.add_argument("--version", action="version", version=f"gancc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    b = sub.add_parser("build", help="build the models of a spec",
                       description="Export, simplify, rewrite, emit atc commands (and run atc "
                                   "when installed), validate on the CPU, write report.json. "
                                   "Outputs go to OUT_DIR/<model>/, replaced only on success.")
    b.add_argument("spec", type=Path, help="the .gan spec file")
    b.add_argument("--model", action="append", metavar="NAME",
                   help="build only this model (repeatable; default: all)")
    b.add_argument("-o", "--out-dir", type=Path, default=Path("build"),
                   help="output root; each model gets OUT_DIR/<model>/ (default: build)")
    b.add_argument("--random-weights", nargs="?", const=0, type=int, metavar="SEED",
                   help="if a checkpoint is missing, use seeded random weights (default seed 0)")
    b.add_argument("--soc-version", metavar="SOC", help="override the spec's atc soc_version")
    b.add_argument("--atc", metavar="PATH", help="the atc binary (default: `atc` on PATH, if any)")
    b.add_argument("--no-atc", action="store_true", help="only write atc.sh, never run atc")
    b.add_argument("--no-validate", action="store_true", help="skip CPU validation")
    b.add_argument("--samples", type=int, metavar="N", help="override the spec's sample count")
    b.add_argument("--rewrites", type=Path, action="append", metavar="DIR",
                   help="also load the rewrites in this folder (repeatable)")
    b.add_argument("--no-ort-verify", action="store_true",
                   help="skip loading each rewritten graph in onnxruntime (checker still runs)")
    b.add_argument("-q", "--quiet", action="store_true", help="print only warnings and errors")

    c = sub.add_parser("check", help="check a spec without building",
                       description="Parse a spec and check its architectures, arguments, "
                                   "rewrites and options; nothing is exported or written.")
    c.add_argument("spec", type=Path)
    c.add_argument("--rewrites", type=Path, action="append", metavar="DIR")

    p = sub.add_parser("passes", help="list the rewrites, or describe one")
    p.add_argument("name", nargs="?", help="a rewrite to describe in full")
    p.add_argument("--rewrites", type=Path, action="append", metavar="DIR")

    o = sub.add_parser("opt", help="run a rewrite pipeline on an ONNX file",
                       description="Apply a textual pipeline (as a build prints it) to any ONNX "
                                   "file, with the same verification as a build.")
    o.add_argument("input", type=Path)
    o.add_argument("--passes", required=True, metavar="PIPELINE",
                   help="e.g. 'reflect-pad-to-constant,fuse-pad-into-conv{max_pad=32}'")
    o.add_argument("-o", "--output", type=Path, required=True)
    o.add_argument("--rewrites", type=Path, action="append", metavar="DIR")
    return parser


def _load_user_rewrites(dirs: list[Path] | None) -> None:
    from gancc.passes import registry

    for folder in dirs or []:
        registry.load_dir(folder)


def cmd_build(args) -> int:
    from gancc.console import Ui
    from gancc.pipeline import BuildOptions, build
    from gancc.spec import parse_file

    _load_user_rewrites(args.rewrites)
    spec = parse_file(args.spec)
    if args.model:
        names = [m.name for m in spec.models]
        for name in args.model:
            if name not in names:
                from gancc.errors import did_you_mean
                raise GanccError(f"{args.spec} has no model '{name}'",
                                 did_you_mean(name, names) or f"its models: {', '.join(names)}")
    if args.samples is not None and not 1 <= args.samples <= 64:
        raise GanccError("--samples must be between 1 and 64")
    ui = Ui(quiet=args.quiet)
    options = BuildOptions(out_root=args.out_dir, random_seed=args.random_weights,
                           soc_version=args.soc_version, atc_path=args.atc,
                           run_atc=not args.no_atc, validate=not args.no_validate,
                           samples=args.samples, verify_onnxruntime=not args.no_ort_verify)
    results = build(spec, options, ui, args.model)
    for r in results:
        ui.console.print(f"[green]built[/green] {r.model} -> {r.out_dir}/ "
                         f"({r.report['final']['file']}, atc.sh, report.json)")
    return 0


def cmd_check(args) -> int:
    from gancc.spec import parse_file
    from gancc.spec.checks import check_spec
    from gancc.spec.model import PyTorchSource

    _load_user_rewrites(args.rewrites)
    spec = parse_file(args.spec)
    check_spec(spec)
    for m in spec.models:
        note = ""
        if isinstance(m.source, PyTorchSource) and m.source.weights and not m.source.weights.path.is_file():
            seed = m.source.weights.fallback_seed
            note = (f" (checkpoint {m.source.weights.path} not found: "
                    + (f"random weights, seed {seed})" if seed is not None else "build will fail)"))
        print(f"{m.name}: ok{note}")
    print(f"{args.spec}: {len(spec.models)} model(s), no problems found")
    return 0


def cmd_passes(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from gancc.passes import registry

    _load_user_rewrites(args.rewrites)
    console = Console()
    if args.name:
        cls = registry.get(args.name)
        fields = registry.option_fields(cls)
        console.print(f"[bold]{cls.name}[/bold]  ({'exact' if cls.exact else 'lossy'}, "
                      f"anchor: {cls.anchor}, defined at {cls.source})\n")
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
    console.print(table)
    return 0


def cmd_opt(args) -> int:
    import onnx

    from gancc.graph import lift_constants
    from gancc.passes import registry
    from gancc.passes.manager import run_pipeline
    from gancc.passes.pipeline_text import parse_pipeline

    _load_user_rewrites(args.rewrites)
    passes = [registry.make_pass(name, opts) for name, opts in parse_pipeline(args.passes)]
    try:
        model = onnx.load(str(args.input))
    except FileNotFoundError:
        raise GanccError(f"ONNX file not found: {args.input}") from None
    except Exception as err:
        raise GanccError(f"{args.input}: cannot read as ONNX: {err}") from None
    lift_constants(model)
    results = run_pipeline(model, passes)
    tmp = args.output.with_name(f".{args.output.name}.tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, args.output)
    for r in results:
        print(f"{r.name}: {r.matches} match(es), -{r.nodes_removed}/+{r.nodes_added} nodes")
    print(f"wrote {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    handler = {"build": cmd_build, "check": cmd_check, "passes": cmd_passes, "opt": cmd_opt}[args.command]
    try:
        return handler(args)
    except GanccError as err:
        print(err.render(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a gancc bug, not a user mistake
        if os.environ.get("GANCC_DEBUG"):
            traceback.print_exc()
        print(f"internal error: {type(err).__name__}: {err}\n"
              "this is a bug in gancc; rerun with GANCC_DEBUG=1 for the traceback and report it",
              file=sys.stderr)
        return 70
