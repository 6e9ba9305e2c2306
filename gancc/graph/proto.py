"""Protobuf helpers that never touch a weight's bytes: copying a message field by field
(leaving chosen fields out), and a tensor's size from its dims.

The writer (gancc.onnx_io), the weight-free copies (gancc.graph.weightfree) and the fp16
foresight build models around their weights with these, where CopyFrom or ByteSize would
copy or serialise every weight.
"""

from __future__ import annotations

import onnx

from gancc import dtypes


def value_bytes(tensor: onnx.TensorProto) -> int | None:
    """Bytes of the tensor's values, from its dims and dtype (reading raw_data would copy
    them); None for a dtype without a fixed item size (strings, unknown types)."""
    size = dtypes.itemsize(tensor.data_type)
    if size is None:
        return None
    count = 1
    for dim in tensor.dims:
        count *= dim
    return count * size


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
