"""Saving ONNX models that may exceed protobuf's 2 GB limit.

A ModelProto cannot be serialised past 2 GiB. `save_onnx` writes an ordinary single file
when the model is comfortably below that, and otherwise moves the large initializers into
`<name>.onnx.data` beside it (ONNX external data: one file, a location relative to the
.onnx), which onnx.load, onnxruntime and ATC read from the .onnx's folder.

Unlike `onnx.save(..., save_as_external_data=True)`, this neither copies the model nor
leaves it stripped of its weights: each tensor's bytes are written out, the proto is saved
without them, and the bytes are put back. Both files are written under temporary names and
renamed into place.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx

# Stay well below 2 GiB: the saved proto is a little larger than the tensors it holds.
EXTERNAL_DATA_THRESHOLD = int(1.8 * 2**30)
_MIN_EXTERNAL_TENSOR = 1024        # bytes; smaller tensors stay inline
_ALIGN = 4096


def estimated_size(model: onnx.ModelProto) -> int:
    """About the serialized size: the weights' bytes from their dims, plus a little per node.

    model.ByteSize() would serialize everything (0.1 s per 45 MB) just to answer "is this
    near 2 GB?"; the weights dominate any model where the question matters.
    """
    total = 0
    for tensor in model.graph.initializer:
        try:
            itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
        except (KeyError, TypeError, ValueError):   # strings and unknown types: ask protobuf
            total += tensor.ByteSize()
            continue
        count = 1
        for dim in tensor.dims:
            count *= dim
        total += count * itemsize + len(tensor.name) + 16
    return total + 128 * len(model.graph.node)


def needs_external_data(model: onnx.ModelProto, threshold: int | None = None) -> bool:
    return estimated_size(model) > (EXTERNAL_DATA_THRESHOLD if threshold is None else threshold)


def save_onnx(model: onnx.ModelProto, path: str | Path, threshold: int | None = None) -> list[Path]:
    """Save `model` to `path` (plus `<path>.data` when it is too large); returns the files."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    if not needs_external_data(model, threshold):
        onnx.save(model, str(tmp))
        os.replace(tmp, path)
        return [path]
    data_path = path.with_name(f"{path.name}.data")
    tmp_data = path.with_name(f".{data_path.name}.tmp")
    moved: list[tuple[onnx.TensorProto, bytes]] = []
    try:
        with open(tmp_data, "wb") as f:
            for tensor in model.graph.initializer:
                if not tensor.HasField("raw_data") or len(tensor.raw_data) < _MIN_EXTERNAL_TENSOR:
                    continue
                raw = tensor.raw_data
                offset = f.tell()
                if offset % _ALIGN:
                    f.write(b"\0" * (_ALIGN - offset % _ALIGN))
                    offset = f.tell()
                f.write(raw)
                tensor.ClearField("raw_data")
                tensor.data_location = onnx.TensorProto.EXTERNAL
                for key, value in (("location", data_path.name), ("offset", str(offset)),
                                   ("length", str(len(raw)))):
                    entry = tensor.external_data.add()
                    entry.key, entry.value = key, value
                moved.append((tensor, raw))
        onnx.save(model, str(tmp))
        os.replace(tmp_data, data_path)
        os.replace(tmp, path)
    finally:
        for tensor, raw in moved:          # the caller's model keeps its weights
            del tensor.external_data[:]
            tensor.ClearField("data_location")
            tensor.raw_data = raw
        tmp.unlink(missing_ok=True)
        tmp_data.unlink(missing_ok=True)
    return [path, data_path]
