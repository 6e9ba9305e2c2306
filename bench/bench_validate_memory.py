"""Benchmark: memory of `gancc validate` on Pix2pixHD-size samples with 2 Ray workers.

The issue's bound: Pix2pixHD-size samples (1024x2048, 36 label channels) fit a 24 GiB
machine with 2 workers. This measures it instead of estimating it:

1. builds specs/pix2pixhd.gan at full size (seeded random weights where the checkpoint is
   absent; validation off) into a temp folder;
2. runs `gancc validate specs/pix2pixhd.gan --count N --workers 2` (the default fp16
   prediction on, as users run it) on a local Ray instance, into an empty output folder;
3. every 0.5 s sums the proportional set size (PSS, /proc/PID/smaps_rollup: shared
   libraries counted once across processes, unlike RSS) of the whole process tree: the
   driver, Ray's GCS and raylet, and the workers. The peak of that sum, and the peak of the
   largest single worker, are the figures.

    python bench/bench_validate_memory.py [--count 2] [--workers 2]

Prints a table and one `RESULT {json}` line. Not a test: it takes minutes and GiBs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "specs" / "pix2pixhd.gan"
MODEL = "pix2pixhd"
BUDGET_GIB = 24.0


def children() -> dict[int, int]:
    """pid -> parent pid, for every process this user can see."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:   # the process ended between listdir and read
            continue
        # the command name is in parentheses and may hold spaces: split after the last ')'
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def tree(root: int) -> list[int]:
    parents = children()
    found, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, ppid in parents.items() if ppid in frontier]
        found += frontier
    return found


def pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""


class Sampler:
    """The process tree's summed PSS and its largest Ray worker, every half second."""

    def __init__(self, root: int):
        self.root, self.peak_total, self.peak_worker = root, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            sizes = {pid: pss_kib(pid) for pid in tree(self.root)}
            self.peak_total = max(self.peak_total, sum(sizes.values()))
            workers = [k for pid, k in sizes.items() if name(pid).startswith("ray::")]
            self.peak_worker = max([self.peak_worker, *workers])
            self._stop.wait(0.5)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    gancc = [sys.executable, "-m", "gancc"]
    with tempfile.TemporaryDirectory(prefix="gancc-bench-vmem-") as tmp:
        env = {**os.environ, "GANCC_CACHE_DIR": str(Path(tmp) / "cache")}
        print("building pix2pixhd at full size (validation off) ...", file=sys.stderr)
        subprocess.run([*gancc, "build", str(SPEC), "--no-atc", "--no-validate", "-q",
                        "-o", str(Path(tmp) / "build")], check=True, env=env)
        cmd = [*gancc, "validate", str(SPEC), "--count", str(args.count), "--workers",
               str(args.workers), "--build-dir", str(Path(tmp) / "build"),
               "--out", str(Path(tmp) / "validation")]
        print("running:", " ".join(cmd[2:]), file=sys.stderr)
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
        sampler = Sampler(proc.pid)
        rc = proc.wait()
        sampler.stop()
        wall = time.perf_counter() - start
        summary = json.loads((Path(tmp) / "validation" / "validation.json").read_text()) \
            if rc == 0 else {}
    total, worker = sampler.peak_total / 2**20, sampler.peak_worker / 2**20
    print(f"\n| figure | value |\n|---|---|\n| samples, workers | {args.count}, {args.workers} |"
          f"\n| wall | {wall:.1f} s (exit {rc}) |\n| peak PSS, whole process tree | {total:.2f} GiB |"
          f"\n| peak PSS, largest worker | {worker:.2f} GiB |"
          f"\n| budget | {BUDGET_GIB:.0f} GiB: {'fits' if total <= BUDGET_GIB else 'DOES NOT FIT'} |")
    print("RESULT " + json.dumps({
        "bench": "validate-memory", "item": f"gancc validate pix2pixhd, {args.count} samples, "
        f"{args.workers} workers: peak PSS of the process tree", "gancc": total, "unit": "GiB",
        "baseline": BUDGET_GIB, "baseline_name": "a 24 GiB machine", "ratio": total / BUDGET_GIB,
        "target": "<= 1x", "met": rc == 0 and total <= BUDGET_GIB, "worker_peak_gib": worker,
        "wall_s": wall, "rows": len(summary.get("samples", []))}))
    return rc


if __name__ == "__main__":
    sys.exit(main())
