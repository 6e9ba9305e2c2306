"""The build: one spec model from its source to validated, atc-ready artifacts.

`STAGES` is the whole story, top to bottom. Each stage says why it is skipped for a build
that does not need it (recorded in report.json's `stages`), so the special cases are in
the sources and the stages' `skip`, not in branches here: a cache hit is a source
(gancc/build/sources.py) whose graph is already simplified; a TensorFlow graph without
tf2onnx is a source with no ONNX graph, and the graph stages skip saying so.

Everything is written into a staging folder that replaces the model's output folder only
when the build succeeds, so a failed build leaves the previous artifacts alone (its partial
outputs and report go to `<out>/.gancc/failed/<model>/` for inspection; the commit protocol,
its lock and the recovery of interrupted builds are gancc/fsutil.py's StagingDir).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gancc.build.cached import lookup
from gancc.build.check_stages import (CachedFigures, EmulateAipp, PredictFp16, Require,
                                      RunDevice, StartFp16, StoreFigures, Validate)
from gancc.build.context import BuildContext
from gancc.build.emit_stages import (EmitAipp, EmitAtc, EmitFrozenGraph, EmitGraph, Lint,
                                     RunAtc, SocVersion)
from gancc.build.graph_stages import (Export, LoadSource, ReferenceAhead, Rewrite, Simplify,
                                      Snapshot, StoreExport)
from gancc.build.options import BuildOptions
from gancc.build.outputs import remove_stale_failure
from gancc.stages.report import BuildReport
from gancc.build.sources import CachedExport, source_for
from gancc.build.stage import Stage, run_stage
from gancc.cache import Cache
from gancc.checks import check_build_inputs
from gancc.console import Ui
from gancc.errors import GanccError
from gancc.fsutil import StagingDir, output_problem
from gancc.spec.model import ModelSpec, SpecFile
from gancc.spec.templates import in_model
from gancc.stages import html_report
from gancc.stages.dump import IrRecorder
from gancc.stages.report import tool_versions, write_report

STAGES: tuple[Stage, ...] = (
    LoadSource(),       # the generator and its weights, an ONNX file, a TF graph, or the cache
    Export(),           # ONNX at the spec's opset, traced at reduced size, without weights
    ReferenceAhead(),   # a large generator runs before its weights move into the graph
    Simplify(),         # onnxsim, constants lifted to initializers, weights attached
    Snapshot(),         # the starting graphs, for IR dumps and report.html
    StoreExport(),      # into the build cache, for the next build
    Rewrite(),          # the spec's pipeline, verified after each pass that changed the graph
    EmitGraph(),        # <model>.onnx
    EmitFrozenGraph(),  # a TF source's .pb, which atc compiles itself
    SocVersion(),       # which SoC atc compiles for
    EmitAipp(),         # aipp.cfg, checked against the model and the SoC
    EmitAtc(),          # atc.sh, one command per batch size
    Lint(),             # what ATC's ONNX parser cannot take stops the build here
    RunAtc(),           # atc, when installed
    CachedFigures(),    # this final graph's figures, if an earlier build computed them
    StartFp16(),        # the fp16 graphs start running beside validation
    Validate(),         # onnxruntime vs the reference, on seeded inputs
    Require(),          # the spec's `require` lines
    PredictFp16(),      # the device's fp16 numerics, predicted
    EmulateAipp(),      # uint8 images through the AIPP emulator
    StoreFigures(),     # the figures into the build cache, for a rebuild of the same graph
    RunDevice(),        # --run: the .om through ais_bench/msame
)


@dataclass
class BuildResult:
    model: str
    out_dir: Path
    report: dict = field(repr=False)        # report.json's content


def build(spec: SpecFile, options: BuildOptions, ui: Ui, only: list[str] | None = None
          ) -> list[BuildResult]:
    from gancc.passes import factory

    factory.load_spec(spec)          # the spec's own rewrites: its `rewrites` folders, rules
    models = [m for m in spec.models if not only or m.name in only]
    return [build_model(spec, m, options, ui) for m in models]


def build_model(spec: SpecFile, model: ModelSpec, options: BuildOptions, ui: Ui) -> BuildResult:
    try:
        ctx = _context(spec, model, options, ui)
    except GanccError as err:       # a model made from a template: name it, and its use
        in_model(err, model)
        raise
    try:
        for stage in STAGES:
            run_stage(stage, ctx)
        ctx.report.status = "ok"
    except GanccError as err:
        _fail(ctx, in_model(err, model))
        raise
    except OSError as err:
        problem = output_error(err, ctx.staging.path)
        if problem is None:
            ctx.staging.abandon()
            raise
        _fail(ctx, problem)
        raise problem from None
    except BaseException:
        ctx.staging.abandon()
        raise
    try:
        report = _write_reports(ctx, html_report.write_html)
        # under the build's lock: an earlier failure's outputs are stale once this succeeds
        remove_stale_failure(options.out_root, model.name, ctx.staging.failed_dir)
        return BuildResult(model.name, ctx.staging.commit(), report)
    except OSError as err:
        ctx.staging.abandon()
        problem = output_error(err, ctx.staging.final)
        if problem is None:
            raise
        raise problem from None


def output_error(err: OSError, where: Path) -> GanccError | None:
    """A write that failed for the environment's reasons (disk full, read-only, a file in the
    way) as a user-facing error naming the path and what to do; None for anything else."""
    problem = output_problem(err, where)
    return GanccError(str(problem), problem.hint) if problem is not None else None


def _fail(ctx: BuildContext, err: GanccError) -> None:
    ctx.report.error = err.render()
    kept = _finish_failed(ctx)
    if kept is not None:   # printed with the error, also under --quiet
        ctx.ui.console.print(f"  partial outputs and report of the failed build: {kept}/",
                             soft_wrap=True)


def _context(spec: SpecFile, model: ModelSpec, options: BuildOptions, ui: Ui) -> BuildContext:
    """Everything a build needs before its first stage; the spec's problems that need no
    model run (architecture arguments, the rewrite pipeline, check_build_inputs) are found
    here, before anything is written. The model's lock is taken first, so an interrupted
    commit of an earlier build is repaired even when this one stops at a spec error."""
    staging = _staging(options.out_root / model.name, ui)
    try:
        return _prepare(spec, model, options, ui, staging)
    except BaseException:
        staging.abandon()
        raise


def _prepare(spec: SpecFile, model: ModelSpec, options: BuildOptions, ui: Ui,
             staging: StagingDir) -> BuildContext:
    from gancc.passes.factory import make_passes

    for note in staging.recovered:
        ui.info(note)
    source = source_for(model)
    store = Cache(options.cache_dir, enabled=options.use_cache,
                  warn=lambda text: ui.warn("CACHE", text))
    found = lookup(store, source, model, options.random_seed, options.validate,
                          options.samples)
    if found.hit:
        source = CachedExport(source, found)
    else:
        source.check()
    passes = make_passes(model, spec.source)
    check_build_inputs(model, options.soc_version, options.random_seed)   # as `gancc check`
    report = BuildReport(model.name, str(spec.path), tool_versions())
    ui.heading(model.name)
    cleaned = store.clean_leftovers()
    if cleaned:
        ui.info(f"removed {cleaned} leftover temporary folder(s) of interrupted builds from "
                f"the cache {store.root}")
    dump_dir, dump_label = _dump_folder(options, staging, model)
    recorder = IrRecorder(ui, dump_dir, dump_label, print_changes=options.print_ir_after_change)
    return BuildContext(spec, model, options, ui, staging, recorder, found, source, passes,
                        report)


def _staging(final: Path, ui: Ui) -> StagingDir:
    try:
        return StagingDir(final, on_wait=ui.info)
    except OSError as err:
        problem = output_error(err, final)
        if problem is None:
            raise
        raise problem from None


def _dump_folder(options: BuildOptions, staging: StagingDir, model: ModelSpec
                 ) -> tuple[Path | None, str | None]:
    """Where the IR dumps go, and how report.json names that place."""
    if options.dump_in_build:
        return staging.path / "ir", "ir"
    if options.dump_dir is not None:
        return options.dump_dir / model.name, str(options.dump_dir / model.name)
    return None, None


def _write_reports(ctx: BuildContext, write_html) -> dict:
    ctx.report.cache = ctx.cache.to_json()
    ctx.report.ir = ctx.recorder.to_json()
    # report.html first: a failed build's page that cannot be written says so in report.json
    write_html(ctx.report, ctx.staging.path / "report.html", ctx.recorder.stages)
    report = ctx.report.to_json()
    write_report(report, ctx.staging.path / "report.json")
    return report


def _finish_failed(ctx: BuildContext) -> Path | None:
    """A failed build's partial outputs and reports go to `OUT/.gancc/failed/<model>/`, where
    no model's folder can be (a model named `g.failed` is safe); a report or a folder that
    cannot be written (a full disk) never hides the build's own error. Returns where they are."""
    try:
        _write_reports(ctx, html_report.write_html_quietly)
    except OSError as err:
        if output_problem(err) is None:
            ctx.staging.abandon()
            raise
    try:
        return ctx.staging.abandon(keep_as=ctx.staging.failed_dir)
    except OSError:
        ctx.staging.abandon()
        return None
