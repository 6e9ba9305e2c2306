"""Benchmarks 1 and 2: `gancc build specs/cyclegan.gan` against the hand workflow.

1. cold build: both CycleGAN generators, validation off, empty build cache, against the hand
   workflow doing the same work (bench/hand_workflow/: export script at opset 11 with the
   legacy exporter, `python -m onnxsim in out`, the Pad-patching script), each step a whole
   process, as a user runs them;
2. warm rebuild after changing only the rewrite block (`fuse-pad-into-conv` gets an option),
   against the same change in the hand workflow, which has no record of what is still up to
   date and so runs again in full. Re-running only the patch scripts (what a careful user
   might do by hand) is printed too, for information.

Everything is measured side by side in the same run: wall time with time.perf_counter
around subprocess.run, and peak RSS of each process (bench/measure.py); a workflow's peak
is the largest of its processes. Both sides use the same seeded random weights (no
checkpoint is needed). `--repeat N` keeps the best of N runs of each.

    python bench/bench_build.py [--repeat 1] [--keep]

Prints a table, and one `RESULT {json}` line per figure for bench/run_all.py.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from measure import Measured, result_line, run  # noqa: E402

GENERATORS = (("G_A", 0, "cyclegan_g_a"), ("G_B", 1, "cyclegan_g_b"))   # seeds as in the spec


def hand_steps(out: Path, patch_only: bool = False) -> list[list[str]]:
    py = sys.executable
    steps = []
    for g, seed, _ in GENERATORS:
        if not patch_only:
            steps.append([py, str(HERE / "hand_workflow" / "export_onnx.py"), g,
                          str(out / f"{g}.onnx"), "--seed", str(seed)])
            steps.append([py, "-m", "onnxsim", str(out / f"{g}.onnx"), str(out / f"{g}_sim.onnx")])
        steps.append([py, str(HERE / "hand_workflow" / "patch_pads.py"), str(out / f"{g}_sim.onnx"),
                      str(out / f"{g}_om_ready.onnx")])
    return steps


def run_steps(steps: list[list[str]], env: dict[str, str]) -> Measured:
    total = Measured(0.0, 0.0, 0)
    for step in steps:
        total = total + run(step, env=env)
    return total


def edit_rewrite_block(text: str, edited: bool) -> str:
    """The spec with (or without) an option on every `fuse-pad-into-conv` step."""
    plain = re.sub(r"^(\s*)fuse-pad-into-conv\{max_pad=64\}", r"\1fuse-pad-into-conv", text,
                   flags=re.M)
    if not edited:
        return plain
    new, count = re.subn(r"^(\s*)fuse-pad-into-conv\b", r"\1fuse-pad-into-conv{max_pad=64}",
                         plain, flags=re.M)
    if count == 0:
        raise SystemExit("specs/cyclegan.gan has no fuse-pad-into-conv step to edit")
    return new


def cache_status(out: Path) -> list[str]:
    return [json.loads((out / name / "report.json").read_text())["cache"]["export"]
            for _, _, name in GENERATORS]


def best(runs: list[Measured]) -> Measured:
    return min(runs, key=lambda m: m.wall_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="gancc-bench-build-"))
    env = dict(os.environ, GANCC_CACHE_DIR=str(work / "cache"), PYTHONPATH=str(REPO))
    spec = work / "cyclegan.gan"
    original = (REPO / "specs" / "cyclegan.gan").read_text()
    gancc = [sys.executable, "-m", "gancc", "build", str(spec), "--no-validate", "--no-atc",
             "-q", "-o", str(work / "gancc-out")]
    hand_out = work / "hand-out"
    hand_out.mkdir()
    # warm the page cache for both sides (torch, onnx, onnxruntime, onnxsim), not timed
    subprocess.run([sys.executable, "-c", "import torch, onnx, onnxruntime, onnxsim"], env=env,
                   check=True)

    runs: dict[str, list[Measured]] = {k: [] for k in
                                       ("hand_cold", "gancc_cold", "gancc_warm", "hand_warm",
                                        "hand_patch")}
    try:
        for i in range(args.repeat):
            print(f"run {i + 1}/{args.repeat}: hand workflow (cold)", file=sys.stderr, flush=True)
            runs["hand_cold"].append(run_steps(hand_steps(hand_out), env))
            print("  gancc build (cold: empty cache)", file=sys.stderr, flush=True)
            shutil.rmtree(work / "cache", ignore_errors=True)
            spec.write_text(edit_rewrite_block(original, edited=False))
            runs["gancc_cold"].append(run(gancc, env=env))
            assert cache_status(work / "gancc-out") == ["stored", "stored"]
            print("  gancc build (warm: only the rewrite block changed)", file=sys.stderr,
                  flush=True)
            spec.write_text(edit_rewrite_block(original, edited=True))
            runs["gancc_warm"].append(run(gancc, env=env))
            status = cache_status(work / "gancc-out")
            assert status == ["hit", "hit"], status
            print("  hand workflow (rerun after editing the patch script)", file=sys.stderr,
                  flush=True)
            runs["hand_warm"].append(run_steps(hand_steps(hand_out), env))
            runs["hand_patch"].append(run_steps(hand_steps(hand_out, patch_only=True), env))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work folder kept: {work}", file=sys.stderr)

    b = {k: best(v) for k, v in runs.items()}
    rows = [
        {"bench": "build", "item": "cold build, both CycleGAN generators, validation off",
         "gancc": b["gancc_cold"].wall_s, "baseline": b["hand_cold"].wall_s, "unit": "s",
         "baseline_name": "hand workflow: export + onnxsim + patch, 6 processes",
         "ratio": b["gancc_cold"].wall_s / b["hand_cold"].wall_s, "target": "<= 0.6x",
         "met": b["gancc_cold"].wall_s / b["hand_cold"].wall_s <= 0.6,
         "gancc_peak_mib": b["gancc_cold"].peak_mib, "baseline_peak_mib": b["hand_cold"].peak_mib},
        {"bench": "build", "item": "warm rebuild, only the rewrite block changed",
         "gancc": b["gancc_warm"].wall_s, "baseline": b["hand_warm"].wall_s, "unit": "s",
         "baseline_name": "hand workflow rerun in full",
         "ratio": b["gancc_warm"].wall_s / b["hand_warm"].wall_s, "target": "<= 0.1x",
         "met": b["gancc_warm"].wall_s / b["hand_warm"].wall_s <= 0.1,
         "gancc_peak_mib": b["gancc_warm"].peak_mib, "baseline_peak_mib": b["hand_warm"].peak_mib},
        {"bench": "build", "item": "warm rebuild vs re-running only the patch scripts (info)",
         "gancc": b["gancc_warm"].wall_s, "baseline": b["hand_patch"].wall_s, "unit": "s",
         "baseline_name": "patch_pads.py x2 only",
         "ratio": b["gancc_warm"].wall_s / b["hand_patch"].wall_s, "target": None, "met": None,
         "gancc_peak_mib": b["gancc_warm"].peak_mib, "baseline_peak_mib": b["hand_patch"].peak_mib},
    ]
    for row in rows:
        print(result_line(row), flush=True)
    print()
    print(f"{'':52} {'gancc':>8} {'baseline':>9} {'ratio':>7} {'target':>8}   "
          "peak MiB gancc / base")
    for r in rows:
        print(f"{r['item']:52} {r['gancc']:7.2f}s {r['baseline']:8.2f}s {r['ratio']:6.2f}x "
              f"{r['target'] or '':>8}   {r['gancc_peak_mib']:6.0f} / {r['baseline_peak_mib']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
