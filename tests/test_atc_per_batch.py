"""Per-batch atc options (`batch 1, 16 { auto_tune_mode "RL,GA" }`) and `env NAME "value"`
in the atc block (issue 14): what reaches atc.sh, the errors at file:line:col, the per-SoC
auto_tune_mode warning, and the generation-1 GAN recipe's pth2om.sh reproduced command for
command by examples/recipes/gan_gen1.gan."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from gancc.cli import main
from gancc.errors import SpecError
from gancc.spec import parse_text
from gancc.stages import atc
from gancc.stages.atc_tuning import tuning_warnings
from tests.test_atc_script_injection import graph

ROOT = Path(__file__).resolve().parents[1]
GEN1_SPEC = ROOT / "examples" / "recipes" / "gan_gen1.gan"


def spec_model(atc_lines: str, socs: str = "Ascend310"):
    text = ('model m {\n    source onnx "m.onnx"\n    input img: float32[N, 3, 8, 8] batch 1, 4, 16\n'
            f'    output out\n    atc {{\n        soc_version {socs}\n{atc_lines}\n    }}\n}}\n')
    return parse_text(text, "t.gan").models[0]


def commands(atc_lines: str, socs: str = "Ascend310") -> list[list[str]]:
    model = spec_model(atc_lines, socs)
    return [list(c.argv) for c in atc.atc_commands(model, graph(), "m.onnx", None, None)]


def test_batch_options_reach_only_their_batches():
    argv = commands('        precision_mode force_fp16\n'
                    '        batch 1, 16 { auto_tune_mode "RL,GA"  precision_mode allow_fp32_to_fp16 }\n'
                    '        batch 4 { log info  extra "--enable_small_channel=1" }')
    bs1, bs4, bs16 = argv
    assert "--auto_tune_mode=RL,GA" in bs1 and "--auto_tune_mode=RL,GA" in bs16
    assert not any(a.startswith("--auto_tune_mode") for a in bs4)
    # a key of the batch block replaces the atc block's value for those sizes only
    assert "--precision_mode=allow_fp32_to_fp16" in bs1 and "--precision_mode=force_fp16" in bs4
    assert bs4[-2:] == ["--enable_small_channel=1", "--log=info"] and bs1[-1] == "--log=error"


def test_auto_tune_mode_for_every_batch_and_in_the_docs_quoting():
    model = spec_model("        auto_tune_mode GA, RL")
    cmds = atc.atc_commands(model, graph(), "m.onnx", None, None)
    assert all('--auto_tune_mode="GA,RL"' in c.shell().split() for c in cmds)


def test_batch_blocks_apply_on_every_soc():
    argv = commands('        batch 16 { auto_tune_mode "RL" }', socs="Ascend310, Ascend910")
    tuned = [a for a in argv if "--auto_tune_mode=RL" in a]
    assert len(argv) == 6 and [a[3] for a in tuned] == ["--output=m_bs16_Ascend310",
                                                        "--output=m_bs16_Ascend910"]


# (atc lines, what the error says, the text its column points at: line 7 of the spec)
BAD = [
    ('batch 2 { auto_tune_mode "RL" }', "batch 2 is not a batch size of this model", "2 {"),
    ('batch 1 { auto_tune_mode "RL,XX" }', "invalid auto_tune_mode 'XX'", '"RL,XX"'),
    ('batch 1 { auto_tune_mode "RL,RL" }', "auto_tune_mode RL is listed twice", '"RL,RL"'),
    ("batch 1 { soc_version Ascend310 }", "'soc_version' cannot be set per batch size",
     "soc_version A"),
    ("batch 1 { precision_mode fp16 }", "invalid value 'fp16' for 'precision_mode'", "fp16"),
    ('batch 1 { extra "--x=a\\nb" }', "control character", '"--x'),
    ('batch 1 { log info }  batch 1 { log debug }', "batch 1 already has its own atc options",
     "1 { log d"),
    ('dynamic_batch_size 1, 4  batch 1 { log info }',
     "per-batch atc options need one command per batch size", "batch 1 {"),
    ('env PATH "/tmp"', "env PATH: atc.sh does not set this variable", "PATH"),
    ('env LD_PRELOAD "x.so"', "env LD_PRELOAD: atc.sh does not set this variable", "LD_PRELOAD"),
    ('env A.b "x"', "env name 'A.b' is not a shell variable name", "A.b"),
    ('env A x', 'env A takes a "string" value', "x"),
    ('env A "1"  env A "2"', "env A is set twice", 'A "2"'),
    ('env A "x\\ny"', "the value of env A contains the control character", '"x'),
]


@pytest.mark.parametrize("lines, says, where", BAD, ids=[b[1][:40] for b in BAD])
def test_mistakes_are_reported_at_their_place(lines: str, says: str, where: str):
    with pytest.raises(SpecError) as info:
        spec_model("        " + lines)
    err = info.value
    assert says in err.message
    text = "        " + lines
    assert (err.span.line, err.span.col) == (7, text.rindex(where) + 1)


def test_op_bank_path_conflict_is_judged_by_check_as_by_build(tmp_path: Path, capsys,
                                                              monkeypatch):
    from tests.test_check_equals_build import first_error_line
    from tests.test_crash_consistency import tiny_onnx

    monkeypatch.setenv("PATH", f"{tmp_path / 'no-npu-smi'}{os.pathsep}/usr/bin{os.pathsep}/bin")
    tiny_onnx(tmp_path / "tiny.onnx", 1.0)
    spec = tmp_path / "t.gan"
    spec.write_text('model tiny {\n    source onnx "tiny.onnx"\n    input x: float32[1, 3, 8, 8]\n'
                    '    output y\n    atc {\n        soc_version Ascend310\n'
                    '        batch 1 { auto_tune_mode "RL,GA"  extra "--op_bank_path=bank" }\n'
                    '    }\n}\n', encoding="utf-8")
    assert main(["check", str(spec)]) == 1
    checked = first_error_line(capsys.readouterr().err)
    assert main(["build", str(spec), "-o", str(tmp_path / "out"), "--no-atc"]) == 1
    built = first_error_line(capsys.readouterr().err)
    assert checked == built
    assert built.startswith(f"{spec}:7:19: error: --auto_tune_mode and --op_bank_path")


def test_auto_tune_warning_per_soc_the_docs_do_not_list(tmp_path: Path, capsys):
    model = spec_model('        batch 1, 16 { auto_tune_mode "RL,GA" }',
                       socs="Ascend310, Ascend310P3, Ascend910B3")
    warnings = tuning_warnings(model, model.atc.soc_versions)
    assert [w.split(" on ")[1].split(":")[0] for w in warnings] == ["Ascend310P3", "Ascend910B3"]
    assert "(batch 1, 16)" in warnings[0] and "AOE" in warnings[0]
    assert tuning_warnings(spec_model("        log error", socs="Ascend310P3"), ("Ascend310P3",)) == []
    # gancc check prints them as the build does (report.json's atc.warnings)
    spec = tmp_path / "t.gan"
    spec.write_text(GEN1_SPEC.read_text(encoding="utf-8"), encoding="utf-8")
    assert main(["check", str(spec), "--soc-version", "Ascend310P3", "--random-weights"]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: model 'GAN': auto_tune_mode (batch 1, 16) on Ascend310P3") == 1
    assert main(["check", str(spec), "--random-weights"]) == 0
    assert "auto_tune_mode" not in capsys.readouterr().err


# The generation-1 GAN recipe (/work/shared/reference/models-recipes.md, GAN, "atc"): the
# README's command per batch size (1, 16, 64), test/pth2om.sh's `export REPEAT_TUNE=True`, and
# --auto_tune_mode="RL,GA" on the bs1 and bs16 builds only.
RECIPE_README = ('atc --model=GAN.onnx --framework=5 --output=GAN_bs{b} --input_format=NCHW '
                 '--input_shape="Z:{b},100" --log=error --soc_version=Ascend310')
RECIPE_PTH2OM = ["export REPEAT_TUNE=True"] + [
    RECIPE_README.format(b=b) + (' --auto_tune_mode="RL,GA"' if b in (1, 16) else "")
    for b in (1, 16, 64)]


def _script_statements(path: Path) -> list[list[str]]:
    return [shlex.split(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.startswith(("atc ", "export "))]


def _same_command(ours: list[str], recipe: list[str]) -> bool:
    """The same program and the same tokens: atc's flags are gflags, read in any order."""
    return ours[0] == recipe[0] and sorted(ours[1:]) == sorted(recipe[1:])


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gen1_gan_spec_reproduces_the_recipes_pth2om(tmp_path: Path, monkeypatch):
    out = tmp_path / "out"
    assert main(["build", str(GEN1_SPEC), "-o", str(out), "--no-atc", "--no-validate",
                 "--random-weights"]) == 0
    script = out / "GAN" / "atc.sh"
    ours, recipe = _script_statements(script), [shlex.split(c) for c in RECIPE_PTH2OM]
    assert len(ours) == len(recipe) == 4
    assert all(_same_command(o, r) for o, r in zip(ours, recipe)), (ours, recipe)
    report = json.loads((out / "GAN" / "report.json").read_text(encoding="utf-8"))
    assert [t["om"] for t in report["atc"]["targets"]] == ["GAN_bs1.om", "GAN_bs16.om",
                                                          "GAN_bs64.om"]
    assert "warnings" not in report["atc"]          # Ascend310: the docs list auto_tune_mode
    # run atc.sh with a stand-in atc: each command sees REPEAT_TUNE=True, as pth2om.sh's did
    bin_dir, log = tmp_path / "bin", tmp_path / "seen.txt"
    bin_dir.mkdir()
    fake = bin_dir / "atc"
    fake.write_text(f"#!/bin/sh\necho \"$REPEAT_TUNE $*\" >> '{log}'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("REPEAT_TUNE", raising=False)
    subprocess.run(["bash", str(script)], check=True, timeout=60)
    seen = log.read_text().splitlines()
    assert [line.split()[0] for line in seen] == ["True"] * 3
    assert ["--auto_tune_mode=RL,GA" in line for line in seen] == [True, True, False]
