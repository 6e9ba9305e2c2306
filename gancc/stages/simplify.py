"""Stage 3: simplify with onnxsim, then make every constant an initializer.

The legacy exporter computes Pad's `pads` through a Constant/Slice/Transpose/Concat chain
(with a dynamic batch axis); onnxsim folds that chain, but leaves the shared constants as
Constant nodes, so they are lifted to initializers afterwards: ATC and the rewrites want
constant pads as initializers.
"""

from __future__ import annotations

import onnx

from gancc.errors import GraphError
from gancc.graph import lift_constants


def simplify(model: onnx.ModelProto, name: str) -> tuple[onnx.ModelProto, int]:
    import onnxsim

    try:
        simplified, ok = onnxsim.simplify(model)
    except Exception as err:  # onnxsim wraps onnxruntime and the optimizer, both raise freely
        raise GraphError(f"onnxsim failed: {type(err).__name__}: {str(err).splitlines()[0]}",
                         model=name, hint="build with the rewrite block only; report the model") from None
    if not ok:
        raise GraphError("onnxsim's check found the simplified graph differs from the export",
                         model=name)
    lifted = lift_constants(simplified)
    simplified = onnx.shape_inference.infer_shapes(simplified)
    return simplified, lifted


def weight_only_reader(model: onnx.ModelProto, weights: set[str]) -> str | None:
    """A node that reads weights and nothing but constants, if any: a computation on the
    weights alone (weight norm, spectral norm), which onnxsim folds only when it can see the
    weights' values. Returns the node's name (or first output)."""
    constants = weights | {t.name for t in model.graph.initializer}
    for node in model.graph.node:
        inputs = [name for name in node.input if name]
        if inputs and any(name in weights for name in inputs) and all(name in constants for name in inputs):
            return node.name or node.output[0]
    return None
