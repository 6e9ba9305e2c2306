"""gancc.dtypes: the one dtype table gives every caller the spelling it had before."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from gancc import dtypes

T = onnx.TensorProto


def test_names_a_spec_or_rule_writes_map_to_onnx_types():
    assert dtypes.ONNX_TYPES["float32"] == dtypes.ONNX_TYPES["float"] == T.FLOAT
    assert dtypes.ONNX_TYPES["float64"] == dtypes.ONNX_TYPES["double"] == T.DOUBLE
    assert dtypes.ONNX_TYPES["bfloat16"] == T.BFLOAT16
    assert "undefined" not in dtypes.ONNX_TYPES
    assert all(name in dtypes.ONNX_TYPES for name in dtypes.INPUT_DTYPES)


def test_names_written_back_and_printed():
    assert dtypes.type_name(T.FLOAT) == "float32"
    assert dtypes.type_name(T.DOUBLE) == "float64"
    assert dtypes.type_name(T.INT64) == "int64"
    assert dtypes.type_name(T.BFLOAT16) == "bfloat16"
    assert dtypes.printed_name(T.FLOAT16) == "float16"
    assert dtypes.printed_name(T.BOOL) == "bool"
    assert dtypes.printed_name(0) == "?"                      # an unset type


def test_numpy_dtypes_of_the_input_names_and_back():
    expected = [np.float32, np.float16, np.int32, np.int64, np.uint8, np.int8, np.bool_]
    assert [dtypes.numpy_dtype(n) for n in dtypes.INPUT_DTYPES] == [np.dtype(e) for e in expected]
    assert dtypes.numpy_dtype(T.INT8) == np.dtype(np.int8)
    assert dtypes.from_numpy(np.float16) == T.FLOAT16
    with pytest.raises(KeyError):
        dtypes.numpy_dtype("float99")


def test_item_sizes_for_tensor_sizes():
    assert dtypes.itemsize(T.FLOAT) == 4 and dtypes.itemsize(T.INT64) == 8
    assert dtypes.itemsize(T.STRING) is None                 # no fixed size
    assert dtypes.itemsize(0) is None
