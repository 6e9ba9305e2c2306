"""What the rewrite tests share: parse ONNX text, run a rewrite the way a build does (verified,
with the idempotence check on), and run graphs under onnxruntime on seeded inputs.

Imported as `from rewrite_testing import ...` (pytest puts this folder on sys.path).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx.parser
import onnxruntime as ort
from onnx import helper

from gancc.passes import registry
from gancc.passes.base import PassResult
from gancc.passes.manager import VerifyOptions, run_pipeline


def parse(text: str) -> onnx.ModelProto:
    model = onnx.parser.parse_model(text)
    onnx.checker.check_model(model, full_check=True)
    return model


def copy(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def rewrite(model: onnx.ModelProto, name: str, **options) -> PassResult:
    """Run rewrite `name` on `model` in place, as a build would, plus the idempotence check."""
    (result,) = run_pipeline(model, [registry.make_pass(name, options)],
                             VerifyOptions(idempotent=True))
    return result


def run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    return session.run(None, {k: v for k, v in feeds.items() if k in names})


def random_feeds(model: onnx.ModelProto, seed: int = 0, batch: int = 1) -> dict[str, np.ndarray]:
    """Seeded standard-normal values for every graph input that is not an initializer;
    symbolic dims take `batch`."""
    rng = np.random.default_rng(seed)
    inits = {t.name for t in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tensor = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else batch for d in tensor.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(tensor.elem_type)
        feeds[vi.name] = rng.standard_normal(dims).astype(dtype)
    return feeds


def max_diff(a: onnx.ModelProto, b: onnx.ModelProto, seed: int = 0) -> float:
    """Largest absolute difference over all outputs of `a` and `b` on the same seeded inputs
    (`b`'s inputs; outputs compared in float64)."""
    feeds = random_feeds(b, seed)
    return max(float(np.abs(x.astype(np.float64) - y.astype(np.float64)).max())
               for x, y in zip(run(a, feeds), run(b, feeds)))


def op_types(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]
