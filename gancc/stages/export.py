"""Stage 2: export the PyTorch generator to ONNX with the legacy TorchScript exporter.

`dynamo=False` is the exporter that targets opset 11 (what ATC-era recipes use). The batch
axis is dynamic when the spec's first dimension is symbolic; input and output names are the
spec's. The exporter's warnings are collected for the report instead of flooding the
terminal.

The export carries no weights: the generator's parameters and buffers are graph inputs
named by their state_dict keys (`export_params=False`), and `attach_weights` turns them into
initializers after onnxsim has run on the weight-free graph. Serialising, simplifying and
shape-inferring a graph then costs memory in proportion to the graph, not the weights: a
full-size Pix2pixHD (731 MB of weights) would otherwise hold several copies of them at once.

Tracing runs the generator, so tracing a 1024x2048 generator holds its activations (GBs).
A fully convolutional generator's graph does not depend on the image size, so the export
traces at two reduced sizes (1/8 and 1/4 of each spatial dimension) and keeps the graph
only when both traces agree node for node and constant for constant: a graph that bakes a
size into a constant (a Reshape target, StarGAN's tiled attribute vector) differs between
the two and is traced again at the spec's size. The kept graph gets the spec's shapes back,
and shape inference (in onnxsim) recomputes every intermediate shape. Validation still
runs the final graph at the spec's size against the generator itself.

One generator cannot be exported without its weights: one whose forward computes weights
from others (weight norm, spectral norm), or with a BatchNorm right after a Conv (in eval
mode the exporter's peephole pass fuses the two, computing the Conv's new weight and bias).
The exporter folds that computation into a new tensor, an input that is no parameter of the
generator; it is then exported at the spec's size with its weights in the graph, as a plain
`torch.onnx.export` would.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import onnx
from onnx import numpy_helper

from gancc.errors import GanccError, SpecError
from gancc.graph.weightfree import weight_free_from_array
from gancc.spec.model import ModelSpec
from gancc.stages import isolate

_TORCH_DTYPES = {"float32": "float32", "float16": "float16", "int32": "int32", "int64": "int64",
                 "uint8": "uint8", "int8": "int8", "bool": "bool"}
# Trace at 1/8 and 1/4 of each spatial size, when the smaller is still this big: a few
# down-samplings and reflect pads must fit, and below it a full-size trace is cheap anyway.
_REDUCTIONS = (8, 4)
_MIN_REDUCED_DIM = 16
_FOLDED_WEIGHTS = ("the exporter computes some weights from others (a BatchNorm folded into "
                   "the Conv before it, weight norm, spectral norm), or "
                   "some are bfloat16: the export holds its weights")


@dataclass
class ExportedGraph:
    """The exporter's graph with every weight a graph input, and those weights by name (or,
    for a generator whose weights the exporter computes, the graph with its weights and
    `weights` empty)."""

    graph: onnx.ModelProto
    weights: dict = field(repr=False)        # graph input name -> torch.Tensor
    traced_at: dict[str, list[int]]          # input name -> the shape the generator ran at
    reduced: bool                            # traced below the spec's size (see module doc)
    notes: list[str]                         # the exporter's warnings, deduplicated
    fallback: str | None = None              # why the reduced-size trace was not kept

    @property
    def weight_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.weights.values())

    def with_weights(self) -> onnx.ModelProto:
        """A copy of the exported graph with its weights as initializers (the unmodified export)."""
        model = onnx.ModelProto()
        model.CopyFrom(self.graph)
        attach_weights(model, self.weights)
        return model

    def weight_free(self) -> onnx.ModelProto:
        """with_weights() as a weight-free copy (gancc.graph.weightfree): digests in place of
        the weights."""
        model = onnx.ModelProto()
        model.CopyFrom(self.graph)
        attach_weights(model, self.weights, weight_free_from_array)
        return model


def export(module, model: ModelSpec) -> ExportedGraph:
    full = {inp.name: list(inp.concrete_shape(1)) for inp in model.inputs}
    reduced = _reduced_shapes(model)
    fallback = None
    if reduced:
        try:
            small, notes = _trace(module, model, reduced[0], probe=False)
            larger, more = _trace(module, model, reduced[1], probe=False)
        except GanccError as err:
            fallback = f"the reduced-size trace failed ({err.message.split(': ', 1)[-1]})"
        else:
            weights = _weights_by_input(module, larger, model)
            if weights is None:
                return _export_with_weights(module, model, full)
            difference = _size_dependence(small, larger)
            if difference is None:
                _set_spec_shapes(larger, model)
                return ExportedGraph(larger, weights, reduced[1], True,
                                     sorted(set(notes) | set(more)))
            fallback = f"the graph depends on the input size: {difference}"
    graph, notes = _trace(module, model, full)
    weights = _weights_by_input(module, graph, model)
    if weights is None:
        return _export_with_weights(module, model, full)
    return ExportedGraph(graph, weights, full, False, notes, fallback)


def export_isolated(module, model: ModelSpec, workdir: Path) -> ExportedGraph:
    """export(), run in a forked child (gancc.stages.isolate): a native crash while tracing
    (a kernel's SIGFPE, a user forward's SIGSEGV) is an error naming the model, not a dead
    gancc. The child writes the graph to a temporary file in `workdir` (the build's staging
    folder) and sends the rest back; the weights are this process's own tensors, by name."""
    if isolate.in_process():
        return export(module, model)
    import torch.onnx.utils  # noqa: F401 - imported once here, not again in every child

    path = workdir / f".export-{os.getpid()}.onnx"

    def work() -> dict:
        exported = export(module, model)
        path.write_bytes(exported.graph.SerializeToString())
        return {"weights": list(exported.weights), "traced_at": exported.traced_at,
                "reduced": exported.reduced, "notes": exported.notes,
                "fallback": exported.fallback, "buffers": _traced_buffers(module)}

    hint = ("the architecture's arguments or its forward make torch crash: check them (a user "
            f"architecture: run its forward on its own); {isolate.IN_PROCESS_ENV}=1 runs the "
            "export inside gancc, for a debugger")
    try:
        meta = isolate.run_forked(work, f"tracing model '{model.name}'", hint)
        graph = onnx.load_from_string(path.read_bytes())
    finally:
        path.unlink(missing_ok=True)
    _restore_buffers(module, meta["buffers"])
    tensors = dict(module.named_parameters())
    tensors.update(module.named_buffers())
    return ExportedGraph(graph, {name: tensors[name] for name in meta["weights"]},
                         meta["traced_at"], meta["reduced"], meta["notes"], meta["fallback"])


