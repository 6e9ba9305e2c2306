"""The stages that write what Ascend needs: the final graph, aipp.cfg, atc.sh, and the
checks and tools around them (README steps 5-6)."""

from __future__ import annotations

import dataclasses

from gancc import onnx_io
from gancc.build.context import BuildContext
from gancc.stages.report import AippSection, AtcSection, FinalSection, SocSection
from gancc.build.stage import Stage
from gancc.errors import GraphError
from gancc.fsutil import sha256_file
from gancc.graph import op_histogram
from gancc.stages import atc, lint


class EmitGraph(Stage):
    """The final graph: `<model>.onnx` (+ `<model>.data` past protobuf's 2 GB limit)."""

    name = "emit-onnx"
    section = "final"
    timed = False

    def skip(self, ctx: BuildContext) -> str | None:
        return ctx.no_onnx

    def run(self, ctx: BuildContext) -> FinalSection:
        name = ctx.onnx_file = ctx.atc_model = f"{ctx.model.name}.onnx"
        path = ctx.staging.path / name
        onnx_io.save_onnx(ctx.graph, path)
        return FinalSection(name, sha256_file(path), len(ctx.graph.graph.node),
                            op_histogram(ctx.graph))


class EmitFrozenGraph(Stage):
    """A TensorFlow source's frozen .pb, copied beside atc.sh: atc compiles it itself.
    Without an ONNX conversion it is also the build's final artifact."""

    name = "emit-pb"
    section = "final"
    timed = False

    def skip(self, ctx: BuildContext) -> str | None:
        return None if ctx.source.kind == "tensorflow" else "not a TensorFlow source"

    def run(self, ctx: BuildContext) -> FinalSection | None:
        from gancc.stages import tensorflow as tf_stage

        ctx.atc_model = tf_stage.copy_graph(ctx.model, ctx.staging.path)
        if ctx.graph is not None:
            return None                  # the .onnx is the final graph
        return FinalSection(ctx.atc_model, sha256_file(ctx.staging.path / ctx.atc_model))


class SocVersion(Stage):
    """The SoC atc compiles for: --soc-version, the spec, or what npu-smi reports here."""

    name = "soc-version"
    section = "soc_version"
    timed = False

    def skip(self, ctx: BuildContext) -> str | None:
        # a TensorFlow graph alone: atc.sh takes the spec's (or the flag's) as written
        return ctx.no_onnx

    def run(self, ctx: BuildContext) -> SocSection:
        socs, origin = atc.soc_versions_for(ctx.model, ctx.options.soc_version)
        return SocSection(socs[0], origin, socs)

    def show(self, ctx: BuildContext, result: SocSection) -> None:
        if result.origin == "npu-smi info":
            ctx.ui.info(f"soc_version {result.value} (detected with npu-smi info)")


def soc(ctx: BuildContext) -> str | None:
    found = ctx.report.soc_version
    return found.value if found is not None else ctx.options.soc_version


def socs(ctx: BuildContext) -> tuple[str | None, ...]:
    """Every SoC the build compiles for (`soc_version A, B`); lint and AIPP check each."""
    found = ctx.report.soc_version
    return found.values if found is not None and found.values else (soc(ctx),)


class EmitAipp(Stage):
    """The spec's aipp blocks, expanded and checked against the model and SoC: aipp.cfg."""

    name = "aipp-config"
    section = "aipp"
    timed = False

    def skip(self, ctx: BuildContext) -> str | None:
        if not ctx.model.aipp:
            return "the spec has no aipp block"
        return ctx.no_onnx

    def run(self, ctx: BuildContext) -> AippSection:
        from gancc.aipp.resolve import block_dicts, resolve_model

        blocks = ctx.aipp_blocks = resolve_model(ctx.model, soc(ctx))
        for other in socs(ctx)[1:]:   # the limits differ by SoC (padded width): check each
            for block, again in zip(blocks, resolve_model(ctx.model, other)):
                block.warnings += [w for w in again.warnings if w not in block.warnings]
        text = atc.write_aipp(ctx.model, ctx.staging.path / "aipp.cfg", str(ctx.spec.path),
                              block_dicts(blocks))
        return AippSection("aipp.cfg", text, tuple(blocks))

    def show(self, ctx: BuildContext, result: AippSection) -> None:
        for b in result.blocks:
            for note in b.notes:
                ctx.ui.info(f"aipp {b.input}: {note}")
            for warning in b.warnings:
                ctx.ui.warn("AIPP", warning)
        if ctx.model.atc.enable_small_channel is None and any(b.channels <= 4
                                                              for b in result.blocks):
            ctx.ui.info("hint: the Ascend docs recommend `enable_small_channel true` (atc "
                        "block) with static AIPP on inputs of 4 channels or fewer")


