"""Write unet.safetensors: the UNet's weights (seeded), as a training run would save them."""

import torch
from safetensors.torch import save_file

from nets import UNet

torch.manual_seed(0)
save_file(UNet(ngf=8).state_dict(), "unet.safetensors")
print("wrote unet.safetensors")