def _traced_buffers(module) -> dict:
    """A module in train mode updates its buffers (running statistics) while it is traced,
    and the graph and the reference are built from the updated ones: the child sends them
    back so that the export has the same effect as in-process. Empty in eval mode."""
    if not getattr(module, "training", False):
        return {}
    return {name: buffer.detach().clone() for name, buffer in module.named_buffers()}


def _restore_buffers(module, buffers: dict) -> None:
    import torch

    with torch.no_grad():
        for name, buffer in module.named_buffers():
            if name in buffers:
                buffer.copy_(buffers[name])


def _export_with_weights(module, model: ModelSpec, full: dict[str, list[int]]) -> ExportedGraph:
    """The exporter computes some weights from others: they must be in the export itself."""
    graph, notes = _trace(module, model, full, with_weights=True)
    return ExportedGraph(graph, {}, full, False, notes, _FOLDED_WEIGHTS)


def attach_weights(model: onnx.ModelProto, weights: dict, make=numpy_helper.from_array,
                   release: bool = False) -> int:
    """Turn the graph inputs named in `weights` into initializers holding them, in place.

    Inputs the graph no longer reads (onnxsim may have removed their readers) are dropped.
    Returns the number of initializers added. One tensor is converted at a time, so the
    transient memory is one tensor's bytes. `release` empties each tensor once it is in the
    graph (the generator is then unusable): the weights move instead of being copied, for a
    build that needs no generator afterwards."""
    graph = model.graph
    read = {name for node in graph.node for name in node.input}
    keep, added = [], 0
    for value in graph.input:
        tensor = weights.get(value.name)
        if tensor is None:
            keep.append(value)
            continue
        if value.name in read:
            graph.initializer.append(make(tensor.detach().contiguous().numpy(), value.name))
            added += 1
        if release:
            tensor.data = tensor.data.new_empty(0)
    del graph.input[:]
    graph.input.extend(keep)
    return added