class EmitAtc(Stage):
    """atc.sh: one atc command per batch size, a typed option set checked against ATC's
    rules and the graph."""

    name = "atc-script"
    section = "atc"
    timed = False

    def run(self, ctx: BuildContext) -> AtcSection:
        aipp = "aipp.cfg" if ctx.report.aipp is not None else None
        # one SoC: the one the soc-version stage settled on; several: the spec's list
        chosen = soc(ctx) if len(socs(ctx)) == 1 else None
        ctx.commands = atc.atc_commands(ctx.model, ctx.graph, ctx.atc_model, aipp, chosen)
        atc.write_script(ctx.commands, ctx.staging.path / "atc.sh", ctx.model,
                         str(ctx.spec.path))
        notes: list[str] = []
        if ctx.graph is not None and ctx.source.kind != "tensorflow":
            _, notes = atc.resolve_out_nodes(ctx.model, ctx.graph)
        targets = [{"om": f"{c.om_base}.om", "batch": c.batch, "soc_version": c.soc_version}
                   for c in ctx.commands]
        from gancc.stages.atc_tuning import tuning_warnings

        return AtcSection("atc.sh", [c.shell() for c in ctx.commands], notes=notes,
                          targets=targets, warnings=tuning_warnings(ctx.model, socs(ctx)))

    def show(self, ctx: BuildContext, result: AtcSection) -> None:
        for note in result.notes:     # what atc.sh got for out_nodes, when the spec differs
            ctx.ui.info(f"atc: {note}")
        for warning in result.warnings:
            ctx.ui.warn("ATC", warning)


class Lint(Stage):
    """ATC's ONNX parser, checked before atc runs: what it cannot take stops the build."""

    name = "lint"
    section = "lint"
    timed = False

    def skip(self, ctx: BuildContext) -> str | None:
        if ctx.source.kind == "tensorflow":
            return "atc compiles the frozen .pb, not the ONNX graph"
        return ctx.no_onnx

    def run(self, ctx: BuildContext) -> dict:
        targets = socs(ctx)
        per_soc = {s: lint.lint(ctx.graph, s) for s in targets}
        shown: list[str] = []    # a finding every SoC shares is shown once
        for s, findings in per_soc.items():
            shown += [f.render() for f in findings
                      if f.severity == "warning" and f.render() not in shown]
        if shown:
            ctx.ui.warn("ATC LINT", "\n".join(shown))
        ctx.report.lint = lint.to_json(per_soc[targets[0]], targets[0])
        if len(targets) > 1:
            ctx.report.lint["per_soc"] = {s: lint.to_json(f, s) for s, f in per_soc.items()}
        for s, findings in per_soc.items():
            errors = [f for f in findings if f.severity == "error"]
            if errors:
                where = f" for {s}" if len(targets) > 1 else ""
                raise GraphError(f"atc would fail on the final graph{where} ({len(errors)} "
                                 "problem(s)):\n  " + "\n  ".join(f.render() for f in errors),
                                 errors[0].node, ctx.model.name,
                                 "run `gancc lint` on the .onnx for the full list")
        return ctx.report.lint


class RunAtc(Stage):
    """atc itself, when it is installed (or named with --atc)."""

    name = "atc"
    section = "atc"

    def skip(self, ctx: BuildContext) -> str | None:
        count = f"{len(ctx.commands)} command(s)"
        if not ctx.options.run_atc:
            return f"--no-atc: atc.sh holds the commands ({count})"
        if atc.find_atc(ctx.options.atc_path) is None:
            return f"atc is not installed here: run atc.sh on an Ascend host ({count})"
        return None

    def announce_skip(self, ctx: BuildContext, reason: str) -> None:
        ctx.ui.info(reason)

    def detail(self, ctx: BuildContext) -> str:
        return f"{len(ctx.commands)} command(s)"

    def run(self, ctx: BuildContext) -> AtcSection:
        binary = atc.find_atc(ctx.options.atc_path)
        results = atc.run_atc(binary, ctx.commands, ctx.staging.path, env=ctx.model.atc.env)
        return dataclasses.replace(ctx.report.atc, ran=True, results=results, binary=binary)
