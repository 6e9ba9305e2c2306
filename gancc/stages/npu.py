"""The Ascend-specific steps of a build, called from gancc/pipeline.py:

- `emit_aipp`: expand and check the spec's aipp blocks against the model and SoC, write
  aipp.cfg, print the fp16 rounding of the normalisation constants and any warnings;
- `lint_graph`: the ATC compatibility check of the final graph (errors stop the build);
- `after_validation`: fp16 foresight, AIPP validation through the emulator, and with
  --run the compiled .om on the device (or whatever ais_bench/msame stands in for it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gancc.errors import GanccError, GraphError
from gancc.spec.model import ModelSpec
from gancc.stages import atc, foresight, lint, validate


def emit_aipp(model: ModelSpec, folder: Path, spec_path: str, soc: str | None, report: dict,
              ui) -> tuple[str | None, list]:
    if not model.aipp:
        return None, []
    from gancc.aipp.resolve import block_dicts, resolve_model

    blocks = resolve_model(model, soc)
    text = atc.write_aipp(model, folder / "aipp.cfg", spec_path, block_dicts(blocks))
    report["aipp"] = {"file": "aipp.cfg", "text": text, "blocks": [b.to_json() for b in blocks],
                      "warnings": [w for b in blocks for w in b.warnings]}
    for b in blocks:
        for note in b.notes:
            ui.info(f"aipp {b.input}: {note}")
        for warning in b.warnings:
            ui.warn("AIPP", warning)
    if model.atc.enable_small_channel is None and any(b.channels <= 4 for b in blocks):
        ui.info("hint: the Ascend docs recommend `enable_small_channel true` (atc block) with "
                "static AIPP on inputs of 4 channels or fewer")
    return "aipp.cfg", blocks


def lint_graph(final, soc: str | None, report: dict, ui, model_name: str,
               model: ModelSpec | None = None) -> None:
    if model is not None:   # what atc.sh got for out_nodes, when it differs from the spec
        _, notes = atc.resolve_out_nodes(model, final)
        for note in notes:
            ui.info(f"atc: {note}")
        if notes:
            report.setdefault("atc", {})["notes"] = notes
    findings = lint.lint(final, soc)
    report["lint"] = lint.to_json(findings, soc)
    warnings = [f for f in findings if f.severity == "warning"]
    errors = [f for f in findings if f.severity == "error"]
    if warnings:
        ui.warn("ATC LINT", "\n".join(f.render() for f in warnings))
    if errors:
        first = errors[0]
        raise GraphError(f"atc would fail on the final graph ({len(errors)} problem(s)):\n  " +
                         "\n  ".join(f.render() for f in errors), first.node, model_name,
                         "run `gancc lint` on the .onnx for the full list")


def after_validation(model: ModelSpec, final, exported, module, check, samples: int,
                     options, folder: Path, commands, aipp_blocks, report: dict, ui,
                     timings: dict) -> None:
    validation = report.setdefault("validation", {})
    outputs = model.output_names or [o.name for o in final.graph.output]
    reference = getattr(check, "reference_outputs", None) if check is not None else None
    if reference is None and check is not None and check.reference != "none":
        feeds = validate.make_inputs(model, samples, model.validation.seed)
        reference = foresight.reference_run(model, module, exported, final, feeds, check.reference)
    kind = check.reference if check is not None else None

    if check is not None and foresight.fp16_wanted(model, options.fp16_foresight) and reference:
        with ui.stage("fp16", timings, "the final graph in float16 (ATC's force_fp16)"):
            fp16 = foresight.fp16_foresight(model, final, reference, samples,
                                            getattr(check, "final_outputs", None))
        validation["fp16"] = fp16
        if fp16["ran"]:
            for name, f in fp16["final_vs_reference"].items():
                fp32 = check.final.get(name, {}).get("pixel_cosine", float("nan"))
                drift = fp16["fp16_vs_fp32_final"][name]
                ui.info(f"    {name}: fp16 predicted pixel_cosine {f['pixel_cosine']:.5f} "
                        f"(fp32 {fp32:.5f}); fp16 vs fp32 graph: max_abs {drift['max_abs']:.3g}"
                        + (f", {f['non_finite']} non-finite values" if f["non_finite"] else ""))
                if f["non_finite"] or f["pixel_cosine"] < fp32 - 0.05:
                    ui.warn("FP16", f"{model.name}: output '{name}' collapses in fp16 "
                            f"(pixel_cosine {f['pixel_cosine']:.4f} vs {fp32:.4f} in fp32). "
                            "Consider atc precision_mode allow_fp32_to_fp16 or "
                            "must_keep_origin_dtype, or keep_dtype \"OpType::InstanceNorm\".")
        else:
            ui.info(f"    fp16 foresight did not run: {fp16['error']}")

    aipp_inputs = None
    aipp_reference = None
    if aipp_blocks and check is not None:
        with ui.stage("aipp", timings, "uint8 -> emulated AIPP -> final graph"):
            section, aipp_inputs, aipp_reference = foresight.aipp_validation(
                model, final, exported, module, aipp_blocks, samples, kind)
        validation["aipp"] = section
        for name, f in section["final_vs_reference"].items():
            alone = section["aipp_vs_float_preprocessing"][name]
            ui.info(f"    {name}: uint8 through emulated AIPP: pixel_cosine {f['pixel_cosine']:.5f} "
                    f"vs reference; AIPP alone (vs float pre-processing) max_abs "
                    f"{alone['max_abs']:.3g}")

    if not getattr(options, "run_device", False):
        return
    from gancc.stages import device

    results = report.get("atc", {}).get("results")
    if not results:
        raise GanccError("--run needs the compiled .om, but atc did not run",
                         "install CANN (atc on PATH) or pass --atc PATH")
    if reference is None:
        raise GanccError("--run compares the device with the reference, which this build "
                         "does not compute", "drop --no-validate / `reference none`")
    tool = device.find_tool(options.ais_bench, options.msame)
    if tool is None:
        raise GanccError("--run needs ais_bench or msame, and neither is installed",
                         "pip install the ais_bench wheel, or pass --ais-bench/--msame PATH")
    command, om = device.pick_command(commands, results, tool)
    feeds = validate.make_inputs(model, samples, model.validation.seed)
    target = reference
    if aipp_inputs is not None:
        feeds = dict(feeds)
        feeds.update(aipp_inputs.images)
        target = aipp_reference
    for name in atc_fp16_inputs(model):
        feeds[name] = feeds[name].astype(np.float16)
    out_nodes, _ = atc.resolve_out_nodes(model, final)
    with ui.stage("device", timings, f"{tool.kind} {om}"):
        result = device.run(model, final, folder, command, om, tool, feeds,
                            {k: v for k, v in target.items() if k in outputs}, out_nodes)
    report["device"] = result
    where = (f"on the NPU ({result['npu_smi_soc']})" if result["validated_on_device"]
             else f"from {result['tool_path']}")
    for name, f in result["final_vs_reference"].items():
        ui.info(f"    {name}: .om {where}: pixel_cosine {f['pixel_cosine']:.5f}  "
                f"max_abs {f['max_abs']:.3g}")
    if not result["validated_on_device"]:
        ui.warn("NOT A DEVICE RUN", result["note"])


def atc_fp16_inputs(model: ModelSpec) -> tuple[str, ...]:
    return tuple(getattr(model.atc, "input_fp16_nodes", ()) or ())
