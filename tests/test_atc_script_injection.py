"""atc.sh cannot be hijacked (issue 13): every spec-derived string in atc.sh is quoted, comment
lines never carry a newline, and strings with control characters are refused at the spec line.

Each emitted atc.sh is run by bash with a stand-in `atc` on PATH that records its argv: the
recorded argv must be exactly the command gancc meant, and no injected command may run (each
payload would create a marker file)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from gancc.errors import SpecError
from gancc.spec import parse_text
from gancc.stages import atc

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def payloads(marker: Path) -> list[str]:
    """Strings that run `touch marker` if they reach the shell unquoted (or end a comment)."""
    m = str(marker)
    return [f"a\ntouch {m}", f"a$(touch {m})", f"a`touch {m}`", f"a; touch {m}",
            f'a" ; touch {m} ; "', f"a' ; touch {m} ; '", f"a\r\ntouch {m}", f"a\\\ntouch {m}",
            f"a && touch {m} #", f"a|touch {m}", f"a\u2028touch {m}"]


def graph() -> onnx.ModelProto:
    x = helper.make_tensor_value_info("img", TensorProto.FLOAT, ["N", 3, 8, 8])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3, 8, 8])
    node = helper.make_node("Relu", ["img"], ["out"], name="Relu_1")
    return helper.make_model(helper.make_graph([node], "g", [x], [y]),
                             opset_imports=[helper.make_opsetid("", 11)])


def spec_model(atc_lines: str = ""):
    text = ('model m {\n    source onnx "m.onnx"\n    input img: float32[N, 3, 8, 8] batch 1, 4\n'
            f'    output out\n    atc {{\n        soc_version Ascend310P3\n{atc_lines}\n    }}\n}}\n')
    return parse_text(text, "t.gan").models[0]


@pytest.fixture
def stand_in_atc(tmp_path: Path, monkeypatch) -> Path:
    """A fake `atc` first on PATH; each call appends its argv (JSON) to the returned log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "argv.jsonl"
    fake = bin_dir / "atc"
    # sh, not Python: the tests run it a few dozen times. NUL ends each argument, END a call.
    fake.write_text(f"#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done >> '{log}'\n"
                    f"printf 'END\\0' >> '{log}'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def run_script(commands: list[atc.AtcCommand], folder: Path, spec_path: str, log: Path,
               model=None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "atc.sh"
    atc.write_script(commands, script, model or spec_model(), spec_path)
    if log.exists():
        log.unlink()
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True,
                          env=dict(os.environ), timeout=60)
    assert proc.returncode == 0, proc.stderr
    recorded, call = [], []
    for arg in log.read_bytes().decode("utf-8").split("\0")[:-1]:
        if arg == "END":
            recorded, call = recorded + [call], []
        else:
            call.append(arg)
    assert recorded == [list(c.argv[1:]) for c in commands]


def evil_commands(value: str) -> list[atc.AtcCommand]:
    """A typed option set with `value` in every string option, as the build renders it."""
    opts = atc.AtcOptionSet(
        model=f"{value}.onnx", output=value, soc_version=value, input_format="NCHW",
        input_shape=[(value, (1, 3, 8, 8))], out_nodes=(value, "out"),
        output_type_nodes=((value, "FP16"),), input_fp16_nodes=(value,),
        insert_op_conf=value, precision_mode=value, op_select_implmode=value,
        keep_dtype=value, fusion_switch_file=value, log=value,
        extra=(f"--{value}=1", f"--x={value}", value, f"--x;touch {value}=a b"))
    return [atc.AtcCommand(1, tuple(opts.argv()), value)]


def test_no_string_in_any_option_or_comment_runs(tmp_path: Path, stand_in_atc: Path):
    marker = tmp_path / "PWNED"
    for i, value in enumerate(payloads(marker)):
        run_script(evil_commands(value), tmp_path / f"case{i}", f"specs/{value}.gan", stand_in_atc)
        assert not marker.exists(), f"payload {value!r} ran"


def test_comment_lines_never_break(tmp_path: Path, stand_in_atc: Path):
    value = "x\ntouch PWNED"
    cmds = evil_commands(value)
    run_script(cmds, tmp_path / "c", value, stand_in_atc)
    comments = [line for line in (tmp_path / "c" / "atc.sh").read_text().split("\n")
                if line.startswith("#")]
    assert "from x\\ntouch PWNED." in comments[1]        # the spec path, escaped
    assert "# batch 1 -> x\\ntouch PWNED.om" in comments   # the --output value, escaped


