"""Stage 2: export the PyTorch generator to ONNX with the legacy TorchScript exporter.

`dynamo=False` is the exporter that targets opset 11 (what ATC-era recipes use). The batch
axis is dynamic when the spec's first dimension is symbolic; input and output names are the
spec's. The exporter's warnings are collected for the report instead of flooding the
terminal.
"""

from __future__ import annotations

import io
import warnings

import onnx

from gancc.errors import GanccError
from gancc.spec.model import ModelSpec

_TORCH_DTYPES = {"float32": "float32", "float16": "float16", "int32": "int32", "int64": "int64",
                 "uint8": "uint8", "int8": "int8", "bool": "bool"}


def export(module, model: ModelSpec) -> tuple[onnx.ModelProto, list[str]]:
    import torch

    dummies = []
    for inp in model.inputs:
        shape = inp.concrete_shape(1)
        dtype = getattr(torch, _TORCH_DTYPES[inp.dtype])
        dummies.append(torch.zeros(shape, dtype=dtype) if not dtype.is_floating_point
                       else torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(dtype))
    dynamic_axes = {}
    for inp in model.inputs:
        if inp.batch_dim:
            dynamic_axes[inp.name] = {0: inp.batch_dim}
    if dynamic_axes:
        batch_name = next(iter(dynamic_axes.values()))[0]
        for out in model.outputs:
            dynamic_axes[out.name] = {0: batch_name}
    buffer = io.BytesIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with torch.no_grad():
                torch.onnx.export(module, tuple(dummies), buffer, opset_version=model.opset,
                                  input_names=model.input_names, output_names=model.output_names,
                                  dynamic_axes=dynamic_axes or None, do_constant_folding=True,
                                  dynamo=False)
        except Exception as err:  # the exporter raises many types; all mean "cannot export"
            raise GanccError(f"model '{model.name}': ONNX export failed: {type(err).__name__}: {err}",
                             "check the input shapes and the opset in the spec") from None
    notes = sorted({str(w.message).splitlines()[0] for w in caught})
    return onnx.load_from_string(buffer.getvalue()), notes
