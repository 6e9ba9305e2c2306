"""The build pipeline: one spec model from its source to validated, atc-ready artifacts.

`build_model` is the whole story, top to bottom; each line calls one stage module in
gancc/stages. Everything is written into a staging folder that replaces the model's output
folder only when the build succeeds, so a failed build leaves the previous artifacts alone
(its partial outputs and report go to `<out>/<model>.failed/` for inspection).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from gancc import cache as build_cache
from gancc.console import Ui
from gancc.errors import GanccError
from gancc.fsutil import StagingDir, sha256_file
from gancc.graph import op_histogram
from gancc.passes.manager import VerifyOptions, run_pipeline
from gancc.spec.checks import check_architecture, make_passes
from gancc import onnx_io
from gancc.spec.model import ModelSpec, PyTorchSource, SpecFile, TensorFlowSource
# stages.source and stages.export import torch: they are imported where used, so that a build
# served from the cache never imports torch.
from gancc.stages import atc, dump as dump_stage, html_report, npu, report as report_stage
from gancc.stages import simplify, tensorflow as tf_stage, validate


@dataclass
class BuildOptions:
    out_root: Path = Path("build")
    random_seed: int | None = None       # --random-weights: seeded weights when none are found
    soc_version: str | None = None       # overrides the spec's atc soc_version
    atc_path: str | None = None          # atc binary; default: `atc` on PATH, if any
    run_atc: bool = True
    validate: bool = True
    samples: int | None = None
    verify_onnxruntime: bool = True      # load each rewritten graph in onnxruntime
    # --check-idempotent: each pass, rerun on its own output, must find nothing more to do;
    # GANCC_CHECK_IDEMPOTENT=1 turns it on for every build (gancc's test suite does)
    check_idempotent: bool = field(
        default_factory=lambda: os.environ.get("GANCC_CHECK_IDEMPOTENT") == "1")
    use_cache: bool = True               # --no-cache: neither read nor write the build cache
    cache_dir: Path | None = None        # default: $GANCC_CACHE_DIR or ~/.cache/gancc
    dump_dir: Path | None = None         # --dump-dir DIR: the graph after each stage, in DIR/<model>/
    dump_in_build: bool = False          # --dump-dir alone: in the build folder's ir/
    print_ir_after_change: bool = False  # print a diff of the IR after each stage that changed it
    fp16_foresight: bool | None = None   # None: on when atc compiles in fp16 (gancc.stages.foresight)
    run_device: bool = False             # --run: run the .om with ais_bench/msame and compare
    ais_bench: str | None = None         # --ais-bench PATH
    msame: str | None = None             # --msame PATH


@dataclass
class BuildResult:
    model: str
    out_dir: Path
    report: dict = field(repr=False)


def build_model(spec: SpecFile, model: ModelSpec, options: BuildOptions, ui: Ui) -> BuildResult:
    # The export and the validation reference, when cached (gancc/cache.py), replace steps 1-3
    # and the reference run; a hit's key proves a build with these arguments exported fine.
    cache = build_cache.Cache(options.cache_dir, enabled=options.use_cache,
                              warn=lambda text: ui.warn("CACHE", text))
    cached = build_cache.lookup(cache, model, options.random_seed, options.validate,
                                options.samples)
    if not cached.hit:
        check_architecture(model)
    passes = make_passes(model)
    timings: dict[str, float] = {}
    report: dict = {"model": model.name, "spec": str(spec.path), "status": "failed",
                    "tools": report_stage.tool_versions(), "timings": timings}
    staging = StagingDir(options.out_root / model.name)
    ui.heading(f"{model.name}")
    # the graph after each stage: dumps, print-IR-after-change, per-pass diffs for report.html
    recorder = dump_stage.IrRecorder(ui, *_dump_folder(options, staging, model),
                                     print_changes=options.print_ir_after_change)
    check = None
    validating = options.validate and model.validation.reference != "none"
    precomputed = None        # the reference outputs, when they had to be run early
    try:
        if cached.hit:
            # 1-3 from the build cache: no torch, no export, no onnxsim
            loaded, exported, final = cached.loaded(), None, cached.final
            with ui.stage("source", timings, "(cached)"):
                pass
            _record_source(model, loaded, report, ui)
            report.update(cached.stage_reports())
            with ui.stage("export", timings, f"opset {model.opset} (cached)"):
                pass
            timings["simplify"] = cached.load_seconds
            ui.info(f"[green]✓[/green] {'simplify':<10} {cached.load_seconds:6.2f}s  (cached)")
        else:
            from gancc.stages import export as export_stage, source   # these import torch

            # 1. the source: the generator with its weights, or an existing ONNX file
            with ui.stage("source", timings):
                if isinstance(model.source, PyTorchSource):
                    loaded = source.load_pytorch(model, options.random_seed)
                elif isinstance(model.source, TensorFlowSource):
                    loaded = tf_stage.load_tensorflow(model)
                else:
                    loaded = source.load_onnx(model)
            _record_source(model, loaded, report, ui)
            if loaded.module is None and loaded.onnx_model is None:
                # a TensorFlow graph without tf2onnx here: atc compiles the .pb itself
                _emit_framework_only(spec, model, loaded, staging, options, report, ui, timings)
                report_stage.write_report(report, staging.path / "report.json")
                html_report.write_html(report, staging.path / "report.html")
                return BuildResult(model.name, staging.commit(), report)

            # 2. export to ONNX at the spec's opset, names and dynamic batch axis; the
            #    weights stay out of the graph until it is simplified
            exported, weightless, move_weights = loaded.onnx_model, None, False
            export_light = None
            if loaded.module is not None:
                with ui.stage("export", timings, f"opset {model.opset}"):
                    weightless = export_stage.export(loaded.module, model)
                exported = _unmodified_export(weightless, report, ui)
                if exported is None:      # its stand-in for the stage diffs, while it has weights
                    export_light = weightless.light()
                # a large generator's weights move into the graph instead of being copied,
                # once the reference has run (only the AIPP check runs the generator later)
                move_weights = exported is None and not (validating and model.aipp)
                if (move_weights and validating and cached.reference is None
                        and model.validation.reference == "pytorch"):
                    with ui.stage("reference", timings, "the generator, before its weights "
                                  "move into the graph"):
                        precomputed = validate.reference_outputs(model, loaded.module,
                                                                 options.samples)

            # 3. simplify (onnxsim), constants lifted to initializers, weights attached
            with ui.stage("simplify", timings):
                final, lifted = _simplify(exported, weightless, model, move_weights)
            if move_weights:
                loaded.module = None
            report["simplify"] = {"nodes": len(final.graph.node), "constants_lifted": lifted,
                                  "op_histogram": op_histogram(final)}

            build_cache.store_export(cached, final, report)
        if exported is None and not cached.hit:   # a large export, kept without its weights
            recorder.stage("export", weightless.graph, light=export_light)
        else:
            recorder.stage("export" if isinstance(model.source, PyTorchSource) else "source",
                           exported)
        recorder.stage("simplify", final)

        # 4. the spec's rewrite pipeline, verified after every pass that changed something
        pipeline_text = ",".join(p.pipeline_text() for p in passes)
        with ui.stage("rewrite", timings, pipeline_text or "(no rewrites)"):
            results = run_pipeline(final, passes, VerifyOptions(
                onnxruntime=options.verify_onnxruntime, idempotent=options.check_idempotent),
                after_pass=recorder.after_pass)
        report["pipeline"] = pipeline_text
        report["passes"] = [r.to_json() for r in results]
        for r in results:
            ui.info(f"    {r.name}: {r.matches} match(es), -{r.nodes_removed}/+{r.nodes_added} nodes"
                    + (f", {len(r.declined)} declined" if r.declined else ""))

        # 5. artifacts: the final ONNX, the AIPP config, the atc commands
        onnx_name = f"{model.name}.onnx"
        onnx_io.save_onnx(final, staging.path / onnx_name)   # + <name>.data past protobuf's 2 GB limit
        report["final"] = {"file": onnx_name, "sha256": sha256_file(staging.path / onnx_name),
                           "nodes": len(final.graph.node), "op_histogram": op_histogram(final)}
        soc, soc_origin = atc.soc_version_for(model, options.soc_version)
        report["soc_version"] = {"value": soc, "from": soc_origin}
        if soc_origin == "npu-smi info":
            ui.info(f"soc_version {soc} (detected with npu-smi info)")
        aipp_name, aipp_blocks = npu.emit_aipp(model, staging.path, str(spec.path), soc, report, ui)
        atc_model = onnx_name
        if isinstance(model.source, TensorFlowSource):   # atc compiles the frozen .pb itself
            atc_model = tf_stage.copy_graph(model, staging.path)
        commands = atc.atc_commands(model, final, atc_model, aipp_name, soc)
        atc.write_script(commands, staging.path / "atc.sh", model, str(spec.path))
        report["atc"] = {"script": "atc.sh", "commands": [c.shell() for c in commands], "ran": False}
        if not isinstance(model.source, TensorFlowSource):   # ATC's ONNX parser, checked first
            npu.lint_graph(final, soc, report, ui, model.name, model)

        # 6. atc itself, when it is installed
        atc_bin = atc.find_atc(options.atc_path) if options.run_atc else None
        if atc_bin:
            with ui.stage("atc", timings, f"{len(commands)} command(s)"):
                report["atc"]["results"] = atc.run_atc(atc_bin, commands, staging.path)
            report["atc"].update(ran=True, binary=atc_bin)
        else:
            ui.info("atc is not installed here: run atc.sh on an Ascend host "
                    f"({len(commands)} command(s))")

        # 7. validation on the CPU against the reference (the module, or TensorFlow's graph)
        reference = loaded.module if loaded.module is not None else loaded.reference
        if validating:
            with ui.stage("validate", timings, f"reference: {model.validation.reference}"):
                check = validate.validate(model, final, exported, reference, options.samples,
                                          cached=cached.reference or precomputed,
                                          final_file=staging.path / onnx_name)
            build_cache.store_reference(cached, check)
            report["validation"] = check.to_json()
            _print_validation(check, ui)
            validate.raise_if_failed(model, check)
        # 8. fp16 foresight, AIPP through its emulator, and (--run) the .om on the device
        npu.after_validation(model, final, exported, reference, check,
                             options.samples or model.validation.samples, options, staging.path,
                             commands, aipp_blocks, report, ui, timings)
        report["status"] = "ok"
    except GanccError as err:
        report["error"] = err.render()
        report["cache"] = cached.to_json()
        report["ir"] = recorder.to_json()
        html_report.write_html_quietly(report, staging.path / "report.html", recorder.stages, check)
        _finish_failed(staging, report, options, model)
        raise
    except BaseException:
        staging.abandon()
        raise
    report["cache"] = cached.to_json()
    report["ir"] = recorder.to_json()
    report_stage.write_report(report, staging.path / "report.json")
    html_report.write_html(report, staging.path / "report.html", recorder.stages, check)
    return BuildResult(model.name, staging.commit(), report)


def _unmodified_export(exported, report: dict, ui: Ui) -> onnx.ModelProto | None:
    """The export with its weights, for validation's "unmodified export vs reference"
    figures; None for a large model (onnx_io.LARGE_MODEL_BYTES), whose weights it would hold
    a second time. Records the export in the report."""
    graph = exported.graph
    report["export"] = {"nodes": len(graph.graph.node), "warnings": exported.notes,
                        "op_histogram": op_histogram(graph), "traced_at": exported.traced_at,
                        "reduced_size_trace": exported.reduced}
    if exported.fallback:
        report["export"]["full_size_trace_because"] = exported.fallback
    shapes = ", ".join(f"{name} {'x'.join(map(str, shape))}"
                       for name, shape in exported.traced_at.items())
    ui.info(f"    traced at {shapes}" + (" (reduced: the graph is the same at two sizes)"
                                         if exported.reduced else "")
            + (f"; at the spec's size because {exported.fallback}" if exported.fallback else ""))
    size = exported.weight_bytes
    if size <= onnx_io.LARGE_MODEL_BYTES:
        return exported.with_weights()
    note = (f"weights {size / 2**20:.0f} MiB > {onnx_io.LARGE_MODEL_BYTES / 2**20:.0f} MiB: the "
            "unmodified export is not kept (a second copy of the weights), so validation "
            "compares the final graph only")
    report["export"]["unmodified_export"] = note
    ui.info(f"    {note}")
    return None


def _simplify(exported: onnx.ModelProto | None, weightless, model: ModelSpec,
              move_weights: bool = False) -> tuple[onnx.ModelProto, int]:
    """onnxsim on the weight-free export, then the weights attached; an ONNX source as it is.

    A computation on the weights alone (weight or spectral norm) is folded by onnxsim only
    when it sees their values: such an export is simplified again with its weights.
    `move_weights` empties the generator's tensors as they go into the graph."""
    if weightless is None:
        return simplify.simplify(exported, model.name)
    from gancc.stages import export as export_stage

    final, lifted = simplify.simplify(weightless.graph, model.name)
    if simplify.weight_only_reader(final, set(weightless.weights)) is None:
        export_stage.attach_weights(final, weightless.weights, release=move_weights)
        return final, lifted
    return simplify.simplify(exported if exported is not None else weightless.with_weights(),
                             model.name)