def _trace(module, model: ModelSpec, shapes: dict[str, list[int]], with_weights: bool = False,
           probe: bool = True) -> tuple[onnx.ModelProto, list[str]]:
    """The graph traced at `shapes`, and the exporter's warnings. `probe`: on an operator the
    spec's opset cannot write, export again at newer opsets to name one that can; not for a
    reduced-size attempt, whose failure falls back to a full-size trace that probes."""
    import torch

    dummies = []
    for inp in model.inputs:
        dtype = getattr(torch, _TORCH_DTYPES[inp.dtype])
        shape = shapes[inp.name]
        dummies.append(torch.zeros(shape, dtype=dtype) if not dtype.is_floating_point
                       else torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(dtype))
    dynamic_axes = {}
    for inp in model.inputs:
        if inp.batch_dim:
            dynamic_axes[inp.name] = {0: inp.batch_dim}
    if dynamic_axes:
        batch_name = next(iter(dynamic_axes.values()))[0]
        for out in model.outputs:
            dynamic_axes[out.name] = {0: batch_name}
    # A module in train mode (`mode train`; a torch.export program's module, which cannot be
    # switched) is exported as it is; otherwise in eval mode, as always.
    training = torch.onnx.TrainingMode.PRESERVE if getattr(module, "training", False) \
        else torch.onnx.TrainingMode.EVAL

    def run(opset: int) -> io.BytesIO:
        buffer = io.BytesIO()
        with torch.no_grad():
            torch.onnx.export(module, tuple(dummies), buffer, opset_version=opset,
                              input_names=model.input_names, output_names=model.output_names,
                              dynamic_axes=dynamic_axes or None, do_constant_folding=True,
                              export_params=with_weights, dynamo=False, training=training)
        return buffer

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            buffer = run(model.opset)
        except Exception as err:  # the exporter raises many types; all mean "cannot export"
            raise _export_error(err, run if probe else None, model) from None
    notes = sorted({str(w.message).splitlines()[0] for w in caught})
    return onnx.load_from_string(buffer.getvalue()), notes


def _export_error(err: Exception, run, model: ModelSpec) -> GanccError:
    """The exporter's failure in a line. An operator it cannot write at the spec's opset is
    the spec's mistake: a SpecError at the `opset` line (the source line when the opset is
    the default) naming the newer opset the exporter reaches, found by exporting again."""
    lines = str(err).strip().splitlines()
    # the first line says what failed; the exporter appends its IR and a traceback
    first = (lines[0] if lines else "").split("  [Caused by")[0]
    first = first.replace(" Please feel free to request support or submit a pull request on "
                          "PyTorch GitHub: https://github.com/pytorch/pytorch/issues", "")
    first = first.strip().rstrip(".")
    message = f"model '{model.name}': ONNX export failed at opset {model.opset}: " \
        f"{type(err).__name__}: {first}"
    if "opset" not in str(err) and not first.startswith("Unsupported: ONNX export of"):
        return GanccError(f"model '{model.name}': ONNX export failed at opset {model.opset}: "
                          f"{type(err).__name__}: {err}",
                          "check the input shapes and the opset in the spec")
    if run is None:     # not probed (a reduced-size attempt)
        return GanccError(message)
    from gancc.spec.lower import SUPPORTED_OPSETS

    span = model.spans.get("opset") or model.source.span
    newer = _reachable_opset(run, model.opset, SUPPORTED_OPSETS)
    if newer is None:
        return SpecError(f"{message}; the exporter cannot write it at any opset ATC parses "
                         f"({model.opset} to {max(SUPPORTED_OPSETS)})", span,
                         "replace the operator in the model, or export the ONNX file yourself "
                         "(`source onnx`)")
    return SpecError(f"{message}; the exporter reaches opset {newer}", span,
                     f"write `opset {newer}` in model '{model.name}'")


