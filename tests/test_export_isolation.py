"""The export runs in a forked child (gancc/stages/isolate.py): a native crash while tracing a
user's generator is an error naming the model and the signal (exit 1), never a dead gancc,
and the previous build's artifacts stay; a Python error reaches the user exactly as it does
when the export runs in-process."""

from __future__ import annotations

import errno
import os
import textwrap
from pathlib import Path

import onnx
import pytest

from gancc.cli import main
from gancc.errors import GanccError, Span, SpecError
from gancc.stages import isolate

NETS = '''
import os
import signal

import torch
from torch import nn


class Crashy(nn.Module):
    """Runs normally, except while torch's exporter traces it, when it does `how`."""

    def __init__(self, how: str = "none"):
        super().__init__()
        self.how = how
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        if torch.onnx.is_in_onnx_export():
            if self.how == "segv":
                os.kill(os.getpid(), signal.SIGSEGV)
            elif self.how == "fpe":
                os.kill(os.getpid(), signal.SIGFPE)
            elif self.how == "abort":
                os.abort()
            elif self.how == "raise":
                raise ValueError("the forward refuses to be traced")
            elif self.how == "say-and-abort":      # as a C++ assertion does, on fd 2
                os.write(2, b"kernel check failed: widths 16 and 17 differ\\n")
                os.abort()
            elif self.how == "chatty":
                print("hello from the forward")
                os.write(2, b"Torch IR graph at exception: graph(...)\\n")
                raise ValueError("the forward refuses to be traced")
        return torch.tanh(self.conv(x))
'''


def _spec(folder: Path, how: str) -> Path:
    (folder / "nets.py").write_text(NETS)
    spec = folder / "crashy.gan"
    spec.write_text(textwrap.dedent(f"""\
        model crashy {{
            source pytorch {{
                arch "nets.py:Crashy"(how="{how}")
                weights "absent.pth" else random(seed=0)
            }}
            input img: float32[1, 3, 16, 16]
            output out
            atc {{ soc_version Ascend310P3 }}
        }}
        """))
    return spec


def _build(spec: Path, out: Path, *extra: str) -> int:
    return main(["build", str(spec), "-o", str(out), "--no-cache", "--no-atc", "-q", *extra])


@pytest.mark.parametrize("how, signal_name", [("segv", "SIGSEGV"), ("fpe", "SIGFPE"),
                                              ("abort", "SIGABRT")])
def test_a_native_crash_while_tracing_is_an_error_naming_model_and_signal(
        tmp_path, capsys, how, signal_name):
    out = tmp_path / "build"
    assert _build(_spec(tmp_path, "none"), out) == 0
    before = (out / "crashy" / "crashy.onnx").read_bytes()
    capsys.readouterr()

    assert _build(_spec(tmp_path, how), out) == 1
    err = capsys.readouterr().err
    assert f"the exporter crashed ({signal_name}) while tracing model 'crashy'" in err
    assert "GANCC_EXPORT_IN_PROCESS=1" in err
    assert "Traceback" not in err and "internal error" not in err
    # the earlier build is untouched, still a loadable graph, and no temporary file is left
    assert (out / "crashy" / "crashy.onnx").read_bytes() == before
    onnx.checker.check_model(onnx.load(str(out / "crashy" / "crashy.onnx")))
    leftovers = [p for p in out.rglob(".export-*")]
    assert leftovers == []


def test_a_crash_shows_what_the_child_printed_last(tmp_path, capsys):
    assert _build(_spec(tmp_path, "say-and-abort"), tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "the exporter crashed (SIGABRT) while tracing model 'crashy'; it printed last:" in err
    assert "kernel check failed: widths 16 and 17 differ" in err


def test_what_the_export_prints_stays_out_of_the_terminal(tmp_path, capfd):
    """torch's exporter dumps its IR graph on fd 2 for each failed attempt; gancc's own
    message says what failed."""
    assert _build(_spec(tmp_path, "chatty"), tmp_path / "out") == 1
    printed = capfd.readouterr()
    assert "ValueError: the forward refuses to be traced" in printed.err
    assert "hello from the forward" not in printed.out + printed.err
    assert "Torch IR graph" not in printed.out + printed.err


def test_a_python_error_while_tracing_reads_the_same_isolated_or_not(tmp_path, capsys,
                                                                     monkeypatch):
    spec = _spec(tmp_path, "raise")
    assert _build(spec, tmp_path / "a") == 1
    isolated = capsys.readouterr().err
    monkeypatch.setenv(isolate.IN_PROCESS_ENV, "1")
    assert _build(spec, tmp_path / "b") == 1
    in_process = capsys.readouterr().err
    assert "ONNX export failed at opset 11: ValueError: the forward refuses to be traced" \
        in isolated
    assert isolated.replace(str(tmp_path / "a"), "OUT") == \
        in_process.replace(str(tmp_path / "b"), "OUT")


def test_an_isolated_build_gives_the_same_graph_as_an_in_process_one(tmp_path, monkeypatch):
    spec = _spec(tmp_path, "none")
    assert _build(spec, tmp_path / "a") == 0
    monkeypatch.setenv(isolate.IN_PROCESS_ENV, "1")
    assert _build(spec, tmp_path / "b") == 0
    graphs = [onnx.load(str(tmp_path / d / "crashy" / "crashy.onnx")) for d in "ab"]
    assert graphs[0].SerializeToString(deterministic=True) == \
        graphs[1].SerializeToString(deterministic=True)


def _raise(err: BaseException):
    def work():
        raise err
    return work


def test_the_child_result_comes_back():
    assert isolate.run_forked(lambda: {"pid": os.getpid(), "x": [1, 2]}, "testing", "h")["x"] \
        == [1, 2]
    assert isolate.run_forked(os.getpid, "testing", "h") != os.getpid()


def test_a_spec_error_in_the_child_keeps_its_place_and_hint():
    span = Span("m.gan", 3, 5, 3, 9)
    original = SpecError("bad value", span, hint="write a good one", source="a\nb\nc  xxxx\n")
    with pytest.raises(SpecError) as raised:
        isolate.run_forked(_raise(original), "testing", "h")
    assert raised.value.render() == original.render()
    assert raised.value.span == span and raised.value.hint == "write a good one"


def test_an_os_error_in_the_child_keeps_its_errno_and_path():
    with pytest.raises(OSError) as raised:
        isolate.run_forked(_raise(OSError(errno.ENOSPC, "No space left on device", "/x/y")),
                           "testing", "h")
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == "/x/y"


def test_a_bug_in_the_child_stays_a_bug_with_its_traceback():
    with pytest.raises(KeyError) as raised:
        isolate.run_forked(_raise(KeyError("k")), "testing", "h")
    assert "raised in the export's child process" in raised.value.__notes__[0]
    assert "KeyError" in raised.value.__notes__[0]


def test_a_child_that_exits_without_a_result_is_an_error():
    with pytest.raises(GanccError, match=r"ended \(exit status 3\) without a result while "
                                         r"testing"):
        isolate.run_forked(lambda: os._exit(3), "testing", "h")