def _record_source(model: ModelSpec, loaded, report: dict, ui: Ui) -> None:
    if isinstance(model.source, PyTorchSource):
        report["source"] = {"kind": "pytorch", "arch": model.source.arch.name,
                            "args": model.source.arch.kwargs()}
    else:
        report["source"] = {"kind": "tensorflow" if isinstance(model.source, TensorFlowSource)
                            else "onnx", "path": str(model.source.path)}
    if loaded.weights is None:
        return
    report["weights"] = loaded.weights.to_json()
    report["random_weights"] = loaded.weights.kind == "random"
    if loaded.weights.kind == "random":
        ui.warn("RANDOM WEIGHTS", f"{model.name}: {loaded.weights.note}.\nThe compiled model "
                "is structurally right but its outputs are not images; validation checks the "
                "compilation only. Put the real checkpoint in place for a usable model.")
    else:
        ui.info(f"weights: {loaded.weights.path} (sha256 {loaded.weights.sha256[:12]}…)"
                + (f", dropped {len(loaded.weights.dropped_keys)} InstanceNorm stat keys"
                   if loaded.weights.dropped_keys else ""))


def _emit_framework_only(spec: SpecFile, model: ModelSpec, loaded,
                         staging: StagingDir, options: BuildOptions, report: dict, ui: Ui,
                         timings: dict[str, float]) -> None:
    """A TF graph with no ONNX converter here: copy the .pb, write (and run) the atc commands."""
    pb_name = tf_stage.copy_graph(model, staging.path)
    commands = atc.atc_commands(model, None, pb_name, None, options.soc_version)
    atc.write_script(commands, staging.path / "atc.sh", model, str(spec.path))
    report["final"] = {"file": pb_name, "sha256": sha256_file(staging.path / pb_name)}
    report["atc"] = {"script": "atc.sh", "commands": [c.shell() for c in commands], "ran": False}
    atc_bin = atc.find_atc(options.atc_path) if options.run_atc else None
    if atc_bin:
        with ui.stage("atc", timings, f"{len(commands)} command(s)"):
            report["atc"]["results"] = atc.run_atc(atc_bin, commands, staging.path)
        report["atc"].update(ran=True, binary=atc_bin)
    skipped = (f"not converted to ONNX ({loaded.note}): no simplify, rewrites or CPU "
               f"validation; {tf_stage.INSTALL_HINT}")
    report["validation"] = {"skipped": skipped}
    from rich.markup import escape

    ui.warn("NOT VALIDATED", escape(f"{model.name}: {skipped}.\nThe atc commands for the .pb "
                                    "are in atc.sh."))
    if model.rewrites:
        ui.warn("REWRITES SKIPPED", f"{model.name}: the spec's rewrites need the ONNX conversion")
    report["status"] = "ok"


