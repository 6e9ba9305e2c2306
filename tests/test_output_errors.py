"""Output folders that cannot be written are the environment's problem: exit 1 naming the
path and what to do, never "a bug in gancc"; atc's output and a relative --atc stay sane."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from gancc.cli import main
from tests.test_crash_consistency import SPEC, tiny_onnx


def run_cli(*args) -> int:
    return main([str(a) for a in args])


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    tiny_onnx(tmp_path / "tiny.onnx", 1.0)
    path = tmp_path / "tiny.gan"
    path.write_text(SPEC.format(name="tiny"), encoding="utf-8")
    return path


def build(spec: Path, out: Path, *extra) -> int:
    return run_cli("build", spec, "-o", out, "--no-atc", "--no-validate", *extra)


def assert_environment_error(err: str, path: Path, advice: str) -> None:
    assert "bug in gancc" not in err and "Traceback" not in err
    first = err.strip().splitlines()[-2] if "hint:" in err else err.strip().splitlines()[-1]
    assert str(path) in first, err
    assert advice in err, err


def test_a_file_where_the_output_folder_should_be(spec: Path, tmp_path: Path, capsys):
    blocker = tmp_path / "out"
    blocker.write_text("not a folder")
    assert build(spec, blocker) == 1
    assert_environment_error(capsys.readouterr().err, blocker, "a file stands where a folder")
    assert build(spec, blocker / "deeper") == 1          # not a directory, further down
    assert_environment_error(capsys.readouterr().err, blocker, "build elsewhere with -o DIR")


@pytest.mark.parametrize("code, advice", [(errno.ENOSPC, "free some space"),
                                          (errno.EROFS, "make the output folder writable"),
                                          (errno.EACCES, "make the output folder writable")])
def test_a_write_that_fails_for_the_disk_keeps_the_previous_build(spec: Path, tmp_path: Path,
                                                                  monkeypatch, capsys,
                                                                  code, advice):
    from gancc import onnx_io

    out = tmp_path / "out"
    assert build(spec, out) == 0
    before = (out / "tiny" / "report.json").read_bytes()
    capsys.readouterr()

    def disk_trouble(model, path, *args, **kwargs):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(onnx_io, "save_onnx", disk_trouble)
    assert build(spec, out) == 1
    err = capsys.readouterr().err
    assert_environment_error(err, out / ".gancc" / "staging" / "tiny", advice)
    assert os.strerror(code) in err
    assert (out / "tiny" / "report.json").read_bytes() == before


def test_a_report_that_cannot_be_written_is_not_a_bug(spec: Path, tmp_path: Path,
                                                      monkeypatch, capsys):
    from gancc.build import pipeline

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "report.json")

    monkeypatch.setattr(pipeline, "write_report", full_disk)
    assert build(spec, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "bug in gancc" not in err
    assert not (tmp_path / "out" / "tiny").exists()


@pytest.mark.parametrize("output", ["/tmp/elsewhere", "../up", "om/../../up", "~/x"])
def test_atc_output_outside_the_build_folder_is_refused_at_its_line(tmp_path: Path, capsys,
                                                                     output):
    text = SPEC.format(name="tiny").replace("soc_version Ascend310P3",
                                            f'soc_version Ascend310P3 output "{output}"')
    path = tmp_path / "t.gan"
    path.write_text(text, encoding="utf-8")
    tiny_onnx(tmp_path / "tiny.onnx", 1.0)
    for command in (["check", path], ["build", path, "-o", tmp_path / "out", "--no-atc"]):
        assert run_cli(*command) == 1
        err = capsys.readouterr().err
        assert f"{path}:5:" in err and "leaves the model's build folder" in err


def test_a_relative_atc_path_is_the_users(spec: Path, tmp_path: Path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    atc = bindir / "atc"
    atc.write_text("#!/usr/bin/env bash\n"
                   'for a in "$@"; do case $a in --output=*) touch "${a#--output=}.om";; esac; done\n'
                   'echo "ATC run success, welcome to the next use."\n')
    atc.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    assert run_cli("build", spec, "-o", "out", "--no-validate", "--atc", "bin/atc") == 0
    assert list((tmp_path / "out" / "tiny").glob("*.om"))


def test_opt_into_a_path_through_a_file_is_exit_1(tmp_path: Path, capsys):
    tiny_onnx(tmp_path / "tiny.onnx", 1.0)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert run_cli("opt", tmp_path / "tiny.onnx", "--passes", "fuse-pad-into-conv",
                   "-o", blocker / "out.onnx") == 1
    err = capsys.readouterr().err
    assert str(blocker) in err and "bug in gancc" not in err
