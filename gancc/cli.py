"""The `gancc` command line.

    gancc build SPEC      export -> simplify -> rewrite -> atc commands -> validate -> report
    gancc check SPEC      check a spec (syntax, architectures, rewrites) without building
    gancc passes [NAME]   list the rewrites, or describe one
    gancc opt IN -o OUT --passes PIPELINE   run a textual rewrite pipeline on any ONNX file
    gancc explain REWRITE IN.onnx   what a rewrite does to each candidate node, and why not
    gancc prep / post / compare SPEC ...     device input bins, output images, the metric
    gancc cache info|clear   show or empty the build cache (exports, validation references)
    gancc diff A [B]      structural diff of two graphs or build stages (text, --json, --html)

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
  gancc explain fuse-pad-into-conv model.onnx    why each Pad was fused or not
  gancc explain --spec specs/my.gan my-rule model.onnx   the same for a spec rule
  gancc opt model.onnx --passes 'reflect-pad-to-constant,fuse-pad-into-conv' -o out.onnx
  gancc build specs/cyclegan.gan --no-cache      rebuild without reading or writing the cache
  gancc cache clear
  gancc build specs/cyclegan.gan --dump-dir --print-ir-after-change
  gancc diff build/cyclegan_g_a:reflect-pad-to-constant   what that pass changed
  gancc diff a.onnx b.onnx --html diff.html
  gancc prep specs/cyclegan.gan --model cyclegan_g_a --input testA/ --out bins/
  gancc post specs/cyclegan.gan --model cyclegan_g_a --bins result/Abs1 --inputs bins/ --out images/
  gancc compare specs/cyclegan.gan --model cyclegan_g_a --bins result/Abs1 --inputs bins/
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
    b.add_argument("-q", "--quiet", action="store_true", help="print only warnings and errors")
    b.add_argument("--run", action="store_true",
                   help="after atc, run the .om with ais_bench/msame on the validation inputs "
                        "and compare with the reference (docs/ascend.md)")
    b.add_argument("--ais-bench", metavar="PATH", help="the ais_bench executable for --run "
                   "(default: ais_bench on PATH, or python3 -m ais_bench)")
    b.add_argument("--msame", metavar="PATH", help="use msame at PATH for --run")
    fp16 = b.add_mutually_exclusive_group()
    fp16.add_argument("--fp16-foresight", dest="fp16_foresight", action="store_true", default=None,
                      help="also run the final graph in float16 on the CPU (default: when atc "
                           "compiles in fp16, i.e. precision_mode unset or force_fp16)")
    fp16.add_argument("--no-fp16-foresight", dest="fp16_foresight", action="store_false")

    li = sub.add_parser("lint", help="check an ONNX file against what atc can parse",
                        description="ATC compatibility: ops and attributes atc cannot parse at "
                                    "the model's opset, and known risky cases, each with its fix. "
                                    "Exit status 1 when atc would fail.")
    li.add_argument("model", type=Path, help="the .onnx file")
    li.add_argument("--soc", metavar="SOC", help="the target soc_version, e.g. Ascend310P3")
    li.add_argument("--json", action="store_true", help="print the findings as JSON on stdout")

    ai = sub.add_parser("aipp", help="AIPP tools: import a config, list CSC presets")
    ai_sub = ai.add_subparsers(dest="aipp_command", metavar="ACTION")
    imp = ai_sub.add_parser("import", help="print an existing AIPP config file as spec syntax")
    imp.add_argument("file", type=Path)
    imp.add_argument("--input", action="append", metavar="NAME",
                     help="input name for each aipp_op block, in order (default: input<rank>)")
    ai_sub.add_parser("presets", help="list the named CSC presets (`csc preset=NAME`)")

    c = sub.add_parser("check", help="check a spec without building",
                       description="Parse a spec and check its architectures, arguments, "
                                   "rewrites and options; nothing is exported or written.")
    c.add_argument("spec", type=Path)
    c.add_argument("--rewrites", type=Path, action="append", metavar="DIR")

    p = sub.add_parser("passes", help="list the rewrites, or describe one")
    p.add_argument("name", nargs="?", help="a rewrite to describe in full")
    p.add_argument("--rewrites", type=Path, action="append", metavar="DIR")
    p.add_argument("--spec", type=Path, metavar="SPEC", help="also list the rules of this spec")
    p.add_argument("--markdown", action="store_true",
                   help="print the catalogue as the markdown table of docs/rewrites.md")

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

    k = sub.add_parser("cache", help="show or empty the build cache",
                       description="The build cache keeps exports (the simplified graph before "
                                   "the rewrites) and validation references, keyed by the "
                                   "architecture, weights, shapes, opset and tool versions. "
                                   "Location: $GANCC_CACHE_DIR, else $XDG_CACHE_HOME/gancc, "
                                   "else ~/.cache/gancc.")
    k.add_argument("action", choices=("info", "clear"), help="info: where and how big; "
                   "clear: remove every entry")
    d = sub.add_parser("diff", help="structural diff of two graphs or two build stages",
                       description="Match the nodes of A and B by structure (topology, op type, "
                                   "attributes, constant values), not by name, and report what "
                                   "changed, grouped by the rewrite that made it. A and B are "
                                   ".onnx files, build folders, or dump stages DIR:STAGE "
                                   "(gancc build --dump-dir); with one DIR:STAGE operand, the "
                                   "diff is that stage against the one before it. Exit status: "
                                   "0 equal, 1 different, 2 error.")
    d.add_argument("a", metavar="A", help="an .onnx file, a build folder, or DIR:STAGE "
                   "(a stage name, a number, or final)")
    d.add_argument("b", metavar="B", nargs="?", help="the same kinds as A (default: with "
                   "A=DIR:STAGE, the stage before it is compared with it)")
    d.add_argument("--json", action="store_true", help="print JSON (schema gancc.diff/1)")
    d.add_argument("--html", type=Path, metavar="FILE",
                   help="also write a self-contained side-by-side HTML page")
    d.add_argument("--context", type=int, default=3, metavar="N",
                   help="unchanged nodes shown around each change in the HTML (default 3)")
    d.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="colour the text (auto: on a terminal, unless NO_COLOR is set)")
    d.add_argument("-v", "--verbose", action="store_true",
                   help="also list renamed nodes and the matcher's statistics")
    _add_data_commands(sub)
    return parser


def _add_data_commands(sub) -> None:
    """prep / post / compare: the recipes' data in and out (gancc/data_io.py)."""
    from gancc.data_io import RECIPES

    def common(cmd):
        cmd.add_argument("spec", type=Path)
        cmd.add_argument("--model", metavar="NAME", help="the model (default: the spec's only one)")
        cmd.add_argument("--recipe", choices=RECIPES,
                         help="the data convention (default: from the architecture)")

    pr = sub.add_parser("prep", help="write input .bin files for ais_bench / msame",
                        description="Preprocess images / label maps (or draw seeded latents) into "
                                    "raw little-endian .bin files, one per batch, in one folder "
                                    "per model input, plus manifest.json.")
    common(pr)
    pr.add_argument("--input", type=Path, action="append", metavar="PATH", default=[],
                    help="an image / label map, or a folder of them (repeatable)")
    pr.add_argument("--out", type=Path, required=True, metavar="DIR")
    pr.add_argument("--batch", type=int, metavar="N", help="samples per file (an atc batch size)")
    pr.add_argument("--count", type=int, default=1, metavar="N",
                    help="latent recipes (gan, bigbigan): how many files (default 1)")
    pr.add_argument("--seed", type=int, default=0, help="latent recipes: the seed (default 0)")
    pr.add_argument("--attrs", type=Path, metavar="FILE",
                    help="stargan: list_attr_celeba.txt for the images' own attributes")
    pr.add_argument("--instances", type=Path, metavar="DIR",
                    help="pix2pixhd: folder of *_instanceIds.png (default: beside the labels)")

    po = sub.add_parser("post", help="turn device output .bin files into images",
                        description="Read ais_bench (<stem>_0.bin) or msame (<stem>_output_0.bin) "
                                    "outputs and write one image per sample.")
    common(po)
    po.add_argument("--bins", type=Path, required=True, metavar="DIR")
    po.add_argument("--out", type=Path, required=True, metavar="DIR")
    po.add_argument("--inputs", type=Path, metavar="DIR",
                    help="the `gancc prep` folder (names samples after their source files)")
    po.add_argument("--tool", choices=("ais_bench", "msame"), help="default: from the file names")
    po.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                    help="float16 when atc ran with --output_type=FP16")

    cp = sub.add_parser("compare", help="compare device outputs with the ONNX graph",
                        description="Run the built ONNX graph on the prepared inputs and compute "
                                    "the recipe's metric against the device outputs.")
    common(cp)
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
    if args.samples is not None and not 1 <= args.samples <= 64:
        raise GanccError("--samples must be between 1 and 64")
    ui = Ui(quiet=args.quiet)
    options = BuildOptions(out_root=args.out_dir, random_seed=args.random_weights,
                           soc_version=args.soc_version, atc_path=args.atc,
                           run_atc=not args.no_atc, validate=not args.no_validate,
                           samples=args.samples, verify_onnxruntime=not args.no_ort_verify,
                           check_idempotent=args.check_idempotent,
                           use_cache=not args.no_cache,
                           dump_dir=Path(args.dump_dir) if args.dump_dir else None,
                           dump_in_build=args.dump_dir == "",
                           print_ir_after_change=args.print_ir_after_change,
                           fp16_foresight=args.fp16_foresight, run_device=args.run,
                           ais_bench=args.ais_bench, msame=args.msame)
    results = build(spec, options, ui, args.model)
    for r in results:
        ui.console.print(f"[green]built[/green] {r.model} -> {r.out_dir}/ "
                         f"({r.report['final']['file']}, atc.sh, report.json, report.html)")
    return 0


