"""Full-size Pix2pixHD build: time and peak memory against the size of the weights.

    python bench/bench_pix2pixhd.py [--out DIR] [--no-validate] [--keep]

Builds specs/pix2pixhd.gan (LocalEnhancer, 1024x2048, seeded weights unless the checkpoint
is in place) with `gancc build --no-atc --no-cache` in a child process and reports its wall time, its
peak resident memory (ru_maxrss of the child) and that peak as a multiple of the weights'
size (~731 MB of float32 parameters). The build must fit the 24 GiB machines CI runs on.
Run by hand (a few minutes); tests/test_models_pix2pixhd.py runs the same build when
GANCC_FULL=1 is set.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def weights_bytes() -> int:
    from gancc import archs

    module = archs.get("pix2pixhd_local_enhancer").build()
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="build root (default: a temporary folder)")
    parser.add_argument("--no-validate", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temporary build folder")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="gancc-pix2pixhd-"))
    cmd = [sys.executable, "-m", "gancc", "build", str(REPO / "specs" / "pix2pixhd.gan"),
           "-o", str(out), "--no-atc", "--no-cache", "-q"] + \
        (["--no-validate"] if args.no_validate else [])
    start = time.perf_counter()
    proc = subprocess.run(cmd)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024   # KiB on Linux
    weights = weights_bytes()
    result = {"exit": proc.returncode, "wall_s": round(wall, 1),
              "peak_rss_mb": round(peak / 2**20), "weights_mb": round(weights / 2**20),
              "peak_over_weights": round(peak / weights, 2)}
    report = out / "pix2pixhd" / "report.json"
    if report.is_file():
        data = json.loads(report.read_text())
        result["timings"] = {k: round(v, 1) for k, v in data.get("timings", {}).items()}
        result["onnx_mb"] = round(sum(p.stat().st_size for p in (out / "pix2pixhd").glob("*.onnx*"))
                                  / 2**20)
        val = data.get("validation", {}).get("final_vs_reference", {}).get("fake_image")
        if val:
            result["pixel_cosine"] = val["pixel_cosine"]
            result["max_abs"] = val["max_abs"]
    print(json.dumps(result, indent=2))
    if not args.keep and args.out is None:
        import shutil
        shutil.rmtree(out, ignore_errors=True)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