@pytest.mark.parametrize("atc_lines", [
    'output "CycleGAN$(touch {m})"', 'output "a`touch {m}`"', 'output "a; touch {m}"',
    "output \"a' ; touch {m} ; '\"", 'output "a\\" ; touch {m} ; \\""',
    'out_nodes out\n        extra "--x;touch {m}=a b", "--y=$(touch {m})"',
    'keep_dtype "Relu_1", "OpType::$(touch {m})"',
])
def test_spec_strings_reach_atc_as_written(tmp_path: Path, stand_in_atc: Path, atc_lines: str):
    marker = tmp_path / "PWNED"
    model = spec_model(atc_lines.replace("{m}", str(marker)))
    commands = atc.atc_commands(model, graph(), "m.onnx", None, None)
    run_script(commands, tmp_path / "build", "t.gan", stand_in_atc, model)
    assert not marker.exists()


@pytest.mark.parametrize("atc_lines", [
    'output "a\\ntouch x"', 'output "a\\tb"', 'keep_dtype "Relu_1\\nRelu_2"',
    'log "error\\n"', 'extra "--x=\\n"',
])
def test_control_characters_are_refused_at_the_spec_line(atc_lines: str):
    with pytest.raises(SpecError) as info:
        spec_model(atc_lines)
    assert "control character" in info.value.message
    assert info.value.span.line in (6, 7)


@pytest.mark.parametrize("statement", ['source onnx "m\u000b.onnx"',
                                       'source onnx "m\u0007x.onnx"'])
def test_control_characters_in_paths_are_refused(statement: str):
    text = (f"model m {{\n    {statement}\n    input img: float32[N, 3, 8, 8] batch 1\n"
            "    output out\n}\n")
    with pytest.raises(SpecError) as info:
        parse_text(text, "t.gan")
    assert "control character" in info.value.message and info.value.span.line == 2


def test_aipp_config_header_keeps_a_hostile_spec_path_in_its_comment(tmp_path: Path):
    from gancc import aipp as aipp_msg

    model = spec_model()
    path = tmp_path / "aipp.cfg"
    atc.write_aipp(model, path, "x\ninput_format: RGB888_U8\naipp_op {", [
        {"aipp_mode": "static", "input_format": "YUV420SP_U8"}])
    assert aipp_msg.parse_config(path.read_text()) == [
        {"aipp_mode": "static", "input_format": "YUV420SP_U8"}]


@pytest.mark.parametrize("i", range(len(payloads(Path("m")))))
def test_env_values_and_batch_options_reach_atc_as_written(tmp_path: Path, stand_in_atc: Path,
                                                          i: int):
    """`env NAME "value"` (exported at the top of atc.sh) and a `batch N { }` block's strings
    (issue 14): the value atc sees is the spec's, byte for byte, and nothing else runs."""
    marker = tmp_path / "PWNED"
    value = payloads(marker)[i]
    quoted = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    if any(ord(ch) < 32 or ch == "\u2028" for ch in value):   # refused at the spec line
        with pytest.raises(SpecError, match="control character"):
            spec_model(f'        env GANCC_T "{quoted}"')
        return
    model = spec_model(f'        env GANCC_T "{quoted}"\n'
                       f'        batch 4 {{ extra "--x={quoted}" }}')
    seen = tmp_path / "env.bin"
    (stand_in_atc.parent / "bin" / "atc").write_text(
        f"#!/bin/sh\nprintf '%s\\0' \"$GANCC_T\" >> '{seen}'\n"
        f"for a in \"$@\"; do printf '%s\\0' \"$a\"; done >> '{stand_in_atc}'\n"
        f"printf 'END\\0' >> '{stand_in_atc}'\n")
    commands = atc.atc_commands(model, graph(), "m.onnx", None, None)
    assert commands[1].argv[-2] == f"--x={value}" and "--x=" not in " ".join(commands[0].argv)
    run_script(commands, tmp_path / "build", "t.gan", stand_in_atc, model)
    assert seen.read_bytes().decode("utf-8").split("\0")[:-1] == [value, value]
    assert not marker.exists()


@pytest.mark.parametrize("name", ["A-B", "1A", "A.B", "PATH", "IFS", "BASH_ENV"])
def test_env_names_are_shell_identifiers_gancc_allows(name: str):
    with pytest.raises(SpecError) as info:
        spec_model(f'        env {name} "x"')
    assert info.value.span.line == 7 and ("env" in info.value.message
                                          or info.value.message.startswith("unexpected"))
