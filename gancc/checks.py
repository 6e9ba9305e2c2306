"""Checks of a parsed spec against what gancc has: its architectures, its rewrites (and the
user code the spec names), the AIPP rules against the declared inputs.

These need more than the grammar: whether `arch resnet_generator(ngff=64)` names a real
argument, whether a rewrite exists and takes the options given. Each failure is a SpecError
at the exact argument or step, with the nearest valid name as a hint. `gancc check` runs them
without building anything; a build runs the same ones before its first stage.
"""

from __future__ import annotations

from gancc import archs
from gancc.errors import SpecError
from gancc.passes import factory
from gancc.spec.model import ModelSpec, PyTorchSource, SpecFile


def check_architecture(model: ModelSpec) -> None:
    """The model's `arch NAME(...)` against the built-in architectures: the name, the
    arguments (names, types, choices) and the number of inputs."""
    source = model.source
    if not isinstance(source, PyTorchSource):
        return
    call = source.arch
    positional = [a for a in call.args if a.name is None]
    if positional:
        raise SpecError("architecture arguments are written name=value", positional[0].span)
    try:
        arch = archs.get(call.name)
        archs.check_arguments(call.name, call.kwargs())
    except archs.ArchitectureError as err:
        span = call.arg_span(err.arg) if err.arg else call.span
        raise SpecError(err.message, span, err.hint) from None
    if arch.inputs != len(model.inputs):
        raise SpecError(f"{call.name} takes {arch.inputs} input(s), the model declares "
                        f"{len(model.inputs)}", model.inputs[-1].span if model.inputs else call.span)


def check_spec(spec: SpecFile) -> None:
    """Everything a build would check before its first stage, for every model of `spec`."""
    from gancc.aipp.resolve import resolve_model

    factory.load_spec(spec)            # its user code and rules, also for a file of rules only
    for model in spec.models:
        check_architecture(model)
        factory.make_passes(model, spec.source)
        resolve_model(model, model.atc.soc_version)   # AIPP rules against the declared inputs
