"""Running a model on the CPU: onnxruntime for ONNX graphs, the generator itself for
PyTorch, and the one place that decides which of them is a build's reference.

Validation, the fp16 prediction and the AIPP emulation all run graphs and references on
the same seeded inputs; they do it through these functions so that "the reference" means
the same thing in each of them.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Protocol, Union

import numpy as np
import onnx

from gancc.spec.model import ModelSpec

Feeds = dict[str, np.ndarray]
Outputs = dict[str, np.ndarray]


class FrameworkReference(Protocol):
    """A non-PyTorch reference (TensorFlow's runner of a frozen graph)."""

    reference_kind: str

    def run_reference(self, feeds: Feeds) -> Outputs: ...


def output_names(model: ModelSpec, graph: onnx.ModelProto) -> list[str]:
    return list(model.output_names) or [o.name for o in graph.graph.output]


def run_onnx(model: Union[onnx.ModelProto, Callable[[], onnx.ModelProto]], feeds: Feeds,
             outputs: list[str], saved: Path | None = None, spin: bool = True) -> Outputs:
    """Run `model` (a ModelProto, or a function that makes one) in onnxruntime (CPU) once;
    onnx_session() says how, and runs one graph on several inputs."""
    with onnx_session(model, saved, spin) as run:
        return run(feeds, outputs)


@contextmanager
def onnx_session(model: Union[onnx.ModelProto, Callable[[], onnx.ModelProto]],
                 saved: Path | None = None, spin: bool = True
                 ) -> Iterator[Callable[[Feeds, list[str]], Outputs]]:
    """One onnxruntime (CPU) session of `model`, as a function (feeds, outputs) -> outputs.

    A large model (past onnx_io.LARGE_MODEL_BYTES) is handed over as a file, not as bytes:
    `SerializeToString()` plus onnxruntime's own parse would hold its weights twice more at
    once. That file is `saved` when the model is already on disk there, else a temporary
    one; a model made by a function here is dropped once written. Its session also
    allocates each activation when needed instead of planning one arena for them all (about
    0.4 GB less at 1024x2048, for a few seconds more). `spin=False`: the session's threads
    sleep instead of spinning between ops, for a session that shares the CPUs with another
    (the fp16 prediction beside validation)."""
    import onnxruntime as ort

    from gancc.onnx_io import is_large, write_onnx

    made_here = callable(model)
    if made_here:
        model = model()
    options = ort.SessionOptions()
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")

    def runner(session) -> Callable[[Feeds, list[str]], Outputs]:
        return lambda feeds, outputs: dict(zip(outputs, session.run(outputs, feeds)))

    if not is_large(model):
        yield runner(ort.InferenceSession(model.SerializeToString(), options,
                                          providers=["CPUExecutionProvider"]))
        return
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    if saved is not None:
        yield runner(ort.InferenceSession(str(saved), options,
                                          providers=["CPUExecutionProvider"]))
        return
    with tempfile.TemporaryDirectory(prefix="gancc-ort-") as folder:
        path = Path(folder) / "model.onnx"
        write_onnx(model, path)
        if made_here:
            del model                 # the file holds it now: onnxruntime reads that
        yield runner(ort.InferenceSession(str(path), options,
                                          providers=["CPUExecutionProvider"]))


def run_torch(module, model: ModelSpec, feeds: Feeds) -> Outputs:
    import torch

    with torch.no_grad():
        result = module(*[torch.from_numpy(feeds[name]) for name in model.input_names])
    if not isinstance(result, (tuple, list)):
        result = (result,)
    return {name: t.detach().numpy() for name, t in zip(model.output_names, result)}


def run_reference(model: ModelSpec, kind: str, module, framework: FrameworkReference | None,
                  unmodified: onnx.ModelProto | None, final: onnx.ModelProto, feeds: Feeds
                  ) -> tuple[str, Outputs]:
    """The reference outputs on `feeds`, and which reference produced them.

    `kind` is what the spec asks for ("pytorch", "tensorflow" or "onnx"). The source
    framework runs when it is here (the generator, or TensorFlow's graph); otherwise the
    unmodified export does, or, for a large model that keeps none, the final graph."""
    if framework is not None and kind in ("pytorch", "tensorflow"):
        return framework.reference_kind, framework.run_reference(feeds)
    if kind == "pytorch" and module is not None:
        return "pytorch", run_torch(module, model, feeds)
    graph = unmodified if unmodified is not None else final
    return "onnx", run_onnx(graph, feeds, output_names(model, final))
