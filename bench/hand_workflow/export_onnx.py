"""Hand workflow, step 1: export a CycleGAN generator to ONNX (what a recipe's pth2onnx.py does).

    python export_onnx.py G_A out.onnx [--checkpoint latest_net_G_A.pth] [--seed 0]

The generator class is upstream's ResnetGenerator (here imported from gancc's copy, which has
upstream's module layout and state_dict keys: a user's script imports `models/networks.py`
from the CycleGAN repository the same way). Without a checkpoint, the weights are seeded
N(0, 0.02), as upstream's init_weights("normal") does, so both workflows export the same
graph.
"""

import argparse
import os

import torch
from torch import nn

from gancc.archs.resnet_generator import resnet_generator

NAMES = {"G_A": ("img_sat_maps", "maps"), "G_B": ("img_maps_sat", "sat")}

parser = argparse.ArgumentParser()
parser.add_argument("which", choices=sorted(NAMES))
parser.add_argument("output")
parser.add_argument("--checkpoint")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

net = resnet_generator(input_nc=3, output_nc=3, ngf=64, n_blocks=9, norm="instance",
                       padding_type="reflect")
if args.checkpoint and os.path.isfile(args.checkpoint):
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    for key in list(state):                      # PyTorch 0.4 InstanceNorm leftovers
        if key.endswith(("running_mean", "running_var", "num_batches_tracked")):
            del state[key]
    net.load_state_dict(state)
else:
    gen = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * 0.02)
                if m.bias is not None:
                    m.bias.zero_()
net.eval()

input_name, output_name = NAMES[args.which]
dummy = torch.randn(1, 3, 256, 256)
with torch.no_grad():
    torch.onnx.export(net, dummy, args.output, opset_version=11, input_names=[input_name],
                      output_names=[output_name], do_constant_folding=True, dynamo=False,
                      dynamic_axes={input_name: {0: "N"}, output_name: {0: "N"}})
print(f"exported {args.output}")
