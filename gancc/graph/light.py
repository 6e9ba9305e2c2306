"""Weight-free stand-ins for graphs: every large initializer replaced by its content digest,
or by a graph input of its type and shape.

A build keeps the graph of the stage before for its per-stage diffs (gancc.stages.dump).
A full copy would hold the weights twice (1.4 GB more for a full-size Pix2pixHD), and the
diff only asks of a weight whether it is the same as before. A light copy keeps each large
initializer's name, dtype and dims, and in place of its bytes the digest that the text form
prints (gancc.graph.text.tensor_digest), marked by LIGHT_MARK in its doc_string. Two light
copies diff exactly as their graphs do, and print the same text.

A skeleton (`skeleton_bytes`) is for the checker, shape inference and onnxruntime's loader,
which judge a graph, not its weights' values: each weight becomes a graph input instead.
"""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
from onnx import helper, numpy_helper

LIGHT_MARK = "gancc:content-digest"
# Initializers of this many bytes or more become digests; smaller ones (pads, scales, shapes)
# are kept, since the text form prints their values.
LIGHT_MIN_BYTES = 1024


def is_light(tensor: onnx.TensorProto) -> bool:
    return tensor.doc_string == LIGHT_MARK


def content_digest(data_type: int, dims, data) -> str:
    """The digest of a tensor's bytes, as gancc.graph.text.tensor_digest computes it."""
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{data_type}:{list(dims)}:".encode())
    h.update(data)
    return h.hexdigest()


def light_tensor(name: str, data_type: int, dims, digest: str) -> onnx.TensorProto:
    tensor = onnx.TensorProto(name=name, data_type=data_type, dims=list(dims),
                              doc_string=LIGHT_MARK)
    tensor.raw_data = digest.encode()
    return tensor


def light_from_array(array: np.ndarray, name: str) -> onnx.TensorProto:
    """What light_copy makes of numpy_helper.from_array(array, name) (same arguments),
    without copying a large array's bytes."""
    array = np.ascontiguousarray(array)
    if array.nbytes < LIGHT_MIN_BYTES:
        return numpy_helper.from_array(array, name)
    data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
    return light_tensor(name, data_type, array.shape,
                        content_digest(data_type, array.shape, memoryview(array).cast("B")))


def light_copy(model: onnx.ModelProto, same_as: onnx.ModelProto | None = None) -> onnx.ModelProto:
    """A copy of `model` whose initializers of LIGHT_MIN_BYTES or more are digests.

    `same_as`, a light copy of an earlier state of the same graph whose initializers have
    not changed in place since: its digests are reused by name (with dtype and dims) instead
    of hashing the weights again. Between rewrite passes that holds by the rewrite rule
    (docs/rewrites.md: a rewrite adds new initializers, never edits one), which the pass
    manager's rollback relies on too; hashing costs about 1.5 s per GB of weights."""
    from gancc.graph.text import tensor_bytes

    known = {t.name: t for t in same_as.graph.initializer if is_light(t)} if same_as else {}

    graph = model.graph
    light = onnx.ModelProto()
    copy_fields(model, light, skip={"graph"})
    out = light.graph
    copy_fields(graph, out, skip={"initializer"})
    for tensor in graph.initializer:
        if is_light(tensor) or (value_bytes(tensor) or 0) < LIGHT_MIN_BYTES:
            out.initializer.append(tensor)
            continue
        earlier = known.get(tensor.name)
        if (earlier is not None and earlier.data_type == tensor.data_type
                and earlier.dims == tensor.dims):
            out.initializer.append(earlier)
            continue
        out.initializer.append(light_tensor(tensor.name, tensor.data_type, tensor.dims,
                                            content_digest(tensor.data_type, tensor.dims,
                                                           tensor_bytes(tensor))))
    return light


def value_bytes(tensor: onnx.TensorProto) -> int | None:
    """Bytes of the tensor's values, from its dims and dtype (reading raw_data would copy
    them); None for a dtype without a fixed item size (strings, unknown types)."""
    try:
        itemsize = helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    except (KeyError, TypeError, ValueError):
        return None
    count = 1
    for dim in tensor.dims:
        count *= dim
    return count * itemsize


# Float initializers with more elements than this are weights: a skeleton has them as graph
# inputs of the same type and shape.
_WEIGHT_MIN_ELEMENTS = 1024
_WEIGHT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE,
                 onnx.TensorProto.BFLOAT16}


def skeleton_bytes(model: onnx.ModelProto) -> bytes:
    """`model`, serialised, with its weights (large float initializers) turned into graph
    inputs of the same dtype and shape.

    Checker, strict shape inference and onnxruntime's loader judge the graph, not the values
    of its weights, so they then cost time and memory in proportion to the graph (kilobytes)
    instead of the weights (up to gigabytes): a build verifies after every pass. Small and
    integer initializers (pads, shapes, scales) stay constants, since shape inference reads
    them."""
    graph = model.graph
    weights = {t.name for t in graph.initializer
               if t.data_type in _WEIGHT_TYPES and int(np.prod(t.dims)) > _WEIGHT_MIN_ELEMENTS}
    if not weights:
        return model.SerializeToString()
    skeleton = onnx.ModelProto()
    skeleton.ir_version = model.ir_version
    skeleton.opset_import.extend(model.opset_import)
    skeleton.functions.extend(model.functions)
    out = skeleton.graph
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
    return skeleton.SerializeToString()


def copy_fields(source, target, skip: set[str] = frozenset()) -> None:
    """Copy every set field of protobuf message `source` into `target`, but those in `skip`:
    a copy without its weights, where CopyFrom would copy them."""
    for field, value in source.ListFields():
        if field.name not in skip:
            copy_field(target, field, value)


def copy_field(target, field, value) -> None:
    """Set `field` of message `target` to `value` (extend it, for a repeated field)."""
    if is_repeated(field):
        getattr(target, field.name).extend(value)
    elif field.message_type is not None:
        getattr(target, field.name).CopyFrom(value)
    else:
        setattr(target, field.name, value)


def is_repeated(field) -> bool:
    # protobuf 6 added FieldDescriptor.is_repeated; protobuf 7 removed .label
    if hasattr(field, "is_repeated"):
        return field.is_repeated
    return field.label == field.LABEL_REPEATED
