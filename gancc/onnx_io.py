"""Writing ONNX models: one piece at a time, and past protobuf's 2 GB limit.

`model.SerializeToString()` builds the whole file in memory, a second copy of every weight
(1.4 GB at the peak of a full-size Pix2pixHD build). `write_model` writes the same bytes one
field, and one initializer, at a time (see its docstring).

A ModelProto cannot be serialised past 2 GiB either. `save_onnx` writes an ordinary single
file when the model is comfortably below that, and otherwise puts the large initializers'
bytes into `<name>.onnx.data` beside it (ONNX external data: one file, a location relative
to the .onnx), which onnx.load, onnxruntime and ATC read from the .onnx's folder. The
in-memory model is never changed: it keeps its weights. Both files are written under
temporary names and renamed into place.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import onnx

from gancc.graph.proto import copy_field, copy_fields, is_repeated, value_bytes

# Stay well below 2 GiB: the saved proto is a little larger than the tensors it holds.
EXTERNAL_DATA_THRESHOLD = int(1.8 * 2**30)
_MIN_EXTERNAL_TENSOR = 1024        # bytes; smaller tensors stay inline
# Past this many bytes of weights a model is large: the build avoids holding its weights
# twice (no unmodified export kept, files instead of bytes for onnxruntime, ...).
LARGE_MODEL_BYTES = 256 * 2**20
_ALIGN = 4096


def estimated_size(model: onnx.ModelProto) -> int:
    """About the serialized size: the weights' bytes from their dims, plus a little per node.

    model.ByteSize() would serialize everything (0.1 s per 45 MB) just to answer "is this
    near 2 GB?"; the weights dominate any model where the question matters.
    """
    total = 0
    for tensor in model.graph.initializer:
        size = value_bytes(tensor)
        # strings and unknown types: ask protobuf
        total += tensor.ByteSize() if size is None else size + len(tensor.name) + 16
    return total + 128 * len(model.graph.node)


def is_large(model: onnx.ModelProto) -> bool:
    """Whether gancc should avoid holding a second copy of this model's weights."""
    return estimated_size(model) > LARGE_MODEL_BYTES


def needs_external_data(model: onnx.ModelProto, threshold: int | None = None) -> bool:
    return estimated_size(model) > (EXTERNAL_DATA_THRESHOLD if threshold is None else threshold)


def save_onnx(model: onnx.ModelProto, path: str | Path, threshold: int | None = None) -> list[Path]:
    """Save `model` to `path` (plus `<path>.data` when it is too large), atomically: both files
    are written under temporary names and renamed into place. Returns the files.

    Every ONNX file gancc writes goes through here or write_onnx: onnx.save cannot write a
    model past 2 GB, and would serialise the whole model in memory first."""
    path = Path(path)
    data_path = _data_path(path)
    external = needs_external_data(model, threshold)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp_data = path.with_name(f".{data_path.name}.tmp")
    try:
        _write_files(model, tmp, tmp_data if external else None, data_path.name)
        if external:
            os.replace(tmp_data, data_path)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        tmp_data.unlink(missing_ok=True)
    return [path, data_path] if external else [path]


def write_onnx(model: onnx.ModelProto, path: str | Path, threshold: int | None = None
               ) -> list[Path]:
    """save_onnx, not atomically: for callers that write into a folder of their own and
    rename that (the build cache, a temporary folder)."""
    path = Path(path)
    data_path = _data_path(path)
    external = needs_external_data(model, threshold)
    _write_files(model, path, data_path if external else None, data_path.name)
    return [path, data_path] if external else [path]


def _data_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.data")


def _write_files(model: onnx.ModelProto, path: Path, data_path: Path | None,
                 location: str) -> None:
    """Write `model` to `path`, its large initializers to `data_path` when given, which the
    .onnx then names as `location` (the data file's final name, beside the .onnx)."""
    with open(path, "wb") as f:
        if data_path is None:
            write_model(model, f)
            return
        with open(data_path, "wb") as data:
            write_model(model, f, data, location)


