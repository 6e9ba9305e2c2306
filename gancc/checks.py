"""Checks of a parsed spec against what gancc has: its architectures, its rewrites (and the
user code the spec names), the AIPP rules against the declared inputs.

These need more than the grammar: whether `arch resnet_generator(ngff=64)` names a real
argument, whether a rewrite exists and takes the options given. Each failure is a SpecError
at the exact argument or step, with the nearest valid name as a hint. `gancc check` runs them
without building anything; a build runs the same ones before its first stage.
"""

from __future__ import annotations

import math

from gancc.errors import GanccError, SpecError, did_you_mean
from gancc.passes import factory
from gancc.stages import user_arch
from gancc.spec.model import (ExportedProgramSource, ModelSpec, OnnxSource, PyTorchSource,
                              SpecFile, TensorFlowSource, TorchScriptSource)
from gancc.spec.templates import in_model


def check_architecture(model: ModelSpec) -> None:
    """The model's `arch` (built-in, registered or a user's file or module): the name, the
    arguments (names, types, choices, required ones) and, from a trace of the generator on
    the meta device (no weights), whether it takes the declared inputs and returns the
    declared number of outputs (gancc.stages.user_arch)."""
    if isinstance(model.source, PyTorchSource):
        user_arch.meta_check(model)


def check_spec(spec: SpecFile, soc_version: str | None = None,
               random_seed: int | None = None) -> None:
    """Everything a build would check before its first stage, for every model of `spec`
    (`soc_version`, `random_seed`: build's --soc-version and --random-weights)."""
    factory.load_spec(spec)            # its user code and rules, also for a file of rules only
    for model in spec.models:
        try:
            check_architecture(model)
            factory.make_passes(model, spec.source)
            check_build_inputs(model, soc_version, random_seed)
        except GanccError as err:       # a model made from a template: name it, and its use
            in_model(err, model)
            raise


# What a build rejects without running the model: `gancc check` and the build (before its
# first stage, gancc/build/pipeline.py) call these same functions, so they say the same.

def check_build_inputs(model: ModelSpec, soc_version: str | None = None,
                       random_seed: int | None = None) -> None:
    check_soc_versions(model, soc_version)
    check_weights_present(model, random_seed)
    check_onnx_source(model)
    check_source_file(model)
    check_distributions(model)
    check_opset(model)
    check_atc_rules(model, soc_version)
    check_aipp(model, soc_version)


def check_aipp(model: ModelSpec, soc_version: str | None) -> None:
    """The AIPP rules against the declared inputs, per SoC (limits differ): before the
    export, not after it, where the build's aipp-config stage applies them again."""
    from gancc.aipp.resolve import resolve_model

    for soc in (soc_version,) if soc_version else model.atc.soc_versions or (
            model.atc.soc_version,):
        resolve_model(model, soc)


def check_soc_versions(model: ModelSpec, override: str | None) -> None:
    """A soc_version atc knows: --soc-version, else the spec's, else npu-smi's here."""
    from gancc.stages.atc import soc_version_for
    from gancc.stages.socs import unknown_soc

    if override:
        problem = unknown_soc(override)
        if problem:
            raise GanccError(f"--soc-version {override}: {problem[0]}", problem[1])
        return
    span = model.atc.spans.get("soc_version")
    for soc in model.atc.soc_versions or ((model.atc.soc_version,) if model.atc.soc_version
                                          else ()):
        problem = unknown_soc(soc)
        if problem:
            raise SpecError(problem[0], span, problem[1])
    soc_version_for(model, None)      # none given: npu-smi's, or the "no soc_version" error


def check_weights_present(model: ModelSpec, random_seed: int | None) -> None:
    """A missing checkpoint without `else random(...)` or --random-weights (the message the
    source stage would give after building the generator)."""
    source = model.source
    if not isinstance(source, PyTorchSource):
        return
    weights = source.weights
    if weights is not None and weights.path.exists():
        return
    if random_seed is not None or (weights is not None and weights.fallback_seed is not None):
        return
    where = f"checkpoint not found: {weights.path}" if weights else "the spec names no weights"
    raise SpecError(where, weights.span if weights else source.span,
                    "download the checkpoint to that path, or build with seeded random "
                    "weights: `--random-weights` on the command line, or "
                    "`else random(seed=0)` after the path in the spec")


def check_source_file(model: ModelSpec) -> None:
    """A `source tensorflow` .pb or a `source torchscript` / `exported` file is there (the
    source stage's own message: nothing falls back on a missing one)."""
    source = model.source
    if isinstance(source, TensorFlowSource):
        from gancc.stages.tensorflow import require_graph_file

        require_graph_file(source.path, source.span)
    elif isinstance(source, (TorchScriptSource, ExportedProgramSource)):
        from gancc.stages.source import require_module_file

        require_module_file(model)


