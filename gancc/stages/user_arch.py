"""The generator of a `source pytorch` block: resolved (a built-in, a registered or a user's
architecture), constructed, put in the spec's mode, and checked without weights.

`resolve(model)` finds the callable and checks the spec's arguments against it (SpecErrors
at the argument); `construct` calls it (a constructor that raises is a SpecError at the arch
line with its own message; what it prints is captured, not shown raw); `meta_check` builds
it on the meta device (no memory for weights, no weights needed) and runs forward on the
declared input shapes, so an input the generator cannot take, or an output count it does
not return, is an error at the spec's `input` / `output` line before any export.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Any, Callable

from gancc import archs
from gancc.archs import user
from gancc.errors import GanccError, SpecError
from gancc.spec.model import ModelSpec, PyTorchSource


@dataclass(frozen=True)
class Resolved:
    label: str                        # the name reports use: `resnet_generator`, `nets.py:UNet`
    build: Callable[..., Any]
    kwargs: dict[str, Any]            # checked, as the callable takes them
    inputs: int | None                # a built-in's declared input count


def resolve(model: ModelSpec) -> Resolved:
    """The architecture the spec names and its checked arguments (SpecError at the spot)."""
    source = model.source
    assert isinstance(source, PyTorchSource)
    call = source.arch
    positional = [a for a in call.args if a.name is None]
    if positional:
        raise SpecError("architecture arguments are written name=value", positional[0].span)
    try:
        for folder in model.arch_dirs:
            try:
                user.load_dir(folder.path)
            except archs.ArchitectureError as err:
                raise SpecError(err.message, folder.span, err.hint) from None
        if source.user is not None:
            ref = source.user
            try:
                fn = user.resolve(ref.text, ref.file, ref.module, ref.attr)
            except archs.ArchitectureError as err:
                raise SpecError(err.message, ref.span, err.hint) from None
            return Resolved(ref.text, fn, user.check_call(ref.attr, fn, call.kwargs()), None)
        if archs.get_registered(call.name) is None:
            user.load_entry_points()
        arch = archs.get(call.name)
        if arch.choices or arch.build.__module__.startswith("gancc.archs."):
            kwargs = archs.check_arguments(call.name, call.kwargs())
        else:       # a user's registered architecture: its signature, as for a file
            kwargs = user.check_call(call.name, arch.build, call.kwargs())
        return Resolved(call.name, arch.build, kwargs, arch.inputs)
    except archs.ArchitectureError as err:
        span = call.arg_span(err.arg) if err.arg else call.span
        raise SpecError(err.message, span, err.hint) from None


def construct(model: ModelSpec, resolved: Resolved, device: str | None = None):
    """Call the architecture (on `device`), returning the nn.Module in the spec's mode."""
    import torch

    source = model.source
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured), \
                (torch.device(device) if device else contextlib.nullcontext()):
            module = resolved.build(**resolved.kwargs)
    except GanccError:
        raise
    except Exception as err:   # the user's constructor: its own words, at the arch line
        printed = captured.getvalue().strip()
        raise SpecError(f"{resolved.label}(...) raised {type(err).__name__}: {err}"
                        + (f"\n  it printed: {printed[-500:]}" if printed else ""),
                        source.arch.span, "check the arguments against the constructor") from None
    if not isinstance(module, torch.nn.Module):
        raise SpecError(f"{resolved.label}(...) returned a {type(module).__name__}, not an "
                        "nn.Module", source.arch.span,
                        "name a class, or a function that returns the generator module")
    set_mode(module, source.mode)
    return module


def set_mode(module, mode: str) -> None:
    """`eval`: as deployed. `train`: forward as the upstream project runs it (instance
    statistics in InstanceNorm that tracks running ones, as StarGAN), but BatchNorm still
    uses its running statistics and Dropout stays off, so the output is deterministic."""
    from torch import nn

    if mode != "train":
        module.eval()
        return
    module.train()
    for m in module.modules():
        if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)):
            m.eval()


def meta_check(model: ModelSpec) -> None:
    """Resolve, build on the meta device and run forward on the declared input shapes."""
    import torch

    resolved = resolve(model)
    if resolved.inputs is not None and resolved.inputs != len(model.inputs):
        raise SpecError(f"{resolved.label} takes {resolved.inputs} input(s), the model declares "
                        f"{len(model.inputs)}",
                        model.inputs[-1].span if model.inputs else model.source.arch.span)
    try:
        module = construct(model, resolved, "meta")
    except SpecError:
        construct(model, resolved)   # a constructor that needs real tensors: judge it on CPU
        return                       # ... and leave the shapes to the export
    dummies = [torch.empty(inp.concrete_shape(1), dtype=getattr(torch, inp.dtype),
                           device="meta") for inp in model.inputs]
    try:
        with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
            result = module(*dummies)
    except NotImplementedError:
        return                       # an op without a meta kernel: the export will tell
    except Exception as err:         # what the declared inputs cannot go through
        if "meta" in str(err).lower():
            return
        shapes = ", ".join(f"{i.name} {list(i.concrete_shape(1))}" for i in model.inputs)
        raise SpecError(f"{resolved.label} cannot take the declared input(s) ({shapes}): "
                        f"{type(err).__name__}: {str(err).splitlines()[0]}",
                        model.inputs[0].span,
                        "check the input's channels and size against the architecture's "
                        "arguments") from None
    count = len(result) if isinstance(result, (tuple, list, dict)) else 1
    if count != len(model.outputs):
        raise SpecError(f"{resolved.label} returns {count} output(s), the model declares "
                        f"{len(model.outputs)}", model.outputs[-1].span,
                        "declare one name per output: `output a, b`")