def write_model(model: onnx.ModelProto, f: BinaryIO, data: BinaryIO | None = None,
                location: str = "") -> None:
    """Serialise `model` into `f` one piece at a time, without changing it.

    `model.SerializeToString()` builds the whole file in memory: a second copy of every
    weight. Protobuf's wire format is a concatenation of fields, and a repeated field's
    elements may be written one by one, so the file is written as the model's fields in
    field-number order (what SerializeToString does), the graph's initializers one at a time:
    the bytes are those of SerializeToString, with one tensor in memory at once.

    With `data`, every initializer of _MIN_EXTERNAL_TENSOR bytes or more is written to it
    instead (4 KiB aligned), and the .onnx holds a reference: ONNX external data, `location`
    relative to the .onnx's folder, read by onnx.load, onnxruntime and ATC."""
    graph_field = model.DESCRIPTOR.fields_by_name["graph"]
    for field, pieces in _pieces(model, {"graph"}):
        if field is graph_field:
            _write_graph(model.graph, graph_field.number, f, data, location)
        else:
            for piece in pieces:
                f.write(piece)


def _write_graph(graph: onnx.GraphProto, number: int, f: BinaryIO, data: BinaryIO | None,
                 location: str) -> None:
    initializer = graph.DESCRIPTOR.fields_by_name["initializer"]
    tag = _varint(initializer.number << 3 | 2)
    # with external data: the weights go to `data` first, and the .onnx holds stand-ins
    external = _write_external(graph, data, location) if data is not None else {}
    parts = _pieces(graph, {"initializer"})
    # the graph's length comes before it: each initializer is serialised twice (for its
    # size, then its bytes) rather than held
    length = sum(len(piece) for _, pieces in parts for piece in pieces)
    for i, tensor in enumerate(graph.initializer):
        size = external.get(i, tensor).ByteSize()
        length += len(tag) + len(_varint(size)) + size
    f.write(_varint(number << 3 | 2) + _varint(length))
    for field, pieces in parts:
        if field is not initializer:
            for piece in pieces:
                f.write(piece)
            continue
        for i, tensor in enumerate(graph.initializer):
            body = external.get(i, tensor).SerializeToString()
            f.write(tag + _varint(len(body)) + body)


def _write_external(graph: onnx.GraphProto, data: BinaryIO, location: str
                    ) -> dict[int, onnx.TensorProto]:
    """Write the large initializers' bytes to `data`; their stand-ins, by initializer index."""
    stand_ins = {}
    for i, tensor in enumerate(graph.initializer):
        if not tensor.HasField("raw_data") or (value_bytes(tensor) or 0) < _MIN_EXTERNAL_TENSOR:
            continue
        offset = data.tell()
        if offset % _ALIGN:
            data.write(b"\0" * (_ALIGN - offset % _ALIGN))
            offset = data.tell()
        raw = tensor.raw_data
        data.write(raw)
        stand_in = onnx.TensorProto()
        copy_fields(tensor, stand_in, skip={"raw_data"})
        stand_in.data_location = onnx.TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", str(offset)),
                           ("length", str(len(raw)))):
            entry = stand_in.external_data.add()
            entry.key, entry.value = key, value
        stand_ins[i] = stand_in
    return stand_ins


def _pieces(message, streamed: set[str]) -> list[tuple[object, list[bytes]]]:
    """The message's set fields in field-number order, each with its serialised bytes (tag
    included), except the `streamed` ones, whose bytes the caller writes itself."""
    out = []
    for field in sorted(message.DESCRIPTOR.fields, key=lambda d: d.number):
        if field.name in streamed:
            out.append((field, []))
            continue
        value = getattr(message, field.name)
        if (len(value) == 0) if is_repeated(field) else not message.HasField(field.name):
            continue
        alone = type(message)()
        copy_field(alone, field, value)
        out.append((field, [alone.SerializeToString()]))
    return out


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
