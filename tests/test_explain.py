"""`gancc explain`: per candidate node, fired or declined with the rewrite's own reason; the
input graph is never modified; summary counts; JSON; rewrites, options and spec rules."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import onnx.parser
import pytest

from gancc.cli import main
from gancc.passes import registry
from gancc.passes.explain import explain

GRAPH = """
<ir_version: 8, opset_import: ["" : 11]>
g (float[1,3,8,8] x, float[4,3,3,3] w) => (float[1,4,12,12] y, float[1,3,10,10] e)
<int64[8] pads = {0, 0, 2, 2, 0, 0, 2, 2}, int64[8] one = {0, 0, 1, 1, 0, 0, 1, 1}>
{
    [reflect] p = Pad <mode = "reflect"> (x, pads)
    [zero] z = Pad (p, one)
    [conv] y = Conv (z, w)
    [edge] e = Pad <mode = "edge"> (x, one)
}
"""


@pytest.fixture
def model() -> onnx.ModelProto:
    m = onnx.parser.parse_model(GRAPH)
    onnx.checker.check_model(m, full_check=True)
    return m


def test_each_candidate_fired_or_says_why_not(model: onnx.ModelProto):
    before = model.SerializeToString()
    result = explain(registry.make_pass("fuse-pad-into-conv"), model)
    assert model.SerializeToString() == before                     # the input is untouched
    assert [(c.node, c.op, c.fired, c.reason) for c in result.candidates] == [
        ("reflect", "Pad", False, "mode is 'reflect', not 'constant'"),
        ("zero", "Pad", True, ""),
        ("edge", "Pad", False, "mode is 'edge', not 'constant'"),
    ]
    assert (result.fired, result.declined) == (1, 2)
    assert result.anchor == "Pad"
    assert result.source.rsplit(":", 1)[0].endswith("fuse_pad_into_conv.py")


def test_options_change_the_decisions(model: onnx.ModelProto):
    result = explain(registry.make_pass("fuse-pad-into-conv", {"max_pad": 0}), model)
    assert result.rewrite == "fuse-pad-into-conv{max_pad=0}"
    assert result.candidates[1].reason == "fused pads [1, 1, 1, 1] exceed max_pad=0"


def write(model: onnx.ModelProto, folder: Path) -> Path:
    path = folder / "m.onnx"
    onnx.save(model, str(path))
    return path


def test_cli_json(model: onnx.ModelProto, tmp_path: Path, capsys):
    path = write(model, tmp_path)
    before = path.read_bytes()
    assert main(["explain", "reflect-pad-to-constant", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert path.read_bytes() == before
    assert data["summary"] == {"candidates": 3, "fired": 1, "declined": 2, "decline_reasons": {
        "mode is 'constant', not 'reflect'": 1, "mode is 'edge', not 'reflect'": 1}}
    assert data["candidates"][0] == {"node": "reflect", "op": "Pad", "decision": "fired",
                                     "reason": ""}


@pytest.mark.parametrize("args", [["fuse-pad-into-conv{max_pad=0}"],
                                  ["fuse-pad-into-conv", "--options", "{max_pad=0}"]],
                         ids=["pipeline-syntax", "options-flag"])
def test_cli_table_with_options(model: onnx.ModelProto, tmp_path: Path, capsys, args):
    path = write(model, tmp_path)
    assert main(["explain", args[0], str(path), *args[1:]]) == 0
    out = capsys.readouterr().out
    assert "fuse-pad-into-conv{max_pad=0}" in out
    assert "3 candidate(s): 0 fired, 3 declined" in out
    assert "exceed max_pad=0" in out


def test_cli_spec_rule(model: onnx.ModelProto, tmp_path: Path, capsys):
    path = write(model, tmp_path)
    spec = tmp_path / "r.gan"
    spec.write_text('rule edge-to-reflect {\n'
                    '    match Pad where mode == "edge"  set mode = "reflect"\n}\n'
                    'model m { source onnx "m.onnx" }\n')
    assert main(["explain", "--spec", str(spec), "edge-to-reflect", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["source"] == f"{spec}:1"
    assert [c["decision"] for c in data["candidates"]] == ["declined", "declined", "fired"]
    assert data["candidates"][0]["reason"] == "mode is 'reflect', not 'edge'"


def test_cli_errors(model: onnx.ModelProto, tmp_path: Path, capsys):
    path = write(model, tmp_path)
    assert main(["explain", "fuse-pad-into-cnov", str(path)]) == 1
    assert "did you mean 'fuse-pad-into-conv'?" in capsys.readouterr().err
    assert main(["explain", "a,b", str(path)]) == 1
    assert "explain takes one rewrite" in capsys.readouterr().err
    assert main(["explain", "fuse-pad-into-conv", str(tmp_path / "missing.onnx")]) == 1
    assert "ONNX file not found" in capsys.readouterr().err


def test_graph_without_candidates(tmp_path: Path, capsys):
    m = onnx.parser.parse_model("""
    <ir_version: 8, opset_import: ["" : 11]>
    g (float[2] x) => (float[2] y) { y = Relu (x) }
    """)
    assert main(["explain", "fuse-pad-into-conv", str(write(m, tmp_path))]) == 0
    assert "has no Pad node" in capsys.readouterr().out
