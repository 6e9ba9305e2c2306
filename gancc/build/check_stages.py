"""The stages that check the result on the CPU: validation against the reference, the
spec's requirements, the device's fp16 numerics and AIPP predicted, and with --run the .om
itself (README steps 7-8)."""

from __future__ import annotations

import numpy as np

from gancc.build.cached import figures_key, load_figures, store_figures, store_reference
from gancc.build.context import BuildContext
from gancc.build.stage import Stage
from gancc.data_io import output_channel_axis
from gancc.errors import GanccError
from gancc.fsutil import sha256_file
from gancc.stages import atc, validate
from gancc.stages.validate import ValidationReport

FIGURES_CACHED = "figures cached for this final graph"


class CachedFigures(Stage):
    """The figures of this very final graph (the same bytes, reference, inputs and choice of
    figures), computed by an earlier build, from the build cache: validation, the fp16
    prediction and the AIPP emulation then skip, saying so, and the report holds the same
    figures and pictures."""

    name = "figures"
    section = "validation"
    timed = False

    def skip(self, ctx: BuildContext) -> str | None:
        if ctx.no_onnx:
            return ctx.no_onnx
        if not ctx.validating:
            return "validation does not run"
        if ctx.options.run_device:
            return "--run compares the device with the reference outputs, which are computed"
        if not ctx.cache.cache.enabled:
            return "the build cache is off"
        return None if ctx.cache.export_key else "not cached for this source"

    def run(self, ctx: BuildContext) -> ValidationReport | None:
        from gancc.stages.predict import fp16_wanted

        computed = {"reference": ctx.model.validation.reference,
                    "fp16": fp16_wanted(ctx.model, ctx.options.fp16_foresight),
                    "fp16_converter": ctx.model.validation.fp16_converter,
                    "aipp": _aipp_config(ctx),
                    # where pixel_cosine takes the channels (gancc.data_io.output_channel_axis)
                    "channel_axis": output_channel_axis(ctx.model)}
        found = ctx.cache
        found.figures_key = figures_key(found, ctx.model, ctx.options.samples,
                                        _final_digest(ctx), computed)
        found.status["figures"] = "miss"
        cached = load_figures(found)
        if cached is not None:
            validate.check_requirements(ctx.model, cached)
            ctx.validation = ctx.figures = cached
        return cached


def _final_digest(ctx: BuildContext) -> str:
    """The final graph's bytes: the .onnx's sha256, with its external data file's, if any."""
    digest = ctx.report.final.sha256
    data = ctx.staging.path / f"{ctx.onnx_file}.data"
    return f"{digest}+{sha256_file(data)}" if data.is_file() else digest


def _aipp_config(ctx: BuildContext) -> str | None:
    if not ctx.aipp_blocks:
        return None
    return ctx.report.aipp.text if ctx.report.aipp is not None else repr(ctx.aipp_blocks)


class StoreFigures(Stage):
    """This build's figures into the build cache, for a rebuild of the same final graph."""

    name = "cache-figures"
    timed = False

    def skip(self, ctx: BuildContext) -> str | None:
        if ctx.figures is not None:
            return "served from the build cache"
        if ctx.cache.figures_key is None:
            return "the figures are not cached for this build"
        return None if ctx.validation is not None else "validation did not run"

    def run(self, ctx: BuildContext) -> None:
        store_figures(ctx.cache, ctx.validation)


def _say_cached(stage: Stage, ctx: BuildContext, reason: str) -> None:
    ctx.ui.info(f"- {stage.name:<10} skipped: {reason}")


class Validate(Stage):
    """onnxruntime runs the final graph (and the unmodified export) on seeded inputs; the
    reference runs on the same inputs (gancc.stages.validate)."""

    name = "validate"
    section = "validation"

    def skip(self, ctx: BuildContext) -> str | None:
        if ctx.no_onnx:
            return ctx.no_onnx
        if not ctx.options.validate:
            return "--no-validate"
        if ctx.model.validation.reference == "none":
            return "the spec says `reference none`"
        return FIGURES_CACHED if ctx.figures is not None else None

    def announce_skip(self, ctx: BuildContext, reason: str) -> None:
        if reason == FIGURES_CACHED:
            _say_cached(self, ctx, reason)
            self.show(ctx, ctx.validation)

    def detail(self, ctx: BuildContext) -> str:
        return f"reference: {ctx.model.validation.reference}"

    def run(self, ctx: BuildContext) -> ValidationReport:
        known = ctx.cache.reference or ctx.known_reference
        result = ctx.validation = validate.validate(
            ctx.model, ctx.graph, ctx.unmodified, ctx.module, ctx.framework, ctx.options.samples,
            known=known, final_file=ctx.staging.path / ctx.onnx_file)
        store_reference(ctx.cache, result)
        return result

    def show(self, ctx: BuildContext, result: ValidationReport) -> None:
        for name, figures in result.final.items():
            line = (f"    {name}: pixel_cosine {figures['pixel_cosine']:.5f}  cosine "
                    f"{figures['cosine']:.5f}  max_abs {figures['max_abs']:.3g}  psnr "
                    f"{figures['psnr']:.1f} dB")
            if name in result.exported:
                line += (f"   (unmodified export: pixel_cosine "
                         f"{result.exported[name]['pixel_cosine']:.5f})")
            ctx.ui.info(line)
        for warning in result.warnings:
            ctx.ui.warn("IMAGE SIZE", f"{ctx.model.name}: {warning}")