def check_onnx_source(model: ModelSpec) -> None:
    """`source onnx`: the file is there, and its inputs (names, fixed dims) and outputs are
    the declared ones; a wrong shape would otherwise go into atc.sh and fail validation."""
    source = model.source
    if not isinstance(source, OnnxSource):
        return
    graph_inputs, graph_outputs = _onnx_interface(source)
    for inp in model.inputs:
        if inp.name not in graph_inputs:
            raise SpecError(f"input '{inp.name}' is not an input of {source.path.name}", inp.span,
                            did_you_mean(inp.name, graph_inputs) or
                            f"the graph's inputs: {', '.join(graph_inputs) or 'none'}")
        dims = graph_inputs[inp.name]
        mismatch = len(dims) != len(inp.shape) or any(
            isinstance(want, int) and isinstance(have, int) and want != have
            for want, have in zip(inp.shape, dims))
        if mismatch:
            shown = ", ".join(str(d) for d in dims)
            raise SpecError(f"input '{inp.name}' is declared {list(inp.shape)}, but "
                            f"{source.path.name} takes [{shown}]", inp.span,
                            f"declare it as in the file: {inp.name}: {inp.dtype}[{shown}]")
    for out in model.outputs:
        if out.name not in graph_outputs:
            raise SpecError(f"output '{out.name}' is not an output of {source.path.name}",
                            out.span, did_you_mean(out.name, graph_outputs) or
                            f"the graph's outputs: {', '.join(graph_outputs) or 'none'}")


def _onnx_interface(source: OnnxSource) -> tuple[dict[str, list], list[str]]:
    """The file's inputs (name -> dims: an int, or a name for a symbolic dim) and outputs;
    the weights are not read. Missing or unreadable: the source stage's own messages."""
    import onnx

    if not source.path.is_file():
        raise SpecError(f"ONNX file not found: {source.path}", source.span)
    try:
        graph = onnx.load(str(source.path), load_external_data=False).graph
    except Exception as err:  # noqa: BLE001  (protobuf decode errors have several types)
        raise GanccError(f"{source.path}: cannot read as ONNX: {err}") from None
    weights = {t.name for t in graph.initializer}
    inputs = {i.name: [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                       for d in i.type.tensor_type.shape.dim]
              for i in graph.input if i.name not in weights}
    return inputs, [o.name for o in graph.output]


def check_distributions(model: ModelSpec) -> None:
    """`validate { data x uniform(low, high) }`: parameters numpy can draw from."""
    from gancc.spec.lower import DISTRIBUTIONS

    for _input, call in model.validation.data:
        names = DISTRIBUTIONS.get(call.name, ())
        values = {}
        for k, a in enumerate(call.args):
            values[a.name or names[k]] = a
        for a in values.values():
            if not _finite(a.value):
                raise SpecError(f"{call.name}() takes finite numbers, got {a.value}", a.span)
        problem = _distribution_problem(call.name, {k: float(v.value) for k, v in values.items()})
        if problem:
            arg, message = problem
            raise SpecError(f"{call.name}(): {message}", values[arg].span if arg in values
                            else call.span)


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:                 # an integer beyond float's range
        return False


def _distribution_problem(name: str, v: dict[str, float]) -> tuple[str, str] | None:
    """The argument at fault and why, with stages/validate.py's defaults for the others."""
    if name == "uniform" and v.get("low", 0.0) >= v.get("high", 1.0):
        return "high", (f"high ({v.get('high', 1.0):g}) must be greater than low "
                        f"({v.get('low', 0.0):g})")
    if name == "randint" and int(v.get("low", 0)) >= int(v.get("high", 10)):
        return "high", (f"high ({int(v.get('high', 10))}, exclusive) must be greater than low "
                        f"({int(v.get('low', 0))})")
    if name == "normal" and v.get("std", 1.0) < 0:
        return "std", f"std must be 0 or more, got {v['std']:g}"
    if name == "bernoulli" and not 0 <= v.get("p", 0.5) <= 1:
        return "p", f"p is a probability, between 0 and 1, got {v['p']:g}"
    return None


# the opsets gancc exports, simplifies and rewrites at: below 9 the IR (3) needs every
# initializer among the graph inputs, which onnxsim and the rewrites do not keep
EXPORT_OPSETS = range(9, 19)


def check_opset(model: ModelSpec) -> None:
    if not isinstance(model.source, PyTorchSource) or model.opset in EXPORT_OPSETS:
        return
    raise SpecError(f"opset {model.opset} is not supported for export", model.spans.get(
                    "opset", model.span), f"gancc exports at opsets {EXPORT_OPSETS.start} to "
                    f"{EXPORT_OPSETS.stop - 1}; ATC parses 11 to 18, and 11 is the safe choice")


def check_atc_rules(model: ModelSpec, soc_version: str | None) -> None:
    """ATC's rules on each command's option set (gancc.stages.atc.option_sets) that need no
    graph: e.g. --auto_tune_mode with --op_bank_path from a `batch N { }` block. Per-output
    output_type entries are left out: they are resolved against the final graph."""
    import dataclasses

    from gancc.stages.atc import option_sets

    unresolved = dataclasses.replace(model, atc=dataclasses.replace(model.atc,
                                                                    output_type_nodes=()))
    option_sets(unresolved, None, f"{model.name}.onnx", "aipp.cfg" if model.aipp else None,
                soc_version)
