"""What a graph says about its tensors' types: the one place that reads ValueInfo types.

`elem_types` is what the graph declares (inputs, outputs, value_info, initializers);
`inferred_elem_types` adds what ONNX shape inference finds, run on the weight-free model
(gancc.graph.weightfree) so that it costs the graph, not the weights.
"""

from __future__ import annotations

import onnx

from gancc.graph.weightfree import weight_free_bytes

Dims = list  # list[int | str | None]: a known size, a symbolic name, or unknown


def value_dims(value: onnx.ValueInfoProto) -> Dims | None:
    """The dims of a graph input, output or value_info: ints where known, the symbolic name
    where there is one, else None; None for the whole when the shape is unknown."""
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in tensor.shape.dim]


def elem_types(graph: onnx.GraphProto) -> dict[str, int]:
    """tensor name -> ONNX element type, as the graph declares it: value_info, inputs and
    outputs with a set type, then initializers (their data type is the last word)."""
    types: dict[str, int] = {}
    for value in (*graph.value_info, *graph.input, *graph.output):
        if value.type.tensor_type.elem_type:
            types[value.name] = value.type.tensor_type.elem_type
    for tensor in graph.initializer:
        types[tensor.name] = tensor.data_type
    return types


def inferred_elem_types(model: onnx.ModelProto) -> dict[str, int]:
    """elem_types of `model`, completed by shape inference for the tensors it does not
    declare. Raises what shape inference raises: the caller decides what a graph inference
    cannot handle means (no types at all, or the declared ones)."""
    inferred = onnx.shape_inference.infer_shapes(weight_free_bytes(model)).graph
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.value_info
             if v.type.tensor_type.elem_type}
    types.update(elem_types(model.graph))
    return types
