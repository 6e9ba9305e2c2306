"""Iteration speed: rebuilds of specs/cyclegan.gan with the default command, as users run it
(validation and the fp16 prediction on), against the default cold build, side by side.

1. cold: `gancc build cyclegan.gan` with an empty build cache;
2. no change: the same command again (the final graphs are byte-identical: every figure
   comes from the build cache). Target: <= 0.1x the cold build;
3. rewrite-block edit: `fuse-pad-into-conv` gets an option (`max_pad=64`, which changes the
   rewrite's settings, so the pass reruns; the final graph's bytes may or may not change,
   so the bench also times an edit that does: dropping `fuse-pad-into-conv` altogether,
   which leaves 20 Pads in each graph and every figure to compute on the new graphs).
   Target: <= 0.25x the cold build.
4. the floor of that rebuild: the onnxruntime runs its figures need and nothing else (each
   new final graph on the validation inputs, in fp32 and as force_fp16 stores it), in one
   warm process: what no rebuild that computes those figures can beat.

Each run is a whole process (bench/measure.py: wall time and peak RSS). The three are
interleaved, `--repeat N` times, and the best of each is kept. For the rebuilds the
per-stage seconds of both models (report.json `timings`) say where the time goes.

    python bench/bench_iterate.py [--repeat 1] [--keep]

Prints a table, and one `RESULT {json}` line per figure for bench/run_all.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from bench_build import best, edit_rewrite_block  # noqa: E402
from measure import Measured, result_line, run  # noqa: E402

MODELS = ("cyclegan_g_a", "cyclegan_g_b")


def drop_fusion(text: str) -> str:
    """The spec without its `fuse-pad-into-conv` step: a final graph that differs."""
    lines = [line for line in text.splitlines(keepends=True)
             if not line.strip().startswith("fuse-pad-into-conv")]
    if len(lines) == len(text.splitlines()):
        raise SystemExit("specs/cyclegan.gan has no fuse-pad-into-conv step to drop")
    return "".join(lines)


def stage_seconds(out: Path) -> dict[str, float]:
    """Seconds per stage, both models together, from report.json."""
    total: dict[str, float] = {}
    for name in MODELS:
        report = json.loads((out / name / "report.json").read_text())
        for stage, seconds in report["timings"].items():
            total[stage] = total.get(stage, 0.0) + seconds
    return total


def figures_status(out: Path) -> list[str]:
    return [json.loads((out / name / "report.json").read_text())["cache"].get("figures", "?")
            for name in MODELS]


def where(seconds: dict[str, float], wall: float) -> str:
    """The timed stages that took longest, and the rest of the process's wall time (start-up,
    imports, cache reads, writing the graphs and reports, untimed stages)."""
    top = sorted(((k, v) for k, v in seconds.items() if v >= 0.05), key=lambda kv: -kv[1])[:4]
    rest = wall - sum(seconds.values())
    return ", ".join([f"{k} {v:.1f}s" for k, v in top] + [f"the rest {rest:.1f}s"])


# The onnxruntime work a graph-changing rebuild cannot avoid while it computes the figures:
# each new final graph run on the validation inputs in fp32 and as force_fp16 stores it, with
# gancc's own functions, one after another in one process whose imports are done (untimed).
_FLOOR = r"""
import json, sys, time
from gancc.spec import parse_file
from gancc.stages.predict import fp16_storage
from gancc.stages.runtime import output_names, run_onnx
from gancc.stages.validate import make_inputs
import onnx
spec, out, models = parse_file(sys.argv[1]), sys.argv[2], sys.argv[3:]
total = 0.0
for model in (m for m in spec.models if m.name in models):
    final = onnx.load(f"{out}/{model.name}/{model.name}.onnx")
    feeds = make_inputs(model, model.validation.samples, model.validation.seed)
    names = output_names(model, final)
    start = time.perf_counter()
    run_onnx(final, feeds, names)
    run_onnx(lambda: fp16_storage(final), feeds, names)
    total += time.perf_counter() - start