def _reachable_opset(run, opset: int, supported) -> int | None:
    """The lowest newer opset (that ATC parses) the exporter can export the model at."""
    for newer in sorted(o for o in supported if o > opset):
        try:
            run(newer)
        except Exception:  # noqa: BLE001 - still not exportable at this opset
            continue
        return newer
    return None


def _reduced_shapes(model: ModelSpec) -> tuple[dict[str, list[int]], dict[str, list[int]]] | None:
    """The two reduced trace shapes, or None when no input has spatial dims worth reducing.

    Spatial dims are those after (batch, channels) of inputs of rank 3 and more; each must
    divide by the largest reduction so that down- and up-sampling stay exact."""
    largest, spatial = max(_REDUCTIONS), False
    for inp in model.inputs:
        dims = inp.concrete_shape(1)[2:]
        if len(inp.shape) < 3:
            continue
        if any(d % largest or d // largest < _MIN_REDUCED_DIM for d in dims):
            return None
        spatial = True
    if not spatial:
        return None
    out = []
    for factor in _REDUCTIONS:
        shapes = {}
        for inp in model.inputs:
            shape = list(inp.concrete_shape(1))
            if len(shape) >= 3:
                shape[2:] = [d // factor for d in shape[2:]]
            shapes[inp.name] = shape
        out.append(shapes)
    return out[0], out[1]


def _size_dependence(a: onnx.ModelProto, b: onnx.ModelProto) -> str | None:
    """None when two traces have the same nodes and constants; else the first difference."""
    if len(a.graph.node) != len(b.graph.node):
        return f"{len(a.graph.node)} vs {len(b.graph.node)} nodes"
    for x, y in zip(a.graph.node, b.graph.node):
        if x.SerializeToString(deterministic=True) != y.SerializeToString(deterministic=True):
            return f"node '{x.name or x.output[0]}' ({x.op_type}) differs"
    constants_a = {t.name: t.SerializeToString(deterministic=True) for t in a.graph.initializer}
    constants_b = {t.name: t.SerializeToString(deterministic=True) for t in b.graph.initializer}
    if constants_a != constants_b:
        name = next(iter(sorted(set(constants_a.items()) ^ set(constants_b.items()))))[0]
        return f"constant '{name}' differs"
    return None


def _set_spec_shapes(graph: onnx.ModelProto, model: ModelSpec) -> None:
    """Give the graph the spec's input shapes; forget every traced shape after them."""
    specs = {inp.name: inp for inp in model.inputs}
    for value in graph.graph.input:
        spec = specs.get(value.name)
        if spec is None:
            continue
        dims = value.type.tensor_type.shape.dim
        for dim, size in zip(dims, spec.shape):
            if isinstance(size, str):
                dim.dim_param = size
            else:
                dim.dim_value = size
    for value in graph.graph.output:     # the rank stays; the sizes are inferred again
        for dim in value.type.tensor_type.shape.dim:
            if not dim.dim_param:
                dim.Clear()
    del graph.graph.value_info[:]


def _weights_by_input(module, graph: onnx.ModelProto, model: ModelSpec) -> dict | None:
    """The tensor behind every graph input that is not one of the spec's inputs; None when an
    input is no parameter or buffer of the generator (the exporter folded a computation on
    the weights, weight norm or spectral norm, into a tensor that only it knows), or one numpy
    cannot hold (bfloat16): such weights must be in the export itself."""
    tensors = dict(module.named_parameters())
    tensors.update(module.named_buffers())
    spec_inputs = set(model.input_names)
    weights = {}
    for value in graph.graph.input:
        if value.name in spec_inputs:
            continue
        if value.name not in tensors or not _numpy_compatible(tensors[value.name]):
            return None
        weights[value.name] = tensors[value.name]
    return weights


def _numpy_compatible(tensor) -> bool:
    """Whether numpy can hold the tensor (not bfloat16 or float8), as attach_weights needs;
    the exporter itself writes such weights, when they are in the export."""
    try:
        tensor.detach().reshape(-1)[:0].numpy()
    except (TypeError, RuntimeError):
        return False
    return True
