"""An invalid input graph is the input's fault: opt, explain, diff and lint say so, naming
the file and the node, before any rewrite runs (and nothing is written)."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from gancc.cli import main
from gancc.stages.lint import structure
from tests.test_crash_consistency import tiny_onnx


def value(name: str):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 3, 8, 8])


def save(path: Path, nodes, outputs=("y",), ir_version=None) -> Path:
    graph = helper.make_graph(nodes, "g", [value("x")], [value(o) for o in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    if ir_version is not None:
        model.ir_version = ir_version
    path.write_bytes(model.SerializeToString())      # as it is: onnx.save would not check
    return path


def cyclic(path):
    return save(path, [helper.make_node("Relu", ["b"], ["a"], name="first"),
                       helper.make_node("Add", ["x", "a"], ["b"], name="second"),
                       helper.make_node("Relu", ["b"], ["y"], name="last")])


def dangling(path):
    return save(path, [helper.make_node("Add", ["x", "nowhere"], ["y"], name="adder")])


def duplicate_name(path):
    return save(path, [helper.make_node("Relu", ["x"], ["y"], name="one"),
                       helper.make_node("Sigmoid", ["x"], ["y"], name="two")])


def duplicate_output(path):
    return save(path, [helper.make_node("Relu", ["x"], ["y"], name="one")], outputs=("y", "y"))


def future_ir(path):
    return save(path, [helper.make_node("Relu", ["x"], ["y"], name="one")], ir_version=99)


def empty(path):
    path.write_bytes(b"")
    return path


# (builder, what the message says, the node it names or None)
BAD = [(empty, "holds no ONNX model", None),
       (cyclic, "is part of a cycle", "first"),
       (dangling, "reads 'nowhere', which no node, input or initializer makes", "adder"),
       (duplicate_name, "makes 'y', which is already defined", "two"),
       (duplicate_output, "graph output 'y' is listed twice", None),
       (future_ir, "IR version 99 is newer", None)]
IDS = [b[0].__name__ for b in BAD]


@pytest.mark.parametrize("make, says, node", BAD, ids=IDS)
def test_opt_blames_the_input_and_writes_nothing(tmp_path: Path, capsys, make, says, node):
    bad = make(tmp_path / "bad.onnx")
    out = tmp_path / "out.onnx"
    assert main(["opt", str(bad), "--passes", "fuse-pad-into-conv", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{bad}" + (f": node '{node}'" if node else ""))
    assert "the input graph is not valid ONNX" in err and says in err
    assert "rewrite" not in err.splitlines()[0]            # no rewrite is blamed
    assert not out.exists()


@pytest.mark.parametrize("make, says, node", BAD, ids=IDS)
def test_explain_diff_and_lint_refuse_it_too(tmp_path: Path, capsys, make, says, node):
    bad = make(tmp_path / "bad.onnx")
    good = tmp_path / "good.onnx"
    tiny_onnx(good, 1.0)
    assert main(["explain", "fuse-pad-into-conv", str(bad)]) == 1
    assert says in capsys.readouterr().err
    assert main(["diff", str(good), str(bad)]) == 2          # diff(1)'s "trouble"
    err = capsys.readouterr().err
    assert str(bad) in err and says in err and "added" not in err
    assert main(["lint", str(bad)]) == 1
    printed = capsys.readouterr().out
    assert "[structure]" in printed and says in printed
    if node:
        assert f"node '{node}'" in printed


def test_valid_graphs_have_no_structural_findings(tmp_path: Path):
    tiny_onnx(tmp_path / "ok.onnx", 1.0)
    assert structure(onnx.load(str(tmp_path / "ok.onnx"))) == []
    assert main(["opt", str(tmp_path / "ok.onnx"), "--passes", "fuse-pad-into-conv", "-o",
                 str(tmp_path / "out.onnx")]) == 0
    onnx.checker.check_model(onnx.load(str(tmp_path / "out.onnx")))
