"""Checks of a parsed spec against gancc's registries (architectures, rewrites).

These need more than the grammar: whether `arch resnet_generator(ngff=64)` names a real
argument, whether a rewrite exists and takes the options given. Each failure is a SpecError
at the exact argument or step, with the nearest valid name as a hint. `gancc check` runs
them without building anything.
"""

from __future__ import annotations

from gancc import archs
from gancc.errors import SpecError, did_you_mean
from gancc.passes import registry
from gancc.passes.base import Rewrite
from gancc.spec.model import ModelSpec, PyTorchSource, SpecFile


def check_architecture(model: ModelSpec) -> None:
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


def make_passes(model: ModelSpec) -> list[Rewrite]:
    """The spec's rewrite pipeline as configured pass instances (SpecError on a bad step)."""
    from gancc.spec import rules

    passes = []
    for step in model.rewrites:
        rule = rules.find(model.rules, step.name)
        if rule is not None:      # a `rule` of the spec file, checked at this model's opset
            if step.options:
                raise SpecError(f"rule '{rule.name}' takes no options", step.options[0].span,
                                f"it is declared at line {rule.span.line}")
            passes.append(rules.make_rule_pass(rule, model.opset))
            continue
        try:
            passes.append(registry.make_pass(step.name, step.option_dict()))
        except registry.OptionError as err:
            bad = next((o for o in step.options if o.name and o.name in err.message), None)
            raise SpecError(err.message, bad.span if bad else step.span, err.hint) from None
        except registry.RegistryError as err:
            names = [r.name for r in model.rules] + list(registry.all_rewrites())
            raise SpecError(err.message, step.span,
                            did_you_mean(step.name, names) or err.hint) from None
    return passes


def check_spec(spec: SpecFile) -> None:
    from gancc.aipp.resolve import resolve_model

    for model in spec.models:
        check_architecture(model)
        make_passes(model)
        resolve_model(model, model.atc.soc_version)   # AIPP rules against the declared inputs
