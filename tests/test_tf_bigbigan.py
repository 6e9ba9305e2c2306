"""BigBiGAN: a TensorFlow frozen graph as a source. atc compiles the .pb (--framework=3);
with TensorFlow and tf2onnx installed (the `tf` extra) the graph is also converted to ONNX
and validated against TensorFlow's own output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gancc.cli import main

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args) -> int:
    return main([str(a) for a in args])


def _spec(folder: Path, batch: int) -> Path:
    text = (REPO / "specs" / "bigbigan.gan").read_text()
    if batch != 256:
        text = text.replace("float32[256, 100] batch 256", f"float32[{batch}, 100] batch {batch}")
        text = text.replace("int32[256] batch 256", f"int32[{batch}] batch {batch}")
    path = folder / "bigbigan.gan"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def small_pb(tmp_path_factory) -> Path:
    pytest.importorskip("tensorflow")
    from gancc.tf_bigbigan import write_pb

    return write_pb(tmp_path_factory.mktemp("pb") / "bigbigan.pb", batch=4, ch=16, seed=1)


def test_small_bigbigan_converts_and_matches_tensorflow(small_pb: Path, tmp_path: Path):
    pytest.importorskip("tf2onnx")
    import onnx
    import onnxruntime as ort
    import tensorflow as tf

    (tmp_path / "bigbigan.pb").write_bytes(small_pb.read_bytes())
    out = tmp_path / "out"
    assert run_cli("build", _spec(tmp_path, 4), "-o", out, "--no-atc") == 0
    folder = out / "bigbigan"
    report = json.loads((folder / "report.json").read_text())
    assert report["source"]["kind"] == "tensorflow"
    val = report["validation"]
    assert val["reference"] == "tensorflow"
    assert val["final_vs_reference"]["Identity"]["max_abs"] < 1e-5
    assert val["final_vs_reference"]["Identity"]["cosine"] > 0.99999
    assert (folder / "bigbigan.pb").read_bytes() == small_pb.read_bytes()
    fp16 = val["fp16"]            # the foresight runs on tf2onnx's graph (Split: 2 outputs)
    assert fp16["ran"] and fp16["final_vs_reference"]["Identity"]["non_finite"] == 0
    model = onnx.load(str(folder / "bigbigan.onnx"))
    assert [i.name for i in model.graph.input] == ["x1", "x2"]
    assert [o.name for o in model.graph.output] == ["Identity"]
    ops = {n.op_type for n in model.graph.node}
    assert {"Softmax", "Sigmoid", "ConvTranspose"} <= ops       # attention, output, conv0
    # independently of the build's own check: ONNX vs the frozen graph run by TensorFlow
    rng = np.random.default_rng(5)
    x1 = rng.random((4, 100), dtype=np.float32)
    x2 = rng.integers(0, 10, 4).astype(np.int32)
    onnx_out = ort.InferenceSession(str(folder / "bigbigan.onnx")).run(None, {"x1": x1, "x2": x2})[0]
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(small_pb.read_bytes())
    wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
    fn = wrapped.prune([wrapped.graph.get_tensor_by_name("x1:0"), wrapped.graph.get_tensor_by_name("x2:0")],
                       [wrapped.graph.get_tensor_by_name("Identity:0")])
    tf_out = fn(tf.constant(x1), tf.constant(x2))[0].numpy()
    assert onnx_out.shape == (4, 32, 32, 1) and 0 < tf_out.min() and tf_out.max() < 1
    np.testing.assert_allclose(onnx_out, tf_out, atol=1e-5)
    assert tf_out.std() > 1e-3          # the labels and noise matter: not a constant image


def test_recipe_atc_command_for_the_fixed_batch_graph(tmp_path: Path):
    """batch 256 as the recipe: `--framework=3 ... --input_shape="x1:256,100;x2:256"`."""
    pytest.importorskip("tensorflow")
    from gancc.tf_bigbigan import write_pb

    write_pb(tmp_path / "bigbigan.pb", batch=256, ch=16)
    out = tmp_path / "out"
    assert run_cli("build", _spec(tmp_path, 256), "-o", out, "--no-atc", "--no-validate") == 0
    commands = [line for line in (out / "bigbigan" / "atc.sh").read_text().splitlines()
                if line.startswith("atc ")]
    assert commands == ['atc --framework=3 --model=bigbigan.pb --output=bigbigan_bs256 '
                        '--input_shape="x1:256,100;x2:256" --soc_version=Ascend310 --log=error']


def test_without_converter_only_the_atc_command_is_written(tmp_path: Path, monkeypatch, capsys):
    (tmp_path / "bigbigan.pb").write_bytes(b"not parsed without TensorFlow")
    monkeypatch.setenv("GANCC_NO_TF", "1")
    out = tmp_path / "out"
    assert run_cli("build", _spec(tmp_path, 256), "-o", out, "--no-atc") == 0
    err = capsys.readouterr().err
    assert "NOT VALIDATED" in err and "pip install -e '.[tf]'" in err
    folder = out / "bigbigan"
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith("report")) == \
        ["atc.sh", "bigbigan.pb"]
    report = json.loads((folder / "report.json").read_text())
    assert report["status"] == "ok" and "GANCC_NO_TF" in report["validation"]["skipped"]
    assert '--framework=3 --model=bigbigan.pb' in report["atc"]["commands"][0]
    assert '--input_shape="x1:256,100;x2:256"' in report["atc"]["commands"][0]
    assert "--input_format" not in report["atc"]["commands"][0]


def test_tensorflow_source_errors_name_the_spec_line(tmp_path: Path, small_pb: Path, capsys):
    pytest.importorskip("tf2onnx")
    spec = _spec(tmp_path, 4)
    assert run_cli("build", spec, "-o", tmp_path / "out", "--no-atc") == 1
    assert "bigbigan.gan:14:5: error: TensorFlow graph not found" in capsys.readouterr().err
    (tmp_path / "bigbigan.pb").write_bytes(small_pb.read_bytes())
    spec.write_text(spec.read_text().replace("input x1:", "input z:").replace("data x1", "data z"))
    assert run_cli("build", spec, "-o", tmp_path / "out", "--no-atc") == 1
    err = capsys.readouterr().err
    assert "input 'z' is not a placeholder of bigbigan.pb" in err and "Traceback" not in err
    spec.write_text(spec.read_text().replace("reference tensorflow", "reference pytorch")
                    .replace("source tensorflow", "source onnx"))
    assert run_cli("check", spec) == 1          # parses (reference pytorch is allowed), but
    err = capsys.readouterr().err               # check reads an onnx source's interface
    assert "bigbigan.pb" in err and "reference" not in err
    spec.write_text(spec.read_text().replace("reference pytorch", "reference tensorflow"))
    assert run_cli("check", spec) == 1
    assert "`reference tensorflow` needs a `source tensorflow" in capsys.readouterr().err
