"""Stage 1: the model's source: a PyTorch generator with its weights, or an ONNX file."""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from gancc.errors import GanccError, SpecError, did_you_mean
from gancc.spec.model import ModelSpec, OnnxSource, PyTorchSource, TorchScriptSource
from gancc.stages.weights_info import WeightsInfo


@dataclass
class LoadedSource:
    module: object | None          # torch.nn.Module (eval mode) for a PyTorch source
    onnx_model: onnx.ModelProto | None
    weights: WeightsInfo | None
    reference: object | None = None  # a non-PyTorch reference (TensorFlow) with run_reference()
    note: str = ""                     # why a source could not be converted to ONNX, if so


def load_pytorch(model: ModelSpec, random_seed: int | None) -> LoadedSource:
    """Build the architecture and load its weights.

    `random_seed` (from --random-weights) allows seeded random weights when the checkpoint
    is absent; a spec's `else random(seed=N)` allows it on its own.
    """
    from gancc.stages import user_arch
    from gancc.stages.weights import init_random, load_checkpoint

    source = model.source
    assert isinstance(source, PyTorchSource)
    module = user_arch.construct(model, user_arch.resolve(model))
    weights = source.weights
    if weights is not None and (weights.path.exists() or weights.path.is_symlink()):
        info = load_checkpoint(module, weights.path, weights.key)
    else:
        seed = random_seed if random_seed is not None else (weights.fallback_seed if weights else None)
        if seed is None:
            where = f"checkpoint not found: {weights.path}" if weights else "the spec names no weights"
            raise SpecError(where, weights.span if weights else source.span,
                            "download the checkpoint to that path, or build with seeded random "
                            "weights: `--random-weights` on the command line, or "
                            "`else random(seed=0)` after the path in the spec")
        init_random(module, seed)
        reason = f"{weights.path} not found" if weights else "no weights declared"
        info = WeightsInfo("random", str(weights.path) if weights else None, None, seed,
                           note=f"{reason}; seeded random weights (seed {seed})")
    user_arch.set_mode(module, source.mode)     # as the spec says (loading leaves it so)
    return LoadedSource(module, None, info)


def require_module_file(model: ModelSpec) -> None:
    """A `source torchscript` / `source exported` file is there (asked by the build and by
    `gancc check`, gancc/checks.py, so they say the same)."""
    source = model.source
    what = ("TorchScript module" if isinstance(source, TorchScriptSource)
            else "torch.export program (.pt2)")
    if not source.path.is_file():
        raise SpecError(f"{what} not found: {source.path}", source.span,
                        "the path is relative to the spec file's folder")


def load_saved_module(model: ModelSpec):
    """`source torchscript` (torch.jit.load) or `source exported` (torch.export.load): the
    module, in eval mode, ready for the export stage and as validation's reference."""
    import torch

    source = model.source
    scripted = isinstance(source, TorchScriptSource)
    what = "TorchScript module" if scripted else "torch.export program (.pt2)"
    require_module_file(model)
    try:
        if scripted:
            return torch.jit.load(str(source.path), map_location="cpu").eval()
        program = torch.export.load(str(source.path))
    except Exception as err:  # torch raises several types for a file it cannot read
        made_by = "torch.jit.save" if scripted else "torch.export.save"
        raise GanccError(f"{source.path}: cannot load as a {what}: {type(err).__name__}: "
                         f"{str(err).strip().splitlines()[0] if str(err).strip() else ''}",
                         f"save it with {made_by}") from None
    return program.module()


def load_onnx(model: ModelSpec) -> LoadedSource:
    source = model.source
    assert isinstance(source, OnnxSource)
    if not source.path.is_file():
        raise SpecError(f"ONNX file not found: {source.path}", source.span)
    try:
        loaded = onnx.load(str(source.path))
    except Exception as err:  # protobuf decode errors have several types
        raise GanccError(f"{source.path}: cannot read as ONNX: {err}") from None
    graph_inputs = [i.name for i in loaded.graph.input
                    if i.name not in {t.name for t in loaded.graph.initializer}]
    for inp in model.inputs:
        if inp.name not in graph_inputs:
            raise SpecError(f"input '{inp.name}' is not an input of {source.path.name}", inp.span,
                            did_you_mean(inp.name, graph_inputs) or
                            f"the graph's inputs: {', '.join(graph_inputs)}")
    graph_outputs = [o.name for o in loaded.graph.output]
    for out in model.outputs:
        if out.name not in graph_outputs:
            raise SpecError(f"output '{out.name}' is not an output of {source.path.name}", out.span,
                            did_you_mean(out.name, graph_outputs) or
                            f"the graph's outputs: {', '.join(graph_outputs)}")
    return LoadedSource(None, loaded, None)
