"""The exit-status policy (README.md, "Exit status"): 0 success, 1 input or environment,
2 usage, 70 only for a gancc bug; output into a closed pipe ends quietly with 141."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_into_closed_pipe(*argv: str) -> subprocess.CompletedProcess:
    """Run `python -m gancc argv` with stdout a pipe whose reader is already gone (as after
    `| head -1` has read its line): every write fails with EPIPE, deterministically."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "gancc", *argv], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, cwd=REPO, timeout=120)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("argv", [("aipp", "presets"), ("passes",)])
def test_output_into_a_closed_pipe_ends_quietly(argv: tuple[str, ...]):
    proc = run_into_closed_pipe(*argv)
    assert proc.returncode == 141
    assert proc.stderr == ""


def test_output_into_an_open_pipe_is_complete():
    proc = subprocess.run([sys.executable, "-m", "gancc", "aipp", "presets"], capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0 and "yuv2rgb_jpeg" in proc.stdout
