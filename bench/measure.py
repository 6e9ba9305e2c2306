"""Run a command as a whole process and measure it: wall time and peak resident memory.

A small Python wrapper process starts the command, times it with time.perf_counter around
subprocess.run, and reads the child's peak RSS from resource.getrusage(RUSAGE_CHILDREN)
(its only child, so the figure is that command's own). The wrapper's start-up is not in the
time. Used by the benchmarks in this folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

_WRAPPER = r"""
import json, resource, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = time.perf_counter() - start
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss      # KiB on Linux
with open(sys.argv[1], "w") as f:
    json.dump({"rc": proc.returncode, "wall_s": wall, "peak_kib": peak_kib,
               "stderr": proc.stderr.decode(errors="replace")[-4000:]}, f)
"""


@dataclass
class Measured:
    wall_s: float
    peak_mib: float
    rc: int
    stderr: str = ""

    def __add__(self, other: "Measured") -> "Measured":
        """Steps run one after another: times add up, the peak is the larger one."""
        return Measured(self.wall_s + other.wall_s, max(self.peak_mib, other.peak_mib),
                        self.rc or other.rc, self.stderr + other.stderr)


def run(cmd: list[str], env: dict[str, str] | None = None, cwd: str | Path | None = None
        ) -> Measured:
    fd, out = tempfile.mkstemp(prefix="gancc-bench-", suffix=".json")
    os.close(fd)
    try:
        subprocess.run([sys.executable, "-c", _WRAPPER, out, *map(str, cmd)],
                       env=env, cwd=cwd, check=False)
        data = json.loads(Path(out).read_text())
    finally:
        Path(out).unlink(missing_ok=True)
    result = Measured(data["wall_s"], data["peak_kib"] / 1024, data["rc"], data["stderr"])
    if result.rc != 0:
        raise RuntimeError(f"command failed (exit {result.rc}): {' '.join(map(str, cmd))}\n"
                           f"{result.stderr}")
    return result


def result_line(row: dict) -> str:
    """The line bench/run_all.py collects: `RESULT {json}`."""
    return "RESULT " + json.dumps(row)
