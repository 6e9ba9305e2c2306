"""The stages that make the graph: source, export, simplify, rewrite (README steps 1-4)."""

from __future__ import annotations

import onnx

from gancc import onnx_io
from gancc.build.cached import store_export
from gancc.build.context import BuildContext
from gancc.stages.report import GraphSection, RewriteSection, SourceSection
from gancc.build.stage import Stage
from gancc.graph import op_histogram
from gancc.passes.manager import VerifyOptions, run_pipeline
from gancc.stages import simplify, validate

CACHED = "the build cache holds the simplified graph"


class LoadSource(Stage):
    """The generator with its weights, an ONNX file, a TensorFlow graph, or a cache hit."""

    name = "source"
    section = "source"

    def detail(self, ctx: BuildContext) -> str:
        return "(cached)" if ctx.source.cached else ""

    def run(self, ctx: BuildContext) -> SourceSection:
        return ctx.source.load(ctx)

    def show(self, ctx: BuildContext, result: SourceSection) -> None:
        weights = result.weights
        if weights is None:
            return
        if weights.kind == "random":
            ctx.ui.warn("RANDOM WEIGHTS", f"{ctx.model.name}: {weights.note}.\nThe compiled "
                        "model is structurally right but its outputs are not images; validation "
                        "checks the compilation only. Put the real checkpoint in place for a "
                        "usable model.")
        else:
            dropped = weights.dropped_keys
            ctx.ui.info(f"weights: {weights.path} (sha256 {weights.sha256[:12]}…)"
                        + (f", dropped {len(dropped)} InstanceNorm stat keys" if dropped else "")
                        + (f"; {weights.note}" if weights.note else ""))
            for warning in weights.warnings:
                ctx.ui.warn("WEIGHTS", f"{ctx.model.name}: {warning}")


class Export(Stage):
    """ONNX at the spec's opset, names and dynamic batch axis; the weights stay out of the
    graph until it is simplified (gancc.stages.export)."""

    name = "export"
    section = "export"

    def skip(self, ctx: BuildContext) -> str | None:
        if ctx.source.cached:
            return CACHED
        if ctx.module is None:
            return f"a {ctx.source.kind} source is a graph already"
        return None

    def detail(self, ctx: BuildContext) -> str:
        return f"opset {ctx.model.opset}"

    def announce_skip(self, ctx: BuildContext, reason: str) -> None:
        if ctx.source.cached:
            ctx.ui.info(f"- {self.name:<10} skipped: {reason}")

    def run(self, ctx: BuildContext) -> GraphSection:
        from gancc.stages import export as export_stage   # imports torch

        # in a child process: a native crash while tracing is an error, not a dead gancc
        exported = ctx.exported = export_stage.export_isolated(ctx.module, ctx.model,
                                                               ctx.staging.path)
        facts = {"nodes": len(exported.graph.graph.node), "warnings": exported.notes,
                 "op_histogram": op_histogram(exported.graph), "traced_at": exported.traced_at,
                 "reduced_size_trace": exported.reduced}
        if exported.fallback:
            facts["full_size_trace_because"] = exported.fallback
        if exported.weight_bytes <= onnx_io.LARGE_MODEL_BYTES:
            ctx.unmodified = exported.with_weights()
        else:
            # its weight-free stand-in for the stage diffs, made while it still has weights
            ctx.export_stand_in = exported.weight_free()
            facts["unmodified_export"] = (
                f"weights {exported.weight_bytes / 2**20:.0f} MiB > "
                f"{onnx_io.LARGE_MODEL_BYTES / 2**20:.0f} MiB: the unmodified export is not kept "
                "(a second copy of the weights), so validation compares the final graph only")
        # One copy of a large model's weights: they move from the generator into the graph
        # (the generator is emptied), once the reference has run. Only the AIPP check runs
        # the generator after that, so with AIPP validation they are copied instead.
        ctx.weights_move = ctx.unmodified is None and not (ctx.validating and ctx.model.aipp)
        return GraphSection(facts)

    def show(self, ctx: BuildContext, result: GraphSection) -> None:
        exported = ctx.exported
        shapes = ", ".join(f"{name} {'x'.join(map(str, shape))}"
                           for name, shape in exported.traced_at.items())
        ctx.ui.info(f"    traced at {shapes}"
                    + (" (reduced: the graph is the same at two sizes)" if exported.reduced
                       else "")
                    + (f"; at the spec's size because {exported.fallback}"
                       if exported.fallback else ""))
        if "unmodified_export" in result.facts:
            ctx.ui.info(f"    {result.facts['unmodified_export']}")


