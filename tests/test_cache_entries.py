"""A cache hit is a graph the model can use, and reports this build's weights (docs/guarantees.md)."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from gancc.build.cached import weights_this_build_used
from gancc.cache import Cache
from gancc.cli import main
from gancc.fsutil import sha256_file
from gancc.spec import parse_text
from tests.test_crash_consistency import SPEC, tiny_onnx


def build(spec: Path, out: Path) -> dict:
    assert main(["build", str(spec), "-o", str(out), "--no-atc", "--no-validate"]) == 0
    return json.loads((out / "tiny" / "report.json").read_text())


def forge(entry: Path, model: onnx.ModelProto) -> None:
    """Replace an entry's graph and fix its meta.json: self-consistent, but wrong."""
    onnx.save(model, entry / "model.onnx")
    meta = json.loads((entry / "meta.json").read_text())
    meta["files"]["model.onnx"] = {"size": (entry / "model.onnx").stat().st_size,
                                   "sha256": sha256_file(entry / "model.onnx")}
    (entry / "meta.json").write_text(json.dumps(meta))


def empty_graph() -> onnx.ModelProto:
    return helper.make_model(helper.make_graph([], "g", [], []))


def other_interface() -> onnx.ModelProto:
    node = helper.make_node("Relu", ["z"], ["w"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("z", TensorProto.FLOAT,
                                                                          [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("w", TensorProto.FLOAT, [1, 3, 8, 8])])
    return helper.make_model(graph)


@pytest.mark.parametrize("forged, why", [(empty_graph, "has no nodes"),
                                         (other_interface, "has no input 'x'")])
def test_a_wrong_but_self_consistent_entry_is_dropped_and_rebuilt(tmp_path: Path, capsys,
                                                                  forged, why):
    tiny_onnx(tmp_path / "tiny.onnx", 1.0)
    spec = tmp_path / "tiny.gan"
    spec.write_text(SPEC.format(name="tiny"), encoding="utf-8")
    first = build(spec, tmp_path / "out")
    assert first["cache"]["export"] == "stored"
    entry = Cache().entry_dir("export", first["cache"]["keys"]["export"])
    forge(entry, forged())
    second = build(spec, tmp_path / "out")
    err = capsys.readouterr().err
    assert f"ignoring corrupt cache entry {entry}: model.onnx {why}" in err
    assert second["cache"]["export"] == "stored" and second["final"]["nodes"] == 2
    assert build(spec, tmp_path / "out")["cache"]["export"] == "hit"    # the rebuilt entry


def test_a_hit_reports_the_weights_this_spec_names():
    text = ('model m { source pytorch { arch resnet_generator(ngf=8, n_blocks=1)\n'
            '  weights "mine/G.pth" else random(seed=0) }\n'
            '  input img: float32[1, 3, 64, 64]  output out }\n')
    model = parse_text(text, "t.gan").models[0]
    stored = {"kind": "random", "path": "theirs/other.pth", "seed": 0,
              "note": "theirs/other.pth not found; seeded random weights (seed 0)"}
    used = weights_this_build_used(stored, model)
    assert used["path"] == "mine/G.pth" and "theirs" not in json.dumps(used)
    assert used["note"] == "mine/G.pth not found; seeded random weights (seed 0)"
    stored = {"kind": "checkpoint", "path": "theirs/G.pth", "sha256": "ab"}
    assert weights_this_build_used(stored, model) == {"kind": "checkpoint", "path": "mine/G.pth",
                                                      "sha256": "ab"}
