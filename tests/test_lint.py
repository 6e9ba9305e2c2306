"""`gancc lint`: what ATC's ONNX parser cannot take, found before atc runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from gancc.cli import main
from gancc.stages.lint import lint, registrations


def make(nodes, inits=(), opset: int = 11, inputs=None, outputs=None) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    g = helper.make_graph(nodes, "g", inputs or [x], outputs or [y], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def codes(model, **kw):
    return [(f.severity, f.code, f.node) for f in lint(model, **kw)]


def test_the_packaged_table_is_the_reference_data():
    table = registrations()
    assert table["Resize"] == tuple(range(10, 19))
    assert table["Upsample"] == (8, 9, 11, 12, 13, 14, 15, 16)
    assert "GroupNormalization" not in table and len(table) > 250


def test_a_clean_generator_graph_has_no_findings():
    w = numpy_helper.from_array(np.zeros((4, 4, 3, 3), np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1]),
             helper.make_node("InstanceNormalization", ["c", "s", "b"], ["n"], name="in"),
             helper.make_node("Tanh", ["n"], ["y"], name="tanh")]
    inits = [w, numpy_helper.from_array(np.ones(4, np.float32), "s"),
             numpy_helper.from_array(np.zeros(4, np.float32), "b")]
    assert lint(make(nodes, inits)) == []


def test_unregistered_ops_and_opsets_are_errors_with_fixes():
    findings = lint(make([helper.make_node("Upsample", ["x", "s"], ["y"], name="up")],
                         [numpy_helper.from_array(np.ones(4, np.float32), "s")], opset=10))
    (f,) = [f for f in findings if f.code == "E16002"]
    assert f.node == "up" and "opsets 8-9, 11-16, not the model's opset 10" in f.message
    assert "export at opset 11" in f.fix
    gn = lint(make([helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], name="gn",
                                     num_groups=2)], opset=18))
    assert gn[0].severity == "error" and "decompose" in gn[0].fix
    high = codes(make([helper.make_node("Relu", ["x"], ["y"], name="r")], opset=19))
    assert ("error", "opset", None) in high
    custom = helper.make_node("Foo", ["x"], ["y"], name="foo", domain="com.example")
    assert codes(make([custom]))[0] == ("error", "domain", "foo")


def test_conv_transpose_without_kernel_shape_and_resize_nearest_mode():
    w = numpy_helper.from_array(np.zeros((4, 2, 4, 4), np.float32), "w")
    ct = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up1", strides=[2, 2],
                          pads=[1, 1, 1, 1])
    (f,) = lint(make([ct], [w]))
    assert (f.severity, f.node) == ("error", "up1") and "kernel_shape" in f.message
    assert "conv-transpose-kernel-shape" in f.fix
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    roi = numpy_helper.from_array(np.zeros(0, np.float32), "roi")
    rs = helper.make_node("Resize", ["x", "roi", "scales"], ["y"], name="rs", mode="nearest")
    (f,) = lint(make([rs], [scales, roi]))
    assert (f.severity, f.code) == ("warning", "resize-nearest-mode")
    assert "round_prefer_floor" in f.message and "nearest_mode floor" in f.fix
    ok = helper.make_node("Resize", ["x", "roi", "scales"], ["y"], name="rs", mode="nearest",
                          coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    assert lint(make([ok], [scales, roi])) == []
    short = helper.make_node("Resize", ["x", "roi"], ["y"], name="rs2", mode="linear")
    assert ("error", "plugin", "rs2") in codes(make([short], [roi]))


def test_cli_lint_exit_status_and_json(tmp_path: Path, capsys):
    bad = tmp_path / "bad.onnx"
    w = numpy_helper.from_array(np.zeros((4, 2, 4, 4), np.float32), "w")
    onnx.save(make([helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up1")], [w]), bad)
    assert main(["lint", str(bad), "--soc", "Ascend310P3"]) == 1
    out = capsys.readouterr().out
    assert "node 'up1' (ConvTranspose)" in out and "atc would fail" in out
    assert main(["lint", str(bad), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["errors"] == 1 and report["findings"][0]["node"] == "up1"
    good = tmp_path / "good.onnx"
    onnx.save(make([helper.make_node("Relu", ["x"], ["y"], name="r")]), good)
    assert main(["lint", str(good)]) == 0
    assert main(["lint", str(tmp_path / "missing.onnx")]) == 1
    assert "ONNX file not found" in capsys.readouterr().err


def test_build_runs_lint_before_atc_and_stops_on_errors(tmp_path: Path, capsys):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2, 16, 16])
    w = numpy_helper.from_array(np.random.default_rng(0).normal(size=(4, 2, 4, 4)).astype(np.float32), "w")
    ct = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up1", strides=[2, 2],
                          pads=[1, 1, 1, 1])
    onnx.save(make([ct], [w], inputs=[x], outputs=[y]), tmp_path / "ct.onnx")
    spec = tmp_path / "ct.gan"
    spec.write_text('model ct {\n    source onnx "ct.onnx"\n    input x: float32[N, 4, 8, 8] batch 1\n'
                    '    output y\n    atc { soc_version Ascend310P3 }\n}\n')
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "atc").write_text('#!/usr/bin/env bash\ntouch "$(dirname "$0")/ran"\n')
    (bindir / "atc").chmod(0o755)
    assert main(["build", str(spec), "-o", str(tmp_path / "out"), "--atc", str(bindir / "atc"),
                 "--no-cache"]) == 1
    err = capsys.readouterr().err
    assert "ct: node 'up1': error: atc would fail on the final graph" in err
    assert "kernel_shape" in err and "Traceback" not in err
    assert not (bindir / "ran").exists()
    report = json.loads((tmp_path / "out" / ".gancc" / "failed" / "ct" / "report.json").read_text())
    assert report["lint"]["errors"] == 1
    # the fix the finding names: the rewrite writes kernel_shape from the weight
    spec.write_text(spec.read_text().replace("    output y\n",
                                             "    output y\n    rewrite { conv-transpose-kernel-shape }\n"))
    assert main(["build", str(spec), "-o", str(tmp_path / "out"), "--atc", str(bindir / "atc"),
                 "--no-cache"]) == 1          # the stand-in atc writes no .om, but it ran
    assert (bindir / "ran").exists()
    assert "no .om written" in capsys.readouterr().err
    fixed = onnx.load(str(tmp_path / "out" / ".gancc" / "failed" / "ct" / "ct.onnx"))
    assert list(fixed.graph.node[0].attribute[-1].ints) == [4, 4]