def cmd_check(args) -> int:
    from gancc.spec import parse_file
    from gancc.spec.checks import check_spec
    from gancc.spec.model import PyTorchSource

    _load_user_rewrites(args.rewrites)
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


def cmd_passes(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from gancc.passes import registry
    from gancc.spec import rules as spec_rules

    _load_user_rewrites(args.rewrites)
    rules = spec_rules.rules_for_cli(args.spec)
    console = Console()
    if args.markdown:
        from gancc.passes.catalogue import markdown_table

        sys.stdout.write(markdown_table(rules))
        return 0
    if args.name:
        rule = spec_rules.find(rules, args.name)
        cls = spec_rules.rule_class(rule) if rule is not None else registry.get(args.name)
        fields = registry.option_fields(cls)
        kind = "spec rule" if rule is not None else "exact" if cls.exact else "lossy"
        anchor = cls.anchor or "(the whole graph)"
        console.print(f"[bold]{cls.name}[/bold]  ({kind}, "
                      f"anchor: {anchor}, defined at {cls.source})\n")
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
    for rule in rules:
        table.add_row(rule.name, "rule", "", f"{rule.summary or 'spec rule'} ({rule.source})")
    console.print(table)
    return 0


def cmd_opt(args) -> int:
    import onnx

    from gancc.graph import lift_constants
    from gancc.passes import registry
    from gancc.passes.manager import run_pipeline
    from gancc.passes.pipeline_text import parse_pipeline

    from gancc.passes.manager import VerifyOptions
    from gancc.spec import rules as spec_rules

    _load_user_rewrites(args.rewrites)
    rules = spec_rules.rules_for_cli(args.spec)
    passes = [spec_rules.make_pass(name, opts, rules) for name, opts in parse_pipeline(args.passes)]
    try:
        model = onnx.load(str(args.input))
    except FileNotFoundError:
        raise GanccError(f"ONNX file not found: {args.input}") from None
    except Exception as err:
        raise GanccError(f"{args.input}: cannot read as ONNX: {err}") from None
    lift_constants(model)
    results = run_pipeline(model, passes, VerifyOptions(idempotent=args.check_idempotent))
    tmp = args.output.with_name(f".{args.output.name}.tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, args.output)
    for r in results:
        print(f"{r.name}: {r.matches} match(es), -{r.nodes_removed}/+{r.nodes_added} nodes")
    print(f"wrote {args.output}")
    return 0


def cmd_explain(args) -> int:
    import json

    import onnx

    from gancc.passes.explain import explain, render
    from gancc.passes.pipeline_text import parse_pipeline
    from gancc.spec import rules as spec_rules

    _load_user_rewrites(args.rewrites)
    rules = spec_rules.rules_for_cli(args.spec)
    steps = parse_pipeline(args.rewrite + (args.options or ""))
    if len(steps) != 1:
        raise GanccError(f"explain takes one rewrite, got {len(steps)}: {args.rewrite}",
                         "explain them one at a time")
    (name, options), = steps
    try:
        rule = spec_rules.make_pass(name, options, rules)
    except GanccError as err:
        if args.spec is None and err.hint == "`gancc passes` lists them all":
            err.hint = "`gancc passes` lists them all; a spec's rule needs --spec SPEC"
        raise
    try:
        model = onnx.load(str(args.input))
    except FileNotFoundError:
        raise GanccError(f"ONNX file not found: {args.input}") from None
    except Exception as err:
        raise GanccError(f"{args.input}: cannot read as ONNX: {err}") from None
    result = explain(rule, model)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        render(result, str(args.input))
    return 0


def _one_model(args):
    from gancc.errors import did_you_mean
    from gancc.spec import parse_file

    spec = parse_file(args.spec)
    names = [m.name for m in spec.models]
    if args.model is None:
        if len(names) > 1:
            raise GanccError(f"{args.spec} has {len(names)} models: name one with --model",
                             f"its models: {', '.join(names)}")
        return spec.models[0]
    if args.model not in names:
        raise GanccError(f"{args.spec} has no model '{args.model}'",
                         did_you_mean(args.model, names) or f"its models: {', '.join(names)}")
    return spec.model(args.model)


def cmd_prep(args) -> int:
    from gancc.data_io import PrepOptions, prep

    model = _one_model(args)
    if args.batch is not None and args.batch < 1 or args.count < 1:
        raise GanccError("--batch and --count must be at least 1")
    manifest = prep(model, PrepOptions(args.input, args.out, args.batch, args.count, args.seed,
                                       args.recipe, args.attrs, args.instances))
    print(f"{model.name} ({manifest['recipe']}): wrote {len(manifest['files'])} file(s) of batch "
          f"{manifest['batch']} per input under {args.out}/ "
          f"({', '.join(f'{n}/' for n in manifest['inputs'])}), manifest.json")
    return 0


def cmd_post(args) -> int:
    from gancc.data_io import post

    model = _one_model(args)
    written = post(model, args.bins, args.out, args.tool, args.dtype, args.recipe, args.inputs)
    print(f"{model.name}: wrote {len(written)} image(s) to {args.out}/")
    return 0


def cmd_compare(args) -> int:
    import json

    from gancc.data_io import compare
    from gancc.fsutil import write_text_atomic

    model = _one_model(args)
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


def cmd_cache(args) -> int:
    from gancc.cache import Cache, human_bytes

    cache = Cache()
    if args.action == "clear":
        try:
            entries, size = cache.clear()
        except OSError as err:
            raise GanccError(f"cannot clear the cache at {cache.root}: {err}") from None
        print(f"removed {entries} cache entr{'y' if entries == 1 else 'ies'} "
              f"({human_bytes(size)}) from {cache.root}")
        return 0
    info = cache.info()
    print(f"cache: {info['path']}")
    for kind, figures in info["kinds"].items():
        print(f"  {kind:<10} {figures['entries']:4d} entries  {human_bytes(figures['bytes'])}")
    print(f"  total      {human_bytes(info['bytes'])}")
    return 0


def cmd_diff(args) -> int:
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
            else:
                colour = args.color == "always" or (args.color == "auto" and sys.stdout.isatty()
                                                    and not os.environ.get("NO_COLOR"))
                sys.stdout.write(render_text(result, colour=colour, verbose=args.verbose))
                if args.html is not None:
                    print(f"wrote {args.html}")
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


def cmd_lint(args) -> int:
    import json

    import onnx

    from gancc.stages import lint

    try:
        model = onnx.load(str(args.model))
    except FileNotFoundError:
        raise GanccError(f"ONNX file not found: {args.model}") from None
    except Exception as err:
        raise GanccError(f"{args.model}: cannot read as ONNX: {err}") from None
    if args.soc and not args.soc.startswith("Ascend"):
        raise GanccError(f"--soc {args.soc} does not name an Ascend SoC", "e.g. Ascend310P3")
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


def cmd_aipp(args) -> int:
    if args.aipp_command == "import":
        from gancc.aipp.spectext import read_config, to_spec

        print(to_spec(read_config(args.file), args.input, str(args.file)), end="")
        return 0
    if args.aipp_command == "presets":
        from gancc.aipp.presets import PRESETS

        for p in PRESETS.values():
            rows = " / ".join(",".join(map(str, r)) for r in p.matrix)
            print(f"{p.name:<22} {p.description:<36} matrix {rows}  {p.bias_kind}_bias "
                  f"{','.join(map(str, p.bias))}")
        return 0
    raise GanccError("gancc aipp needs an action: import FILE, or presets",
                     "e.g. gancc aipp import aipp.cfg")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    handler = {"build": cmd_build, "cache": cmd_cache, "check": cmd_check, "passes": cmd_passes,
               "opt": cmd_opt, "diff": cmd_diff, "explain": cmd_explain,
               "prep": cmd_prep, "post": cmd_post, "compare": cmd_compare,
               "lint": cmd_lint, "aipp": cmd_aipp}[args.command]
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
