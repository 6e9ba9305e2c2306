"""A generator past protobuf's 2 GB limit, built end to end: peak memory against its weights.

    python bench/bench_over_2gb.py [--ngf 448] [--keep]

Builds a CycleGAN ResnetGenerator widened to ngf 448 (2.07 GiB of float32 weights, seeded)
at 64x64 with the CycleGAN rewrites, validation and the fp16 foresight, as a child process
(`gancc build --no-atc`, a fresh build cache), then checks what it wrote: a small .onnx and
its weights in `<name>.onnx.data` (ONNX external data), which onnx.checker accepts by path
and onnxruntime runs. Prints one `RESULT {json}` line: wall time, peak RSS of the build, the
weights' size and the ratio. Run by hand (about 2 minutes, ~8 GB of memory); not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import measure                                           # noqa: E402

SPEC = """\
model big {
    source pytorch {
        arch resnet_generator(input_nc=3, output_nc=3, ngf=%(ngf)d, n_blocks=9)
        weights "none.pth" else random(seed=0)
    }
    input img: float32[N, 3, 64, 64] batch 1
    output out
    rewrite {
        reflect-pad-to-constant
        fuse-pad-into-conv
    }
    atc {
        soc_version Ascend310P3
        output "Big"
    }
    validate {
        samples 1
        seed 0
        data img uniform(-1, 1)
        require pixel_cosine >= 0.5
    }
}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ngf", type=int, default=448)
    parser.add_argument("--keep", action="store_true", help="keep the build folder")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="gancc-over-2gb-"))
    try:
        (folder / "big.gan").write_text(SPEC % {"ngf": args.ngf})
        env = {**os.environ, "GANCC_CACHE_DIR": str(folder / "cache")}
        built = measure.run([sys.executable, "-m", "gancc", "build", folder / "big.gan",
                             "-o", folder / "out", "--no-atc", "-q"], env=env)
        out = folder / "out" / "big"
        report = json.loads((out / "report.json").read_text())
        onnx_file, data_file = out / "big.onnx", out / "big.onnx.data"
        import numpy as np
        import onnx
        import onnxruntime as ort

        onnx.checker.check_model(str(onnx_file))
        x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32)
        y = ort.InferenceSession(str(onnx_file)).run(None, {"img": x})[0]
        size = data_file.stat().st_size
        result = {"ngf": args.ngf, "wall_s": round(built.wall_s, 1),
                  "peak_rss_mb": round(built.peak_mib), "weights_mb": round(size / 2**20),
                  "peak_over_weights": round(built.peak_mib * 2**20 / size, 2),
                  "onnx_kb": round(onnx_file.stat().st_size / 1024),
                  "runs_in_onnxruntime": bool(y.shape == (1, 3, 64, 64) and np.isfinite(y).all()),
                  "pixel_cosine": report["validation"]["final_vs_reference"]["out"]["pixel_cosine"],
                  "timings": {k: round(v, 1) for k, v in report["timings"].items()}}
        print("RESULT " + json.dumps(result))
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
