"""`gancc build --dump-dir` and `--print-ir-after-change`: the graph after every stage."""

from __future__ import annotations

import json
from pathlib import Path

import onnx

from gancc.cli import main
from gancc.graph.text import to_text
from tests.conftest import SMALL_SPEC, write_spec

# reflect-pad-to-constant twice: the second run finds nothing, so it is a no-change stage
TWICE = (SMALL_SPEC % {"fallback": " else random(seed=0)", "threshold": 0.5}).replace(
    "        reflect-pad-to-constant\n",
    "        reflect-pad-to-constant\n        reflect-pad-to-constant\n")


def test_dump_dir_writes_every_stage_and_prints_changes(tmp_path: Path, capsys):
    spec = write_spec(tmp_path, text=TWICE)
    dump = tmp_path / "dumps"
    (dump / "small").mkdir(parents=True)
    (dump / "small" / "07-stale.onnx").write_bytes(b"from an older build")
    assert main(["build", str(spec), "-o", str(tmp_path / "out"), "--no-atc", "--no-validate",
                 "--dump-dir", str(dump), "--print-ir-after-change"]) == 0
    err = capsys.readouterr().err
    stages = ["00-export", "01-simplify", "02-reflect-pad-to-constant",
              "03-reflect-pad-to-constant", "04-fuse-pad-into-conv"]
    assert sorted(p.name for p in (dump / "small").iterdir()) == \
        sorted([f"{s}.onnx" for s in stages] + [f"{s}.txt" for s in stages])
    for stage in stages:
        model = onnx.load(str(dump / "small" / f"{stage}.onnx"))
        text = (dump / "small" / f"{stage}.txt").read_text()
        assert text == to_text(model)
        assert len(text) < 40_000                                    # no weight values
    final = (dump / "small" / "04-fuse-pad-into-conv.txt").read_text()
    assert "init    model.1.weight: float32[8,3,7,7] #" in final
    assert "pads=[3, 3, 3, 3]" in final and "@fuse-pad-into-conv" in final
    # what the build printed: the first stage in full, then only diffs of stages that changed
    assert "// -----// IR after export (00) //----- //" in err
    assert "// -----// IR after simplify (01), diff against export //----- //" in err
    assert "IR after reflect-pad-to-constant (03): omitted because no change" in err
    assert ('+node    /model/model.0/Pad: %/model/model.0/Pad_output_0 = Pad(%img, '
            '%/model/model.0/Reshape_1_output_0) {mode="constant"}  @reflect-pad-to-constant') in err
    report = json.loads((tmp_path / "out" / "small" / "report.json").read_text())
    assert report["ir"]["dump_dir"] == str(dump / "small")
    assert [(s["stage"], s["changed"]) for s in report["ir"]["stages"]] == [
        ("export", True), ("simplify", True), ("reflect-pad-to-constant", True),
        ("reflect-pad-to-constant", False), ("fuse-pad-into-conv", True)]
    assert report["ir"]["stages"][2]["diff"]["changed"] == 6


def test_stage_addressing_in_a_dump(tmp_path: Path, capsys):
    spec = write_spec(tmp_path, text=TWICE)
    assert main(["build", str(spec), "-o", str(tmp_path / "out"), "--no-atc", "--no-validate",
                 "--dump-dir", "-q"]) == 0
    folder = tmp_path / "out" / "small"
    assert (folder / "ir" / "01-simplify.onnx").is_file()       # inside the build folder
    capsys.readouterr()
    assert main(["diff", f"{folder}:reflect-pad-to-constant"]) == 2
    err = capsys.readouterr().err
    assert "stage 'reflect-pad-to-constant' ran 2 times" in err and "02, 03" in err
    assert main(["diff", f"{folder}:3"]) == 0                    # the no-op second run
    assert main(["diff", f"{folder}/ir:2"]) == 1                 # the dump folder itself
    assert main(["diff", f"{folder}:final", str(folder / "small.onnx")]) == 0
    out = capsys.readouterr().out
    assert f"{folder}/ir:reflect-pad-to-constant (35 nodes)" in out


def test_cached_build_keeps_stage_numbers(tmp_path: Path):
    spec = write_spec(tmp_path)
    for _ in range(2):    # the second build takes export+simplify from the build cache
        assert main(["build", str(spec), "-o", str(tmp_path / "out"), "--no-atc",
                     "--no-validate", "--dump-dir", "-q"]) == 0
    report = json.loads((tmp_path / "out" / "small" / "report.json").read_text())
    assert report["cache"]["export"] == "hit", report["cache"]
    ir = tmp_path / "out" / "small" / "ir"
    assert not (ir / "00-export.onnx").exists() and (ir / "01-simplify.onnx").is_file()
    assert report["ir"]["stages"][0] == {"stage": "export", "index": 0, "changed": False,
                                         "skipped": True}
    assert (ir / "02-reflect-pad-to-constant.onnx").is_file()
