"""A readable, weight-free text form of an ONNX graph, for IR dumps and text diffs.

`onnx.printer` writes every initializer's values inline, so a generator's text form runs to
megabytes and a diff between two passes drowns in numbers. This printer writes one line per
graph input, output, initializer and node, in graph order:

    input   img: float32[N,3,64,64]
    init    model.1.weight: float32[8,3,7,7] #3f2a9c01
    init    pads_0: int64[8] = [0, 0, 3, 3, 0, 0, 3, 3]
    node    /model/model.0/Pad: %/model/model.0/Pad_output_0 = Pad(%img, %pads_0) {mode="reflect"}  @reflect-pad-to-constant

Large initializers appear as dtype, shape and a short content digest (so a changed weight
still shows as a changed line); small integer or scalar ones show their values. The
`@name` suffix is the node's provenance tag (gancc.graph.PROVENANCE_KEY). The format is
stable: two graphs that differ only in weights' storage order print the same initializer
lines in the same order as their graphs list them.
"""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
from onnx import helper, numpy_helper

from gancc import dtypes
from gancc.graph import provenance
from gancc.graph.types import value_dims
from gancc.graph.weightfree import tensor_digest

_INLINE_MAX = 16            # initializers up to this many elements print their values
_LIST_MAX = 16              # attribute lists longer than this are abbreviated


def value_type(value: onnx.ValueInfoProto) -> tuple[str, list[str | int] | None]:
    """(dtype name, shape) of a graph input or output; shape None when unknown, '?' for a
    dimension with neither a size nor a name."""
    dims = value_dims(value)
    shown = None if dims is None else ["?" if d is None else d for d in dims]
    return dtypes.printed_name(value.type.tensor_type.elem_type), shown


def format_type(dtype: str, shape: list | tuple | None) -> str:
    return f"{dtype}[{','.join(str(d) for d in shape)}]" if shape is not None else f"{dtype}[?]"


def _digest(*messages) -> str:
    h = hashlib.blake2b(digest_size=8)
    for m in messages:
        h.update(m.SerializeToString(deterministic=True))
    return h.hexdigest()


def format_tensor(tensor: onnx.TensorProto, digest: str | None = None) -> str:
    """`int64[8] = [0, 0, 3, 3, ...]` for a small tensor, `float32[8,3,7,7] #digest` otherwise."""
    kind = format_type(dtypes.printed_name(tensor.data_type), list(tensor.dims))
    count = int(np.prod(tensor.dims)) if tensor.dims else 1
    if count <= _INLINE_MAX:
        try:
            values = numpy_helper.to_array(tensor)
            return f"{kind} = {np.array2string(values.ravel(), separator=', ', threshold=_INLINE_MAX)}"
        except Exception:
            pass
    return f"{kind} #{digest or tensor_digest(tensor)}"


def format_attribute_value(attr: onnx.AttributeProto) -> str:
    """An attribute's value as it is written in the text form and in diffs."""
    kind = attr.type
    if kind == onnx.AttributeProto.TENSOR:
        return format_tensor(attr.t)
    if kind == onnx.AttributeProto.GRAPH:      # a body (If/Loop/Scan): size and content digest
        return f"<graph {attr.g.name or ''} with {len(attr.g.node)} nodes #{_digest(attr.g)}>"
    if kind == onnx.AttributeProto.GRAPHS:
        return f"<{len(attr.graphs)} graphs #{_digest(*attr.graphs)}>"
    value = helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return '"' + value.decode("utf-8", "replace") + '"'
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        items = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value]
        shown = ", ".join(f"{v:g}" if isinstance(v, float) else repr(v) if isinstance(v, str)
                          else str(v) for v in items[:_LIST_MAX])
        more = f", ... ({len(items)} items)" if len(items) > _LIST_MAX else ""
        return f"[{shown}{more}]"
    return str(value)


def format_attributes(node: onnx.NodeProto) -> str:
    if not node.attribute:
        return ""
    parts = [f"{a.name}={format_attribute_value(a)}" for a in sorted(node.attribute, key=lambda a: a.name)]
    return " {" + ", ".join(parts) + "}"


def format_node(node: onnx.NodeProto) -> str:
    outs = ", ".join(f"%{o}" if o else "_" for o in node.output)
    ins = ", ".join(f"%{i}" if i else "_" for i in node.input)
    op = f"{node.domain}.{node.op_type}" if node.domain and node.domain != "ai.onnx" else node.op_type
    line = f"{node.name or '(unnamed)'}: {outs} = {op}({ins}){format_attributes(node)}"
    tags = provenance(node)
    if tags:
        line += "  @" + ",".join(tags)
    return line


def to_text(model: onnx.ModelProto) -> str:
    """The whole graph, one line per input, output, initializer and node; no weight values."""
    graph = model.graph
    opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)
    lines = [f"graph {graph.name or '(unnamed)'} (ir {model.ir_version}; opset {opsets})"]
    inits = {t.name for t in graph.initializer}
    for value in graph.input:
        if value.name not in inits:
            lines.append(f"input   {value.name}: {format_type(*value_type(value))}")
    for value in graph.output:
        lines.append(f"output  {value.name}: {format_type(*value_type(value))}")
    for tensor in graph.initializer:
        lines.append(f"init    {tensor.name}: {format_tensor(tensor)}")
    for node in graph.node:
        lines.append(f"node    {format_node(node)}")
    return "\n".join(lines) + "\n"
