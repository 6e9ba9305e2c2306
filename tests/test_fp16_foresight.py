"""fp16 foresight: the final graph run in float16 on the CPU, next to the fp32 figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from gancc.cli import main
from gancc.spec import parse_text
from gancc.stages.predict import fp16_wanted, to_fp16


def onnx_spec(tmp_path: Path, nodes, inits, atc_extra: str = "", validate_extra: str = "") -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 8, 8])
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 11)])
    onnx.save(model, tmp_path / "g.onnx")
    spec = tmp_path / "g.gan"
    spec.write_text('model g {\n    source onnx "g.onnx"\n    input x: float32[N, 3, 8, 8] batch 1\n'
                    f'    output y\n    atc {{ soc_version Ascend310P3 {atc_extra} }}\n'
                    f'    validate {{ reference onnx  data x uniform(-1, 1) {validate_extra} }}\n}}\n')
    return spec


def scaled(factor: float):
    """y = (x * factor) / factor: exact in fp32, overflows fp16 when x*factor > 65504."""
    f = numpy_helper.from_array(np.array(factor, np.float32), "f")
    return [helper.make_node("Mul", ["x", "f"], ["m"], name="mul"),
            helper.make_node("Div", ["m", "f"], ["y"], name="div")], [f]


def squared(factor: float):
    """y = sqrt((x*factor)^2) / factor = |x|: fine in fp32, (x*300)^2 overflows fp16's 65504."""
    f = numpy_helper.from_array(np.array(factor, np.float32), "f")
    return [helper.make_node("Mul", ["x", "f"], ["m"], name="mul"),
            helper.make_node("Mul", ["m", "m"], ["p"], name="square"),
            helper.make_node("Sqrt", ["p"], ["q"], name="sqrt"),
            helper.make_node("Div", ["q", "f"], ["y"], name="div")], [f]


def test_fp16_collapse_is_reported_before_the_device(tmp_path: Path, capsys):
    spec = onnx_spec(tmp_path, *squared(300.0))
    assert main(["build", str(spec), "-o", str(tmp_path / "out"), "--no-atc", "--no-cache"]) == 0
    report = json.loads((tmp_path / "out" / "g" / "report.json").read_text())
    fp32 = report["validation"]["final_vs_reference"]["y"]
    fp16 = report["validation"]["fp16"]
    assert fp32["max_abs"] < 1e-6
    assert fp16["ran"] is True and fp16["final_vs_reference"]["y"]["non_finite"] > 0
    err = capsys.readouterr().err
    assert "FP16" in err and "collapses in fp16" in err and "must_keep_origin_dtype" in err


def test_benign_graph_in_fp16_is_close_and_io_stays_fp32(tmp_path: Path):
    nodes, inits = scaled(3.0)
    spec = onnx_spec(tmp_path, nodes, inits, validate_extra="fp16_converter true")
    assert main(["build", str(spec), "-o", str(tmp_path / "out"), "--no-atc", "--no-cache"]) == 0
    fp16 = json.loads((tmp_path / "out" / "g" / "report.json").read_text())["validation"]["fp16"]
    figures = fp16["final_vs_reference"]["y"]
    assert figures["non_finite"] == 0 and 0 < figures["max_abs"] < 2e-3
    converter = fp16["converter"]["final_vs_reference"]["y"]       # onnxconverter-common's graph
    assert converter["non_finite"] == 0 and converter["max_abs"] < 2e-3
    half = to_fp16(onnx.load(str(tmp_path / "out" / "g" / "g.onnx")))
    assert half.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert any(t.data_type == TensorProto.FLOAT16 for t in half.graph.initializer)


def test_converter_second_opinion_runs_only_when_asked(tmp_path: Path):
    spec = onnx_spec(tmp_path, *scaled(3.0))
    assert main(["build", str(spec), "-o", str(tmp_path / "out"), "--no-atc", "--no-cache"]) == 0
    fp16 = json.loads((tmp_path / "out" / "g" / "report.json").read_text())["validation"]["fp16"]
    assert fp16["ran"] is True and fp16["final_vs_reference"]["y"]["non_finite"] == 0
    assert fp16["converter"]["final_vs_reference"] is None
    assert "fp16_converter true" in fp16["converter"]["error"]


def test_when_foresight_runs(tmp_path: Path):
    def model(atc: str = "", validate: str = ""):
        text = ('model g {\n    source onnx "g.onnx"\n    input x: float32[N, 3, 8, 8] batch 1\n'
                f'    output y\n    atc {{ {atc} }}\n    validate {{ {validate} }}\n}}\n')
        return parse_text(text, "t.gan").models[0]

    assert fp16_wanted(model()) is True                                  # ATC default force_fp16
    assert fp16_wanted(model("precision_mode force_fp16")) is True
    assert fp16_wanted(model("precision_mode must_keep_origin_dtype")) is False
    assert fp16_wanted(model("precision_mode force_fp32", "fp16 true")) is True
    assert fp16_wanted(model(), override=False) is False
    spec = onnx_spec(tmp_path, *scaled(2.0), atc_extra="precision_mode force_fp32")
    assert main(["build", str(spec), "-o", str(tmp_path / "out"), "--no-atc", "--no-cache"]) == 0
    report = json.loads((tmp_path / "out" / "g" / "report.json").read_text())
    assert "fp16" not in report["validation"]
    assert main(["build", str(spec), "-o", str(tmp_path / "out"), "--no-atc", "--no-cache",
                 "--fp16-foresight"]) == 0
    report = json.loads((tmp_path / "out" / "g" / "report.json").read_text())
    assert report["validation"]["fp16"]["ran"] is True


def test_fp16_storage_leaves_out_only_casts_that_change_no_bit(monkeypatch):
    """Value-preserving ops (Relu, MaxPool, Reshape, ...) on fp16 values give fp16 values: their
    Cast pair is left out, and the outputs are bit-identical to rounding every tensor."""
    from gancc.stages import predict
    from gancc.stages.runtime import run_onnx

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32), "w")
    shape = numpy_helper.from_array(np.array([0, -1], np.int64), "shape")
    nodes = [helper.make_node("Relu", ["x"], ["r0"]),        # on the unrounded input: cast
             helper.make_node("Conv", ["r0", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Neg", ["p"], ["n"]),
             helper.make_node("Reshape", ["n", "shape"], ["y"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 64])
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], [w, shape]),
                              opset_imports=[helper.make_opsetid("", 13)])
    feeds = {"x": (rng.normal(0, 3, (2, 3, 8, 8)) * 1.001).astype(np.float32)}
    lean = predict.fp16_storage(model)
    monkeypatch.setattr(predict, "_VALUE_PRESERVING", set())
    every = predict.fp16_storage(model)

    def casts(m):
        return sum(n.op_type == "Cast" for n in m.graph.node)

    assert casts(every) == 12 and casts(lean) == 4          # r0 and c rounded; r, p, n, y not
    a, b = run_onnx(lean, feeds, ["y"])["y"], run_onnx(every, feeds, ["y"])["y"]
    assert np.array_equal(a, b)
    assert np.array_equal(a, a.astype(np.float16).astype(np.float32))   # fp16 values