print(json.dumps(total))
"""


def floor_seconds(spec: Path, out: Path, env: dict[str, str]) -> float:
    proc = subprocess.run([sys.executable, "-c", _FLOOR, str(spec), str(out), *MODELS],
                          env=env, check=True, capture_output=True, text=True)
    return json.loads(proc.stdout.splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="gancc-bench-iterate-"))
    env = dict(os.environ, GANCC_CACHE_DIR=str(work / "cache"), PYTHONPATH=str(REPO))
    spec = work / "cyclegan.gan"
    original = edit_rewrite_block((REPO / "specs" / "cyclegan.gan").read_text(), edited=False)
    out = work / "out"
    gancc = [sys.executable, "-m", "gancc", "build", str(spec), "-o", str(out)]
    subprocess.run([sys.executable, "-c", "import torch, onnx, onnxruntime, onnxsim"], env=env,
                   check=True)          # the page cache, for every run alike; not timed
    kinds = ("cold", "same", "option", "edit")
    runs: dict[str, list[Measured]] = {k: [] for k in kinds}
    stages: dict[str, dict[str, float]] = {}
    status: dict[str, list[str]] = {}
    floors: list[float] = []
    try:
        for i in range(args.repeat):
            shutil.rmtree(work / "cache", ignore_errors=True)
            for kind, text in (("cold", original), ("same", original),
                               ("option", edit_rewrite_block(original, edited=True)),
                               ("edit", drop_fusion(original))):
                print(f"run {i + 1}/{args.repeat}: {kind}", file=sys.stderr, flush=True)
                spec.write_text(text)
                runs[kind].append(run(gancc, env=env))
                if best(runs[kind]) is runs[kind][-1]:
                    stages[kind], status[kind] = stage_seconds(out), figures_status(out)
            floors.append(floor_seconds(spec, out, env))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work folder kept: {work}", file=sys.stderr)

    b = {k: best(v) for k, v in runs.items()}
    cold = b["cold"].wall_s
    rows = [
        {"bench": "iterate", "item": "default build (validation + fp16 prediction), cold: "
         "both CycleGAN generators, empty cache", "gancc": cold, "baseline": None,
         "baseline_name": "the reference for the rows below", "unit": "s", "ratio": None,
         "target": None, "met": None, "note": where(stages["cold"], b["cold"].wall_s)},
        {"bench": "iterate", "item": "default rebuild, nothing changed (figures "
         + "/".join(status["same"]) + ")", "gancc": b["same"].wall_s, "baseline": cold,
         "baseline_name": "default cold build, same run", "unit": "s",
         "ratio": b["same"].wall_s / cold, "target": "<= 0.1x",
         "met": b["same"].wall_s / cold <= 0.1, "note": where(stages["same"], b["same"].wall_s)},
        {"bench": "iterate", "item": "default rebuild after a rewrite option edit (figures "
         + "/".join(status["option"]) + ")", "gancc": b["option"].wall_s, "baseline": cold,
         "baseline_name": "default cold build, same run", "unit": "s",
         "ratio": b["option"].wall_s / cold, "target": None, "met": None,
         "note": where(stages["option"], b["option"].wall_s)},
        {"bench": "iterate", "item": "default rebuild after a rewrite-block edit that changes "
         "the graph (figures " + "/".join(status["edit"]) + ")", "gancc": b["edit"].wall_s,
         "baseline": cold, "baseline_name": "default cold build, same run", "unit": "s",
         "ratio": b["edit"].wall_s / cold, "target": "<= 0.25x",
         "met": b["edit"].wall_s / cold <= 0.25, "note": where(stages["edit"], b["edit"].wall_s)},
    ]
    for row in rows:
        row["gancc_peak_mib"] = b[kinds[rows.index(row)]].peak_mib
    floor = min(floors)
    rows.append({"bench": "iterate", "item": "floor of that rebuild: only the onnxruntime runs "
                 "its figures need (each new final graph on the validation inputs, fp32 and "
                 "fp16 storage), one after another in one warm process", "gancc": floor,
                 "baseline": cold, "baseline_name": "default cold build, same run", "unit": "s",
                 "ratio": floor / cold, "target": None, "met": None,
                 "note": "no start-up, no imports, no cache reads, no reports: no build is "
                         "faster while it computes these figures"})
    for row in rows:
        print(result_line(row), flush=True)
    print()
    for r in rows:
        ratio = f"{r['ratio']:.3f}x" if r["ratio"] is not None else "–"
        print(f"{r['item'][:70]:70} {r['gancc']:7.2f}s {ratio:>7} {r['target'] or '':>8}  "
              f"[{r['note']}]")
    try:
        print("load average (1/5/15 min) at the end: "
              + "/".join(f"{x:.1f}" for x in os.getloadavg()))
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