class Require(Stage):
    """The spec's `require` lines: a figure below its threshold fails the build."""

    name = "require"
    timed = False

    def skip(self, ctx: BuildContext) -> str | None:
        return None if ctx.validation is not None else "validation did not run"

    def run(self, ctx: BuildContext) -> None:
        validate.raise_if_failed(ctx.model, ctx.validation)


def _fp16_not_wanted(ctx: BuildContext) -> str | None:
    from gancc.stages.predict import fp16_wanted

    if fp16_wanted(ctx.model, ctx.options.fp16_foresight):
        return None
    return ("--no-fp16-foresight" if ctx.options.fp16_foresight is False else
            "atc does not compile in fp16 (the spec's precision_mode or `fp16 false`)")


class StartFp16(Stage):
    """The fp16 graphs start running in the background as soon as the final graph exists,
    beside validation; `fp16` waits for them (gancc.stages.predict.Fp16Job)."""

    name = "fp16-start"
    timed = False

    def skip(self, ctx: BuildContext) -> str | None:
        from gancc.onnx_io import is_large

        if ctx.no_onnx or not ctx.validating:
            return ctx.no_onnx or "validation does not run"
        if ctx.figures is not None:
            return FIGURES_CACHED
        if is_large(ctx.graph):
            return "a large model: the prediction runs after validation, not beside it (memory)"
        if ctx.cache.reference is not None:
            # validation then runs onnxruntime only, on every core: two sessions at once
            # would share the cores and lose to one after the other (bench_iterate.py)
            return "the reference is cached: the prediction runs after validation"
        return _fp16_not_wanted(ctx)

    def run(self, ctx: BuildContext) -> None:
        from gancc.stages.predict import Fp16Job

        ctx.fp16_job = Fp16Job(ctx.model, ctx.graph, ctx.samples)


class PredictFp16(Stage):
    """The final graph as force_fp16 runs it, against the reference (gancc.stages.predict)."""

    name = "fp16"

    def skip(self, ctx: BuildContext) -> str | None:
        if ctx.validation is None:
            return "validation did not run"
        not_wanted = _fp16_not_wanted(ctx)
        if not_wanted:
            return not_wanted
        if ctx.figures is not None and ctx.figures.fp16 is not None:
            return FIGURES_CACHED
        return None if ctx.validation.reference_outputs else "validation did not run"

    def detail(self, ctx: BuildContext) -> str:
        beside = ", run beside validation" if ctx.fp16_job is not None else ""
        return f"the final graph in float16 (ATC's force_fp16){beside}"

    def run(self, ctx: BuildContext) -> None:
        from gancc.stages.predict import predict_fp16

        v = ctx.validation
        v.fp16 = predict_fp16(ctx.model, ctx.graph, v.reference_outputs, ctx.samples,
                              v.final_outputs, job=ctx.fp16_job)

    def announce_skip(self, ctx: BuildContext, reason: str) -> None:
        """Said whenever it does not run: a user who expects the prediction sees why."""
        _say_cached(self, ctx, reason)
        if reason == FIGURES_CACHED:
            self.show(ctx, None)

    def show(self, ctx: BuildContext, result: None) -> None:
        fp16 = ctx.validation.fp16
        if not fp16["ran"]:
            ctx.ui.info(f"    fp16 foresight did not run: {fp16['error']}")
            return
        for name, f in fp16["final_vs_reference"].items():
            fp32 = ctx.validation.final.get(name, {}).get("pixel_cosine", float("nan"))
            drift = fp16["fp16_vs_fp32_final"][name]
            ctx.ui.info(f"    {name}: fp16 predicted pixel_cosine {f['pixel_cosine']:.5f} "
                        f"(fp32 {fp32:.5f}); fp16 vs fp32 graph: max_abs {drift['max_abs']:.3g}"
                        + (f", {f['non_finite']} non-finite values" if f["non_finite"] else ""))
            if f["non_finite"] or f["pixel_cosine"] < fp32 - 0.05:
                ctx.ui.warn("FP16", f"{ctx.model.name}: output '{name}' collapses in fp16 "
                            f"(pixel_cosine {f['pixel_cosine']:.4f} vs {fp32:.4f} in fp32). "
                            "Consider atc precision_mode allow_fp32_to_fp16 or "
                            "must_keep_origin_dtype, or keep_dtype \"OpType::InstanceNorm\".")


