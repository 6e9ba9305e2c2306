#!/bin/sh
# The hand workflow for both CycleGAN generators, as a user runs it: export, onnxsim, patch.
# bench/bench_build.py runs the same commands one by one, as separate processes, and times
# them. Usage: sh run.sh OUT_DIR [PYTHON]
set -e
out=${1:?usage: sh run.sh OUT_DIR [PYTHON]}
py=${2:-python}
here=$(dirname "$0")
mkdir -p "$out"
seed=0
for g in G_A G_B; do
    "$py" "$here/export_onnx.py" "$g" "$out/$g.onnx" --seed $seed
    "$py" -m onnxsim "$out/$g.onnx" "$out/${g}_sim.onnx"
    "$py" "$here/patch_pads.py" "$out/${g}_sim.onnx" "$out/${g}_om_ready.onnx"
    seed=$((seed + 1))
done
