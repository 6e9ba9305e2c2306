"""The one table of element types: names as specs and rules write them, ONNX's enum, numpy.

A spec's `input` statement writes numpy's spellings (`float32`, `uint8`), a rule may also
write onnx's own lower-case names (`float`, `double`, `bfloat16`), the text form of a graph
prints numpy's name where numpy has the type, and the data paths need numpy dtypes. All of
them go through this module, so a spelling accepted in one place means the same everywhere.

Imports only numpy and onnx: the spec front end, the graph core and the stages all use it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import onnx
from onnx import helper

# name -> ONNX enum: onnx's names in lower case (`float`, `float16`, `bfloat16`, ...) plus
# numpy's spellings of the two onnx names numpy spells otherwise
ONNX_TYPES: dict[str, int] = {
    name.lower(): value for name, value in onnx.TensorProto.DataType.items()
    if name != "UNDEFINED"
}
ONNX_TYPES.update({"float32": onnx.TensorProto.FLOAT, "float64": onnx.TensorProto.DOUBLE})

# ONNX enum -> the name written back (a rule's error messages, `dtype == ...` explanations):
# numpy's spelling where onnx's differs, as a spec author writes it
_NAMES: dict[int, str] = {value: name for name, value in ONNX_TYPES.items()}
_NAMES[onnx.TensorProto.FLOAT] = "float32"
_NAMES[onnx.TensorProto.DOUBLE] = "float64"

# the dtypes a spec's `input` statement accepts (the ONNX graph's input types gancc feeds)
INPUT_DTYPES = ("float32", "float16", "int32", "int64", "uint8", "int8", "bool")


def type_name(elem_type: int) -> str:
    """The name a spec writes for an ONNX enum: `float32` for FLOAT, `bfloat16` for BFLOAT16."""
    return _NAMES.get(elem_type) or onnx.TensorProto.DataType.Name(elem_type).lower()


def printed_name(elem_type: int) -> str:
    """The name the text form and diffs print: numpy's where numpy has the type ('float32'),
    else onnx's in lower case; '?' for an unset type."""
    if not elem_type:
        return "?"
    try:
        return str(np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)))
    except Exception:   # bfloat16, float8 and friends have no numpy dtype without ml_dtypes
        return onnx.TensorProto.DataType.Name(elem_type).lower()


def numpy_dtype(dtype: str | int) -> np.dtype:
    """The numpy dtype of a dtype name or ONNX enum; KeyError for a name or type numpy lacks."""
    elem_type = ONNX_TYPES[dtype] if isinstance(dtype, str) else dtype
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))


def from_numpy(dtype) -> int:
    """The ONNX enum of a numpy dtype (or anything np.dtype takes)."""
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


@lru_cache(maxsize=None)    # asked once per initializer of every graph saved or copied
def itemsize(elem_type: int) -> int | None:
    """Bytes per element of an ONNX type; None for one without a fixed size (strings,
    unknown or unset types)."""
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, TypeError, ValueError):
        return None
    return None if dtype.hasobject else dtype.itemsize
