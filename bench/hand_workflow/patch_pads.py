"""Hand workflow, step 3: the Ascend recipe's Pad patch (CycleGAN_ReflectpadDeal.py, in its
spirit): every node attribute called `mode` that says "reflect" becomes "constant", then the
model is saved for atc.

    python patch_pads.py in.onnx out.onnx
"""

import sys

import onnx

model = onnx.load(sys.argv[1])
changed = 0
for node in model.graph.node:
    for attr in node.attribute:
        if attr.name == "mode" and attr.s == b"reflect":
            attr.s = b"constant"
            changed += 1
onnx.checker.check_model(model)
onnx.save(model, sys.argv[2])
print(f"patched {changed} Pad node(s) -> {sys.argv[2]}")
