"""Weight-free copies of graphs: the graph without its weights' bytes.

A build looks at its graph many times in ways that never read a weight's values, and a
copy with the weights would hold them twice (1.4 GB more for a full-size Pix2pixHD) or
serialise them for nothing. Two kinds of weight-free copy serve the two kinds of reader:

- `weight_free_copy`, for diffs and the text form (gancc.stages.dump keeps the stage before
  as one): each initializer of WEIGHT_FREE_MIN_BYTES or more keeps its name, dtype and dims,
  and in place of its bytes holds the content digest the text form prints (`tensor_digest`),
  marked by WEIGHT_FREE_MARK in its doc_string. Two weight-free copies diff exactly as
  their graphs do, and print the same text.
- `weight_free_bytes`, for the checker, shape inference and onnxruntime's loader, which
  judge a graph, not its weights' values: each weight becomes a graph input of its dtype and
  shape instead (`weight_free_inputs` gives the model itself).
"""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
from onnx import helper, numpy_helper

from gancc import dtypes
from gancc.graph.proto import copy_fields, value_bytes

WEIGHT_FREE_MARK = "gancc:content-digest"
# Initializers of this many bytes or more become digests; smaller ones (pads, scales, shapes)
# are kept, since the text form prints their values.
WEIGHT_FREE_MIN_BYTES = 1024

# Float initializers with more elements than this are weights: weight_free_inputs makes them
# graph inputs of the same type and shape. Smaller and integer ones stay constants, since
# shape inference reads them.
_WEIGHT_MIN_ELEMENTS = 1024
_WEIGHT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE,
                 onnx.TensorProto.BFLOAT16}


def is_weight_free(tensor: onnx.TensorProto) -> bool:
    """Whether `tensor` is a digest standing in for a weight (made by weight_free_copy)."""
    return tensor.doc_string == WEIGHT_FREE_MARK


def content_digest(data_type: int, dims, data) -> str:
    """The digest of a tensor's bytes: equal for equal dtype, shape and values."""
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{data_type}:{list(dims)}:".encode())
    h.update(data)
    return h.hexdigest()


def tensor_bytes(tensor: onnx.TensorProto) -> bytes:
    """The tensor's content as bytes, whichever field holds it."""
    if tensor.HasField("raw_data") and tensor.data_location != onnx.TensorProto.EXTERNAL:
        return tensor.raw_data
    try:
        return numpy_helper.to_array(tensor).tobytes()
    except Exception:   # external data not loaded, exotic types: fall back to the proto itself
        copy = onnx.TensorProto()
        copy.CopyFrom(tensor)
        copy.name = ""
        return copy.SerializeToString()


def tensor_digest(tensor: onnx.TensorProto) -> str:
    """A short content digest: equal for equal dtype, shape and values, whatever the name;
    a weight-free stand-in gives the digest it holds."""
    if is_weight_free(tensor):
        return tensor.raw_data.decode()
    return content_digest(tensor.data_type, tensor.dims, tensor_bytes(tensor))


def weight_free_tensor(name: str, data_type: int, dims, digest: str) -> onnx.TensorProto:
    """The stand-in for a weight: its name, dtype and dims, and `digest` for its bytes."""
    tensor = onnx.TensorProto(name=name, data_type=data_type, dims=list(dims),
                              doc_string=WEIGHT_FREE_MARK)
    tensor.raw_data = digest.encode()
    return tensor


def weight_free_from_array(array: np.ndarray, name: str) -> onnx.TensorProto:
    """What weight_free_copy makes of numpy_helper.from_array(array, name) (same arguments),
    without copying a large array's bytes."""
    array = np.ascontiguousarray(array)
    if array.nbytes < WEIGHT_FREE_MIN_BYTES:
        return numpy_helper.from_array(array, name)
    data_type = dtypes.from_numpy(array.dtype)
    return weight_free_tensor(name, data_type, array.shape,
                              content_digest(data_type, array.shape, memoryview(array).cast("B")))


def weight_free_copy(model: onnx.ModelProto,
                     same_as: onnx.ModelProto | None = None) -> onnx.ModelProto:
    """A copy of `model` whose initializers of WEIGHT_FREE_MIN_BYTES or more are digests.

    `same_as`, a weight-free copy of an earlier state of the same graph whose initializers
    have not changed in place since: its digests are reused by name (with dtype and dims)
    instead of hashing the weights again. Between rewrite passes that holds by the rewrite
    rule (docs/rewrites.md: a rewrite adds new initializers, never edits one), which the pass
    manager's rollback relies on too; hashing costs about 1.5 s per GB of weights."""
    known = ({t.name: t for t in same_as.graph.initializer if is_weight_free(t)}
             if same_as else {})
    graph = model.graph
    copy = onnx.ModelProto()
    copy_fields(model, copy, skip={"graph"})
    out = copy.graph
    copy_fields(graph, out, skip={"initializer"})
    for tensor in graph.initializer:
        if is_weight_free(tensor) or (value_bytes(tensor) or 0) < WEIGHT_FREE_MIN_BYTES:
            out.initializer.append(tensor)
            continue
        earlier = known.get(tensor.name)
        if (earlier is not None and earlier.data_type == tensor.data_type
                and earlier.dims == tensor.dims):
            out.initializer.append(earlier)
            continue
        out.initializer.append(weight_free_tensor(
            tensor.name, tensor.data_type, tensor.dims,
            content_digest(tensor.data_type, tensor.dims, tensor_bytes(tensor))))
    return copy


def _weights(graph: onnx.GraphProto) -> set[str]:
    return {t.name for t in graph.initializer
            if t.data_type in _WEIGHT_TYPES and int(np.prod(t.dims)) > _WEIGHT_MIN_ELEMENTS}


def weight_free_inputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` whose weights (large float initializers) are graph inputs of the
    same dtype and shape: what the checker, shape inference and onnxruntime's loader need,
    at the cost of the graph (kilobytes) instead of the weights (up to gigabytes). Small and
    integer initializers (pads, shapes, scales) stay constants, since shape inference reads
    them."""
    return _with_weights_as_inputs(model, _weights(model.graph))


def _with_weights_as_inputs(model: onnx.ModelProto, weights: set[str]) -> onnx.ModelProto:
    graph = model.graph
    weight_free = onnx.ModelProto()
    weight_free.ir_version = model.ir_version
    weight_free.opset_import.extend(model.opset_import)
    weight_free.functions.extend(model.functions)
    out = weight_free.graph
    out.name = graph.name
    out.node.extend(graph.node)
    out.input.extend(graph.input)
    declared = {i.name for i in graph.input}
    for t in graph.initializer:
        if t.name not in weights:
            out.initializer.append(t)
        elif t.name not in declared:
            out.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    out.sparse_initializer.extend(graph.sparse_initializer)
    out.output.extend(graph.output)
    out.value_info.extend(graph.value_info)
    return weight_free


def weight_free_bytes(model: onnx.ModelProto) -> bytes:
    """weight_free_inputs(model), serialised; a model without weights is serialised as is.

    A build verifies after every pass, so this is on the hot path: checker, strict shape
    inference and onnxruntime's loader then cost time and memory in proportion to the graph."""
    weights = _weights(model.graph)
    if not weights:
        return model.SerializeToString()
    return _with_weights_as_inputs(model, weights).SerializeToString()
