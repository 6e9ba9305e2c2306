"""The build: one spec model from its source to validated, atc-ready artifacts.

`STAGES` is the whole story, top to bottom. Each stage says why it is skipped for a build
that does not need it (recorded in report.json's `stages`), so the special cases are in
the sources and the stages' `skip`, not in branches here: a cache hit is a source
(gancc/build/sources.py) whose graph is already simplified; a TensorFlow graph without
tf2onnx is a source with no ONNX graph, and the graph stages skip saying so.

Everything is written into a staging folder that replaces the model's output folder only
when the build succeeds, so a failed build leaves the previous artifacts alone (its partial
outputs and report go to `<out>/<model>.failed/` for inspection).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gancc.build.cached import lookup
from gancc.build.check_stages import EmulateAipp, PredictFp16, Require, RunDevice, Validate
from gancc.build.context import BuildContext
from gancc.build.emit_stages import (EmitAipp, EmitAtc, EmitFrozenGraph, EmitGraph, Lint,
                                     RunAtc, SocVersion)
from gancc.build.graph_stages import (Export, LoadSource, ReferenceAhead, Rewrite, Simplify,
                                      Snapshot, StoreExport)
from gancc.build.options import BuildOptions
from gancc.stages.report import BuildReport
from gancc.build.sources import CachedExport, source_for
from gancc.build.stage import Stage, run_stage
from gancc.cache import Cache
from gancc.console import Ui
from gancc.errors import GanccError
from gancc.fsutil import StagingDir
from gancc.spec.model import ModelSpec, SpecFile
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
    Validate(),         # onnxruntime vs the reference, on seeded inputs
    Require(),          # the spec's `require` lines
    PredictFp16(),      # the device's fp16 numerics, predicted
    EmulateAipp(),      # uint8 images through the AIPP emulator
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
    ctx = _context(spec, model, options, ui)
    try:
        for stage in STAGES:
            run_stage(stage, ctx)
        ctx.report.status = "ok"
    except GanccError as err:
        ctx.report.error = err.render()
        _finish_failed(ctx)
        raise
    except BaseException:
        ctx.staging.abandon()
        raise
    report = _write_reports(ctx, html_report.write_html)
    return BuildResult(model.name, ctx.staging.commit(), report)


def _context(spec: SpecFile, model: ModelSpec, options: BuildOptions, ui: Ui) -> BuildContext:
    """Everything a build needs before its first stage; the spec's problems that need no
    model run (architecture arguments, the rewrite pipeline) are found here, before any
    output folder exists."""
    from gancc.passes.factory import make_passes

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
    report = BuildReport(model.name, str(spec.path), tool_versions())
    staging = StagingDir(options.out_root / model.name)
    ui.heading(model.name)
    dump_dir, dump_label = _dump_folder(options, staging, model)
    recorder = IrRecorder(ui, dump_dir, dump_label, print_changes=options.print_ir_after_change)
    return BuildContext(spec, model, options, ui, staging, recorder, found, source, passes,
                        report)


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


def _finish_failed(ctx: BuildContext) -> None:
    """A failed build's partial outputs and reports go to `<model>.failed/`; a report that
    cannot be written never hides the build's own error."""
    try:
        _write_reports(ctx, html_report.write_html_quietly)
    finally:
        ctx.staging.abandon(keep_as=ctx.options.out_root / f"{ctx.model.name}.failed")
