"""conv-transpose-kernel-shape: ConvTranspose without kernel_shape gets the weight's spatial
dims (what ATC's plugin requires); exact, so the outputs are compared under onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from gancc.passes import registry
from gancc.passes.manager import VerifyOptions, run_pipeline
from gancc.stages.lint import lint

NAME = "conv-transpose-kernel-shape"


def model(with_kernel_shape: bool = False, weight_input: bool = False) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 10, 10])
    attrs = dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])
    if with_kernel_shape:
        attrs["kernel_shape"] = [3, 3]
    w = np.random.default_rng(0).normal(size=(4, 2, 3, 3)).astype(np.float32)
    inputs = [x]
    inits = []
    if weight_input:
        inputs.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 2, 3, 3]))
    else:
        inits.append(numpy_helper.from_array(w, "w"))
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up", **attrs)
    return helper.make_model(helper.make_graph([node], "g", inputs, [y], inits),
                             opset_imports=[helper.make_opsetid("", 11)])


def run_pass(m: onnx.ModelProto):
    (result,) = run_pipeline(m, [registry.make_pass(NAME, {})], VerifyOptions(idempotent=True))
    return result


def test_writes_kernel_shape_and_computes_the_same():
    original = model()
    assert [f.code for f in lint(original)] == ["plugin"]
    rewritten = model()
    result = run_pass(rewritten)
    assert result.matches == 1
    attrs = {a.name: list(a.ints) for a in rewritten.graph.node[0].attribute}
    assert attrs["kernel_shape"] == [3, 3]
    assert lint(rewritten) == []
    x = np.random.default_rng(1).normal(size=(1, 4, 5, 5)).astype(np.float32)
    a = ort.InferenceSession(original.SerializeToString()).run(None, {"x": x})[0]
    b = ort.InferenceSession(rewritten.SerializeToString()).run(None, {"x": x})[0]
    assert a.shape == (1, 2, 10, 10)
    np.testing.assert_array_equal(a, b)


def test_declines_when_set_or_not_constant():
    for m, reason in ((model(with_kernel_shape=True), "already set"),
                      (model(weight_input=True), "not a constant")):
        result = run_pass(m)
        assert result.matches == 0
        assert any(reason in d["reason"] if isinstance(d, dict) else reason in str(d)
                   for d in result.declined)
