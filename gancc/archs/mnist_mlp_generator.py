"""PyTorch-GAN's MNIST generator (eriklindernoren/PyTorch-GAN, implementations/gan/gan.py).

Written from the documented layer table (shared/reference/models-upstream.md §1): a
Sequential `model` of Linear 100->128, LeakyReLU(0.2), three Linear + BatchNorm1d + LeakyReLU
blocks (128->256->512->1024), Linear 1024->784 and Tanh, viewed as (N, 1, 28, 28). The
indices match upstream's, so the 25 state_dict keys are `model.{0,2,5,8,11}.weight/bias` and
`model.{3,6,9}.{weight,bias,running_mean,running_var,num_batches_tracked}`.

Upstream writes `BatchNorm1d(out, 0.8)`: the positional 0.8 is **eps**, not momentum, and the
ONNX export keeps it as BatchNormalization epsilon=0.8. The compiled model runs in eval mode
(running statistics); upstream samples its images in train mode (batch statistics).
"""

from __future__ import annotations

import torch
from torch import nn

from gancc.archs import architecture

BN_EPS = 0.8   # upstream's positional BatchNorm1d argument


class MnistMlpGenerator(nn.Module):
    def __init__(self, latent_dim: int, img_size: int, channels: int):
        super().__init__()
        self.img_shape = (channels, img_size, img_size)
        widths = [128, 256, 512, 1024]
        layers: list[nn.Module] = [nn.Linear(latent_dim, widths[0]), nn.LeakyReLU(0.2, inplace=True)]
        for w_in, w_out in zip(widths, widths[1:]):
            layers += [nn.Linear(w_in, w_out), nn.BatchNorm1d(w_out, eps=BN_EPS),
                       nn.LeakyReLU(0.2, inplace=True)]
        layers += [nn.Linear(widths[-1], channels * img_size * img_size), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z).view(z.shape[0], *self.img_shape)


@architecture("mnist_mlp_generator", inputs=1)
def mnist_mlp_generator(latent_dim: int = 100, img_size: int = 28, channels: int = 1) -> nn.Module:
    """PyTorch-GAN's MNIST MLP generator (BatchNorm1d eps 0.8), upstream state_dict keys."""
    return MnistMlpGenerator(latent_dim, img_size, channels)