class EmulateAipp(Stage):
    """Seeded uint8 images through the AIPP emulator into the final graph, against float
    pre-processing into the reference: what AIPP itself costs."""

    name = "aipp"

    def skip(self, ctx: BuildContext) -> str | None:
        if not ctx.aipp_blocks:
            return "the spec has no aipp block"
        if ctx.figures is not None and ctx.figures.aipp is not None:
            return FIGURES_CACHED
        return None if ctx.validation is not None else "validation did not run"

    def announce_skip(self, ctx: BuildContext, reason: str) -> None:
        if reason == FIGURES_CACHED:
            _say_cached(self, ctx, reason)
            self.show(ctx, None)

    def detail(self, ctx: BuildContext) -> str:
        return "uint8 -> emulated AIPP -> final graph"

    def run(self, ctx: BuildContext) -> None:
        from gancc.stages.predict import emulate_aipp

        section, ctx.aipp_inputs, ctx.aipp_reference = emulate_aipp(
            ctx.model, ctx.graph, ctx.aipp_blocks, ctx.samples, ctx.validation.reference,
            ctx.module, ctx.framework, ctx.unmodified)
        ctx.validation.aipp = section

    def show(self, ctx: BuildContext, result: None) -> None:
        section = ctx.validation.aipp
        for name, f in section["final_vs_reference"].items():
            alone = section["aipp_vs_float_preprocessing"][name]
            ctx.ui.info(f"    {name}: uint8 through emulated AIPP: pixel_cosine "
                        f"{f['pixel_cosine']:.5f} vs reference; AIPP alone (vs float "
                        f"pre-processing) max_abs {alone['max_abs']:.3g}")


class RunDevice(Stage):
    """--run: the compiled .om on the validation inputs, through ais_bench or msame, against
    the reference (gancc.stages.device)."""

    name = "device"
    section = "device"

    def skip(self, ctx: BuildContext) -> str | None:
        return None if ctx.options.run_device else "--run not given"

    def detail(self, ctx: BuildContext) -> str:
        tool, pick = _device_tool(ctx)      # its errors come before the progress line
        return f"{tool.kind} {pick.om}"

    def run(self, ctx: BuildContext) -> dict:
        from gancc.stages import device

        tool, pick = _device_tool(ctx)
        feeds = validate.make_inputs(ctx.model, ctx.samples, ctx.model.validation.seed)
        target = ctx.validation.reference_outputs
        if ctx.aipp_inputs is not None:
            feeds = {**feeds, **ctx.aipp_inputs.images}
            target = ctx.aipp_reference
        for name in ctx.model.atc.input_fp16_nodes or ():
            feeds[name] = feeds[name].astype(np.float16)
        out_nodes, _ = atc.resolve_out_nodes(ctx.model, ctx.graph)
        outputs = ctx.model.output_names or [o.name for o in ctx.graph.graph.output]
        ran = device.run(ctx.model, ctx.graph, ctx.staging.path, pick.command, pick.om, tool,
                         feeds, {k: v for k, v in target.items() if k in outputs}, out_nodes)
        return {**ran, "soc_chosen_by": pick.soc_chosen_by}

    def show(self, ctx: BuildContext, result: dict) -> None:
        where = (f"on the NPU ({result['npu_smi_soc']})" if result["validated_on_device"]
                 else f"from {result['tool_path']}")
        for name, f in result["final_vs_reference"].items():
            ctx.ui.info(f"    {name}: .om {where}: pixel_cosine {f['pixel_cosine']:.5f}  "
                        f"max_abs {f['max_abs']:.3g}")
        if not result["validated_on_device"]:
            ctx.ui.warn("NOT A DEVICE RUN", result["note"])


def _device_tool(ctx: BuildContext):
    """What --run needs, each missing piece a clear error: the .om, the reference, a tool."""
    from gancc.stages import device

    results = ctx.report.atc.results if ctx.report.atc is not None else None
    if not results:
        raise GanccError("--run needs the compiled .om, but atc did not run",
                         "install CANN (atc on PATH) or pass --atc PATH")
    if ctx.validation is None or not ctx.validation.reference_outputs:
        raise GanccError("--run compares the device with the reference, which this build "
                         "does not compute", "drop --no-validate / `reference none`")
    tool = device.find_tool(ctx.options.ais_bench, ctx.options.msame)
    if tool is None:
        raise GanccError("--run needs ais_bench or msame, and neither is installed",
                         "pip install the ais_bench wheel, or pass --ais-bench/--msame PATH")
    return tool, device.pick_command(ctx.commands, results, tool, ctx.options.run_soc)
