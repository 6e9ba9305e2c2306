"""Output that fits the shell: with stdout a pipe, listings are plain text with every name
whole (no box drawing, no '…', no colour); results on stdout, progress on stderr; `-q` prints
nothing but errors; exit statuses as the README documents; did-you-mean on commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
import onnx.parser

from gancc.cli import main
from gancc.passes import registry

BOX = set("─━│┃┏┓┗┛┡┩╇┳┻╋┌┐└┘├┤┬┴┼═║╔╗╚╝╭╮╯╰…")
REPO = Path(__file__).resolve().parents[1]


def gancc(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """`gancc ARGS` in a child process, stdout and stderr each a pipe (as `| grep` makes it)."""
    env = {**os.environ, "COLUMNS": "60"}     # a narrow terminal would cut names before
    return subprocess.run([sys.executable, "-m", "gancc", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


def assert_plain(text: str) -> None:
    assert not BOX & set(text), f"box drawing or '…' in piped output:\n{text}"
    assert "\x1b[" not in text, "colour codes in piped output"


def test_passes_piped_lists_every_name_whole():
    done = gancc("passes")
    assert done.returncode == 0, done.stderr
    assert_plain(done.stdout)
    first_words = [line.split()[0] for line in done.stdout.splitlines()[1:]]
    assert first_words == list(registry.all_rewrites())
    assert "conv-transpose-kernel-shape" in first_words      # cut to `conv-transpose-kerne…` before
    assert done.stdout.splitlines()[0].split() == ["name", "kind", "options", "summary"]
    listed = json.loads(gancc("passes", "--json").stdout)
    assert [row["name"] for row in listed] == first_words


def test_passes_describe_piped_is_not_wrapped():
    done = gancc("passes", "fuse-pad-into-conv")
    assert done.returncode == 0 and done.stderr == ""
    assert_plain(done.stdout)
    assert done.stdout.startswith("fuse-pad-into-conv  (exact, anchor: Pad, defined at ")


LONG_NAMES = """
<ir_version: 8, opset_import: ["" : 11]>
g (float[1,3,8,8] x, float[4,3,3,3] w) => (float[1,4,8,8] y, float[1,3,10,10] e)
<int64[8] one = {0, 0, 1, 1, 0, 0, 1, 1}>
{
    [generator_model_1_reflection_pad_first_block_zero] z = Pad (x, one)
    [generator_model_1_conv_first_block] y = Conv (z, w)
    [generator_model_1_reflection_pad_second_block_edge] e = Pad <mode = "edge"> (x, one)
}
"""


def test_explain_piped_keeps_node_names(tmp_path: Path):
    path = tmp_path / "long.onnx"
    onnx.save(onnx.parser.parse_model(LONG_NAMES), str(path))
    done = gancc("explain", "fuse-pad-into-conv", str(path))
    assert done.returncode == 0, done.stderr
    assert_plain(done.stdout)
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"fuse-pad-into-conv on {path}  (anchor Pad, ")
    assert lines[1].split() == ["node", "op", "decision", "why"]
    rows = [line.split(None, 3) for line in lines[2:4]]
    assert rows[0][:3] == ["generator_model_1_reflection_pad_first_block_zero", "Pad", "fired"]
    assert rows[1][:3] == ["generator_model_1_reflection_pad_second_block_edge", "Pad",
                           "declined"]
    assert "2 candidate(s): 1 fired, 1 declined" in done.stdout


def test_build_result_on_stdout_progress_on_stderr(small_spec: Path, tmp_path: Path, capsys):
    out = tmp_path / "out"
    assert main(["build", str(small_spec), "-o", str(out), "--no-atc", "--no-validate"]) == 0
    captured = capsys.readouterr()
    line = f"built small -> {out / 'small'}/ (small.onnx, atc.sh, report.json, report.html)"
    assert captured.out == line + "\n"                     # the result, whole, on one line
    assert "export" in captured.err and "built" not in captured.err
    assert "warning (RANDOM WEIGHTS)" in captured.err        # plain in a log, not a panel
    assert_plain(captured.err.replace("✓", ""))

    assert main(["build", str(small_spec), "-o", str(out), "--no-atc", "--no-validate",
                 "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_quiet_build_still_prints_errors(tmp_path: Path, capsys):
    from tests.conftest import write_spec

    spec = write_spec(tmp_path, fallback="")
    assert main(["build", str(spec), "-o", str(tmp_path / "o"), "--no-atc", "-q"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "error:" in captured.err


def test_usage_errors_exit_2_with_a_hint():
    done = gancc("bild", "specs/cyclegan.gan")
    assert done.returncode == 2 and done.stdout == ""
    assert "did you mean 'build'?" in done.stderr
    done = gancc("aipp")
    assert done.returncode == 2 and "gancc aipp needs an action" in done.stderr
    done = gancc("aipp", "improt", "x.cfg")
    assert done.returncode == 2 and "did you mean 'import'?" in done.stderr
    done = gancc("cache", "clera")
    assert done.returncode == 2 and "did you mean 'clear'?" in done.stderr


def test_usage_errors_in_process(small_spec: Path, capsys):
    assert main(["build", str(small_spec), "--samples", "0"]) == 2
    assert "--samples must be between 1 and 64" in capsys.readouterr().err
    assert main([]) == 2


def test_diff_html_writes_the_page_only(tmp_path: Path, capsys):
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    model = onnx.parser.parse_model(LONG_NAMES)
    onnx.save(model, str(a))
    model.graph.node[1].attribute.append(onnx.helper.make_attribute("group", 1))
    onnx.save(model, str(b))
    page = tmp_path / "d.html"
    assert main(["diff", str(a), str(b), "--html", str(page)]) == 1
    assert capsys.readouterr().out == f"wrote {page}\n"
    assert page.read_text().lstrip().lower().startswith("<!doctype html")