def _dump_folder(options: BuildOptions, staging: StagingDir, model: ModelSpec
                 ) -> tuple[Path | None, str | None]:
    """Where the IR dumps go, and how report.json names that place."""
    if options.dump_in_build:
        return staging.path / "ir", "ir"
    if options.dump_dir is not None:
        return options.dump_dir / model.name, str(options.dump_dir / model.name)
    return None, None


def _print_validation(check: validate.ValidationReport, ui: Ui) -> None:
    for name, figures in check.final.items():
        line = (f"    {name}: pixel_cosine {figures['pixel_cosine']:.5f}  cosine "
                f"{figures['cosine']:.5f}  max_abs {figures['max_abs']:.3g}  psnr {figures['psnr']:.1f} dB")
        if name in check.exported:
            line += f"   (unmodified export: pixel_cosine {check.exported[name]['pixel_cosine']:.5f})"
        ui.info(line)


def _finish_failed(staging: StagingDir, report: dict, options: BuildOptions, model: ModelSpec) -> None:
    try:
        report_stage.write_report(report, staging.path / "report.json")
    finally:
        staging.abandon(keep_as=options.out_root / f"{model.name}.failed")


def build(spec: SpecFile, options: BuildOptions, ui: Ui, only: list[str] | None = None
          ) -> list[BuildResult]:
    models = [m for m in spec.models if not only or m.name in only]
    return [build_model(spec, m, options, ui) for m in models]
