"""Benchmark: `gancc validate` throughput on Ray against the floor, and a projection for
Pix2pixHD's 500 Cityscapes validation images.

    python bench/bench_validate.py [--spec specs/cyclegan.gan] [--model cyclegan_g_a]
                                   [--samples 8] [--pix2pixhd-seconds 44]

1. builds the model (seeded random weights where the checkpoint is absent) into a temp
   folder, validation off;
2. the floor: one process, one plain loop: the PyTorch reference and onnxruntime (default
   threads: every core) on the same seeded samples;
3. `gancc validate --count N --no-fp16` (reference + final graph, the same work) on a local
   Ray with 1 and 2 workers, into an empty output folder (nothing reused): wall time with
   Ray's start-up and the actors' loading, and the steady rate (samples after the first, per
   second);
4. the projection: Pix2pixHD's 500 images on N nodes of this machine's size, from the
   per-sample seconds on one 2-core node (--pix2pixhd-seconds: the reference ~22 s, measured,
   plus the final graph, taken as long) and the 2-worker efficiency measured here.

Prints a markdown table and a `RESULT {json}` line. Not a test: timings vary with the load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def build(spec: Path, model: str, folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "gancc", "build", str(spec), "--model", model,
                    "--no-atc", "--no-validate", "-q", "-o", str(folder)], check=True)
    return folder / model / f"{model}.onnx"


def floor(spec: Path, model_name: str, onnx: Path, samples: int) -> float:
    """Samples per second of the plain loop (after loading, which is not timed)."""
    import onnxruntime as ort

    from gancc.spec import parse_file
    from gancc.stages.runtime import run_torch
    from gancc.stages.source import load_pytorch
    from gancc.stages.validate import make_inputs

    model = parse_file(spec).model(model_name)
    module = load_pytorch(model, None).module
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    outputs = [o.name for o in session.get_outputs()]
    start = time.perf_counter()
    for k in range(samples):
        feeds = make_inputs(model, 1, model.validation.seed + k)
        run_torch(module, model, feeds)
        session.run(outputs, feeds)
    return samples / (time.perf_counter() - start)


def on_ray(spec: Path, model_name: str, onnx: Path, samples: int, workers: int) -> dict:
    from gancc.spec import parse_file
    from gancc.validation.engine import EngineOptions
    from gancc.validation.run import validate_set
    from gancc.validation.samples import list_samples

    model = parse_file(spec).model(model_name)
    arrivals: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as out:
        start = time.perf_counter()
        validate_set(model, EngineOptions(spec, model_name, onnx, workers, None, None, False),
                     list_samples(model, None, samples), Path(out),
                     on_row=lambda row, reused: arrivals.append(time.perf_counter()))
        wall = time.perf_counter() - start
    steady = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0
    return {"workers": workers, "wall_s": round(wall, 2),
            "samples_per_s_overall": round(samples / wall, 3),
            "samples_per_s_steady": round(steady, 3)}


def projection(seconds_per_sample: float, efficiency: float, startup: float,
               nodes: list[int], images: int = 500) -> list[dict]:
    """Hours for `images` samples on N 2-core nodes: the per-sample seconds of one node's
    floor, divided by N x the measured parallel efficiency, plus Ray's start-up."""
    return [{"nodes": n, "hours": round((startup + images * seconds_per_sample
                                         / (n * max(efficiency, 1e-6))) / 3600, 2)}
            for n in nodes]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", type=Path, default=REPO / "specs" / "cyclegan.gan")
    ap.add_argument("--model", default="cyclegan_g_a")
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--pix2pixhd-seconds", type=float, default=44.0,
                    help="per sample on one 2-core node: reference + final graph")
    args = ap.parse_args()
    os.environ.setdefault("GANCC_CACHE_DIR", tempfile.mkdtemp(prefix="bench-validate-cache-"))
    with tempfile.TemporaryDirectory(prefix="bench-validate-build-") as folder:
        onnx = build(args.spec.resolve(), args.model, Path(folder))
        base = floor(args.spec.resolve(), args.model, onnx, args.samples)
        print(f"floor: {base:.3f} samples/s", flush=True)
        runs = []
        for workers in (1, 2):
            runs.append(on_ray(args.spec.resolve(), args.model, onnx, args.samples, workers))
            print(f"ray: {runs[-1]}", flush=True)
    efficiency = runs[1]["samples_per_s_steady"] / base if base else 0.0
    startup = max(0.0, runs[1]["wall_s"] - args.samples / max(runs[1]["samples_per_s_steady"],
                                                               1e-6))
    proj = projection(args.pix2pixhd_seconds, efficiency, startup, [1, 2, 4, 8, 16])
    print(f"| run | samples/s (steady) | samples/s (with start-up) | wall s |\n|---|---|---|---|\n"
          f"| floor: one process, plain loop | {base:.3f} | - | - |")
    for r in runs:
        print(f"| gancc validate, {r['workers']} worker(s) | {r['samples_per_s_steady']:.3f} | "
              f"{r['samples_per_s_overall']:.3f} | {r['wall_s']:.1f} |")
    print(f"\n2-worker steady rate / floor: {efficiency:.2f}; Ray start-up and loading "
          f"~{startup:.0f} s; load average {os.getloadavg()[0]:.1f}")
    print("\n| Pix2pixHD val (500 images) | " + " | ".join(f"{p['nodes']} node(s)" for p in proj)
          + " |\n|---|" + "---|" * len(proj) + "\n| hours (projected) | "
          + " | ".join(f"{p['hours']}" for p in proj) + " |")
    print("RESULT " + json.dumps({"bench": "validate", "samples": args.samples,
                                  "floor_samples_per_s": round(base, 3), "ray": runs,
                                  "efficiency_2_workers": round(efficiency, 3),
                                  "startup_s": round(startup, 1), "pix2pixhd_500": proj,
                                  "loadavg": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