class ReferenceAhead(Stage):
    """The generator's outputs on the validation inputs, before its weights move into the
    graph (a large model); validation then does not run it again."""

    name = "reference"

    def skip(self, ctx: BuildContext) -> str | None:
        if not ctx.weights_move:
            return "the generator keeps its weights: validation runs it"
        if not ctx.validating:
            return "no validation"
        if ctx.model.validation.reference != "pytorch":
            return "the reference is not the generator"
        return None

    def detail(self, ctx: BuildContext) -> str:
        return "the generator, before its weights move into the graph"

    def run(self, ctx: BuildContext) -> None:
        ctx.known_reference = validate.reference_ahead(ctx.model, ctx.module,
                                                       ctx.options.samples)


class Simplify(Stage):
    """onnxsim on the weight-free graph, constants lifted to initializers, then the weights
    attached (moved, for a large model)."""

    name = "simplify"
    section = "simplify"

    def skip(self, ctx: BuildContext) -> str | None:
        return CACHED if ctx.source.cached else ctx.no_onnx

    def announce_skip(self, ctx: BuildContext, reason: str) -> None:
        if ctx.source.cached:
            ctx.ui.info(f"- {self.name:<10} skipped: {reason}")

    def run(self, ctx: BuildContext) -> GraphSection:
        ctx.graph, lifted = _simplified(ctx)
        if ctx.weights_move:
            ctx.module = None           # its tensors are the graph's now
        return GraphSection({"nodes": len(ctx.graph.graph.node), "constants_lifted": lifted,
                             "op_histogram": op_histogram(ctx.graph)})


def _simplified(ctx: BuildContext) -> tuple[onnx.ModelProto, int]:
    """A computation on the weights alone (weight or spectral norm) is folded by onnxsim only
    when it sees their values: such an export is simplified again with its weights."""
    name, exported = ctx.model.name, ctx.exported
    if exported is None:
        return simplify.simplify(ctx.source_graph, name)
    from gancc.stages import export as export_stage

    graph, lifted = simplify.simplify(exported.graph, name)
    if simplify.weight_only_reader(graph, set(exported.weights)) is None:
        export_stage.attach_weights(graph, exported.weights, release=ctx.weights_move)
        return graph, lifted
    with_weights = ctx.unmodified if ctx.unmodified is not None else exported.with_weights()
    return simplify.simplify(with_weights, name)


class Snapshot(Stage):
    """The starting graphs for the IR dumps, --print-ir-after-change and report.html: the
    export (or the source graph) and the simplified graph."""

    name = "snapshot"
    timed = False

    def skip(self, ctx: BuildContext) -> str | None:
        return ctx.no_onnx

    def run(self, ctx: BuildContext) -> None:
        first = "export" if ctx.source.kind == "pytorch" else "source"
        if ctx.source.cached:
            ctx.recorder.stage(first, None)
        elif ctx.export_stand_in is not None:
            # a large export, kept without its weights: its weight-free stand-in
            ctx.recorder.stage(first, ctx.exported.graph, light=ctx.export_stand_in)
        else:
            ctx.recorder.stage(first, ctx.unmodified)
        ctx.recorder.stage("simplify", ctx.graph)


class StoreExport(Stage):
    """The simplified graph into the build cache, for the next build of this source."""

    name = "cache-export"
    timed = False

    def skip(self, ctx: BuildContext) -> str | None:
        if ctx.source.cached:
            return "served from the build cache"
        return None if ctx.cache.export_key else ctx.cache.status["export"]

    def run(self, ctx: BuildContext) -> None:
        store_export(ctx.cache, ctx.graph, ctx.report.to_json())


class Rewrite(Stage):
    """The spec's rewrite pipeline, verified after every pass that changed the graph."""

    name = "rewrite"
    section = "rewrite"

    def skip(self, ctx: BuildContext) -> str | None:
        return ctx.no_onnx

    def detail(self, ctx: BuildContext) -> str:
        return _pipeline_text(ctx) or "(no rewrites)"

    def run(self, ctx: BuildContext) -> RewriteSection:
        options = VerifyOptions(onnxruntime=ctx.options.verify_onnxruntime,
                                idempotent=ctx.options.check_idempotent)
        results = run_pipeline(ctx.graph, ctx.passes, options,
                               after_pass=ctx.recorder.after_pass)
        return RewriteSection(_pipeline_text(ctx), tuple(results))

    def show(self, ctx: BuildContext, result: RewriteSection) -> None:
        for r in result.passes:
            ctx.ui.info(f"    {r.name}: {r.matches} match(es), -{r.nodes_removed}/"
                        f"+{r.nodes_added} nodes"
                        + (f", {len(r.declined)} declined" if r.declined else ""))


def _pipeline_text(ctx: BuildContext) -> str:
    return ",".join(p.pipeline_text() for p in ctx.passes)
