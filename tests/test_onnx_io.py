"""gancc.onnx_io: a model written one piece at a time is the model, byte for byte; external
data loads in onnx and onnxruntime; the in-memory model is never changed; no partial files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from gancc import onnx_io


def _model() -> onnx.ModelProto:
    """Two convs with weights of several sizes, and every kind of field the writer splits:
    model and graph doc strings, metadata, value_info, a small int64 initializer."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((16, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((3, 16, 3, 3)).astype(np.float32), "w2")
    b2 = numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "b2")
    pads = numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads")
    nodes = [helper.make_node("Pad", ["x", "pads"], ["p"], mode="reflect", name="pad"),
             helper.make_node("Conv", ["p", "w1"], ["h"], kernel_shape=[3, 3], name="c1"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Conv", ["r", "w2", "b2"], ["y"], kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1], name="c2")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 3, 16, 16])],
        [w1, w2, b2, pads], doc_string="graph doc",
        value_info=[helper.make_tensor_value_info("h", onnx.TensorProto.FLOAT, ["N", 16, 16, 16])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)],
                              producer_name="test", doc_string="model doc")
    helper.set_model_props(model, {"origin": "test_onnx_io"})
    onnx.checker.check_model(model, full_check=True)
    return model


def _run(model, x):
    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    return ort.InferenceSession(source).run(None, {"x": x})[0]


def test_piecewise_writing_gives_the_bytes_of_serialize_to_string():
    model = _model()
    buffer = io.BytesIO()
    onnx_io.write_model(model, buffer)
    assert buffer.getvalue() == model.SerializeToString()


def test_save_writes_a_loadable_file_and_leaves_no_temporary(tmp_path: Path):
    model = _model()
    files = onnx_io.save_onnx(model, tmp_path / "m.onnx")
    assert files == [tmp_path / "m.onnx"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
    assert (tmp_path / "m.onnx").read_bytes() == model.SerializeToString()


def test_external_data_loads_and_runs_like_the_model(tmp_path: Path):
    model = _model()
    before = model.SerializeToString()
    files = onnx_io.save_onnx(model, tmp_path / "m.onnx", threshold=100)
    assert files == [tmp_path / "m.onnx", tmp_path / "m.onnx.data"]
    assert model.SerializeToString() == before                 # the caller's model is unchanged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.data"]
    skeleton = onnx.load(str(tmp_path / "m.onnx"), load_external_data=False)
    external = {t.name: {e.key: e.value for e in t.external_data}
                for t in skeleton.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL}
    assert set(external) == {"w1", "w2"}                       # b2 and pads are under 1 KiB
    assert all(int(e["offset"]) % 4096 == 0 and e["location"] == "m.onnx.data"
               for e in external.values())
    loaded = onnx.load(str(tmp_path / "m.onnx"))
    onnx.checker.check_model(loaded, full_check=True)
    for a, b in zip(loaded.graph.initializer, model.graph.initializer):
        np.testing.assert_array_equal(numpy_helper.to_array(a), numpy_helper.to_array(b))
    x = np.random.default_rng(1).standard_normal((2, 3, 16, 16)).astype(np.float32)
    np.testing.assert_array_equal(_run(tmp_path / "m.onnx", x), _run(model, x))


def test_a_failed_write_leaves_the_previous_file(tmp_path: Path, monkeypatch):
    model = _model()
    onnx_io.save_onnx(model, tmp_path / "m.onnx")
    previous = (tmp_path / "m.onnx").read_bytes()

    def broken(model, f, data=None, location=""):     # the disk fills up halfway
        f.write(b"half a model")
        if data is not None:
            data.write(b"half the weights")
        raise OSError("disk full")

    monkeypatch.setattr(onnx_io, "write_model", broken)
    for threshold in (None, 100):                            # one file, then with .data
        with pytest.raises(OSError):
            onnx_io.save_onnx(model, tmp_path / "m.onnx", threshold=threshold)
        assert (tmp_path / "m.onnx").read_bytes() == previous
        assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def _external_tensors(path: Path) -> set[str]:
    stored = onnx.load(str(path), load_external_data=False)
    return {t.name for t in stored.graph.initializer
            if t.data_location == onnx.TensorProto.EXTERNAL}


def test_write_onnx_past_the_threshold_writes_external_data(tmp_path: Path):
    model = _model()
    files = onnx_io.write_onnx(model, tmp_path / "m.onnx", threshold=100)
    assert files == [tmp_path / "m.onnx", tmp_path / "m.onnx.data"]
    assert _external_tensors(tmp_path / "m.onnx") == {"w1", "w2"}
    x = np.random.default_rng(1).standard_normal((1, 3, 16, 16)).astype(np.float32)
    np.testing.assert_array_equal(_run(tmp_path / "m.onnx", x), _run(model, x))


def test_gancc_opt_saves_a_model_past_the_threshold_with_external_data(tmp_path: Path,
                                                                         monkeypatch):
    from gancc.cli import main

    onnx_io.save_onnx(_model(), tmp_path / "in.onnx")
    argv = ["opt", str(tmp_path / "in.onnx"), "--passes", "remove-identity"]
    assert main([*argv, "-o", str(tmp_path / "small.onnx")]) == 0
    monkeypatch.setattr(onnx_io, "EXTERNAL_DATA_THRESHOLD", 100)
    assert main([*argv, "-o", str(tmp_path / "large.onnx")]) == 0
    assert not (tmp_path / "small.onnx.data").exists()
    assert _external_tensors(tmp_path / "large.onnx") == {"w1", "w2"}
    loaded = onnx.load(str(tmp_path / "large.onnx"))
    onnx.checker.check_model(loaded, full_check=True)
    small = onnx.load(str(tmp_path / "small.onnx"))
    assert [n.SerializeToString() for n in loaded.graph.node] == \
        [n.SerializeToString() for n in small.graph.node]
    for a, b in zip(loaded.graph.initializer, small.graph.initializer, strict=True):
        np.testing.assert_array_equal(numpy_helper.to_array(a), numpy_helper.to_array(b))
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temporaries


def test_ir_dumps_save_a_model_past_the_threshold_with_external_data(tmp_path: Path,
                                                                       monkeypatch):
    from gancc.console import Ui
    from gancc.stages.dump import IrRecorder

    monkeypatch.setattr(onnx_io, "EXTERNAL_DATA_THRESHOLD", 100)
    model = _model()
    recorder = IrRecorder(Ui(quiet=True), dump_dir=tmp_path)
    recorder.stage("export", model)
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        ["00-export.onnx", "00-export.onnx.data", "00-export.txt"]
    assert _external_tensors(tmp_path / "00-export.onnx") == {"w1", "w2"}
    x = np.random.default_rng(1).standard_normal((1, 3, 16, 16)).astype(np.float32)
    np.testing.assert_array_equal(_run(tmp_path / "00-export.onnx", x), _run(model, x))
