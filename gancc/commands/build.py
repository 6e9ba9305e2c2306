"""`gancc build SPEC`: every stage of the pipeline, for each model of a spec."""

from __future__ import annotations

import argparse
from pathlib import Path

from gancc.commands._common import load_user_rewrites, seed
from gancc.errors import GanccError


def add_parser(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("build", help="build the models of a spec",
                       description="Export, simplify, rewrite, emit atc commands (and run atc "
                                   "when installed), validate on the CPU, write report.json. "
                                   "Outputs go to OUT_DIR/<model>/, replaced only on success.")
    b.add_argument("spec", type=Path, help="the .gan spec file")
    b.add_argument("--model", action="append", metavar="NAME",
                   help="build only this model (repeatable; default: all)")
    b.add_argument("-o", "--out-dir", type=Path, default=Path("build"),
                   help="output root; each model gets OUT_DIR/<model>/ (default: build)")
    b.add_argument("--random-weights", nargs="?", const=0, type=seed, metavar="SEED",
                   help="if a checkpoint is missing, use seeded random weights (default seed 0)")
    b.add_argument("--soc-version", metavar="SOC", help="override the spec's atc soc_version")
    b.add_argument("--atc", metavar="PATH", help="the atc binary (default: `atc` on PATH, if any)")
    b.add_argument("--no-atc", action="store_true", help="only write atc.sh, never run atc")
    b.add_argument("--no-validate", action="store_true", help="skip CPU validation")
    b.add_argument("--samples", type=int, metavar="N", help="override the spec's sample count")
    b.add_argument("--rewrites", type=Path, action="append", metavar="DIR",
                   help="also load the rewrites in this folder (repeatable)")
    b.add_argument("--check-idempotent", action="store_true",
                   help="run each rewrite a second time on its own output; it must find nothing "
                        "more to do (slower; on in gancc's own tests)")
    b.add_argument("--no-ort-verify", action="store_true",
                   help="skip loading each rewritten graph in onnxruntime (checker still runs)")
    b.add_argument("--no-cache", action="store_true",
                   help="neither read nor write the build cache (exports and validation "
                        "references; $GANCC_CACHE_DIR, default ~/.cache/gancc)")
    b.add_argument("--dump-dir", nargs="?", const="", type=str, metavar="DIR",
                   help="write the graph after each stage and pass (NN-<stage>.onnx and .txt) "
                        "to DIR/<model>/, or with no DIR to the build folder's ir/")
    b.add_argument("--print-ir-after-change", action="store_true",
                   help="print a diff of the graph's text form after each stage that changed it")
    b.add_argument("-q", "--quiet", action="store_true",
                   help="print nothing but errors (warnings are still in report.json)")
    b.add_argument("--run", action="store_true",
                   help="after atc, run the .om with ais_bench/msame on the validation inputs "
                        "and compare with the reference (docs/ascend.md)")
    b.add_argument("--ais-bench", metavar="PATH", help="the ais_bench executable for --run "
                   "(default: ais_bench on PATH, or python3 -m ais_bench)")
    b.add_argument("--msame", metavar="PATH", help="use msame at PATH for --run")
    b.add_argument("--run-soc", metavar="SOC", help="with several soc_version, the SoC whose "
                   ".om --run runs (default: what npu-smi reports, else the only one)")
    fp16 = b.add_mutually_exclusive_group()
    fp16.add_argument("--fp16-foresight", dest="fp16_foresight", action="store_true", default=None,
                      help="also run the final graph in float16 on the CPU (default: when atc "
                           "compiles in fp16, i.e. precision_mode unset or force_fp16)")
    fp16.add_argument("--no-fp16-foresight", dest="fp16_foresight", action="store_false")


def run(args) -> int:
    import os

    from gancc.build import BuildOptions, build
    from gancc.console import Ui
    from gancc.spec import parse_file

    load_user_rewrites(args.rewrites)
    spec = parse_file(args.spec)
    if not spec.models:       # a file of rules only
        raise GanccError(f"{args.spec} declares no model to build",
                         "a file of rules is for --spec of gancc explain, opt and passes")
    if args.model:
        names = [m.name for m in spec.models]
        for name in args.model:
            if name not in names:
                from gancc.errors import did_you_mean
                raise GanccError(f"{args.spec} has no model '{name}'",
                                 did_you_mean(name, names) or f"its models: {', '.join(names)}")
    _check_run_soc(spec, args)
    if args.samples is not None and not 1 <= args.samples <= 64:
        from gancc.errors import UsageError
        raise UsageError("--samples must be between 1 and 64")
    ui = Ui(quiet=args.quiet)
    options = BuildOptions(out_root=args.out_dir, random_seed=args.random_weights,
                           soc_version=args.soc_version, atc_path=args.atc,
                           run_atc=not args.no_atc, validate=not args.no_validate,
                           samples=args.samples, verify_onnxruntime=not args.no_ort_verify,
                           # gancc's own tests turn it on for every build
                           check_idempotent=(args.check_idempotent or
                                             os.environ.get("GANCC_CHECK_IDEMPOTENT") == "1"),
                           use_cache=not args.no_cache,
                           dump_dir=Path(args.dump_dir) if args.dump_dir else None,
                           dump_in_build=args.dump_dir == "",
                           print_ir_after_change=args.print_ir_after_change,
                           fp16_foresight=args.fp16_foresight, run_device=args.run,
                           ais_bench=args.ais_bench, msame=args.msame, run_soc=args.run_soc)
    results = build(spec, options, ui, args.model)
    for r in results:   # the build's result, on stdout; the progress went to stderr
        ui.result(f"built {r.model} -> {r.out_dir}/ "
                  f"({r.report['final']['file']}, atc.sh, report.json, report.html)")
    return 0


def _check_run_soc(spec, args) -> None:
    """--run's SoC before anything is built: a --run-soc the build does not compile for, or
    several SoCs and nothing to tell which, fails now rather than after atc."""
    if args.run_soc and not args.run:
        from gancc.errors import UsageError
        raise UsageError("--run-soc chooses the .om that --run runs: add --run")
    if not args.run:
        return
    from gancc.stages.atc import detect_soc_version
    from gancc.stages.device import choose_soc

    detected = detect_soc_version()
    for model in spec.models:
        if args.model and model.name not in args.model:
            continue
        socs = ((args.soc_version,) if args.soc_version else
                model.atc.soc_versions or tuple(filter(None, (model.atc.soc_version,))))
        try:
            choose_soc(socs, args.run_soc, detected)
        except GanccError as err:
            raise GanccError(f"model '{model.name}': {err.message}", err.hint) from None
