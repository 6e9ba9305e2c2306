"""StarGAN's Generator (yunjey/stargan, model.py), CelebA 128x128, 5 attributes.

Written from the documented layer table (shared/reference/models-upstream.md §3). `main` is a
Sequential of 23 entries: Conv7 (8->64), two Conv4 stride-2 downsamplings, `repeat_num`
residual blocks (`main.{0,3}` convs, `main.{1,4}` norms), two ConvTranspose4 stride-2
upsamplings, Conv7 (64->3) and Tanh. Every conv is bias-free with zero padding. forward(x, c)
tiles the (N, c_dim) attribute vector over the image and concatenates it as extra channels.

Normalisation: upstream's InstanceNorm2d has `track_running_stats=True`, but its test code
never calls eval(), so inference uses per-instance statistics. gancc builds the norms with
`affine=True, track_running_stats=False`: in eval mode that computes exactly what upstream
computes, exports as InstanceNormalization with a dynamic batch, and the checkpoint's
running_mean / running_var / num_batches_tracked keys (never read) are dropped on load.
"""

from __future__ import annotations

import torch
from torch import nn

from gancc.archs import architecture


def _norm(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)


class ResidualBlock(nn.Module):
    """x + [conv3x3, IN, ReLU, conv3x3, IN](x)."""

    def __init__(self, dim: int):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(dim, dim, 3, stride=1, padding=1, bias=False), _norm(dim), nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, 3, stride=1, padding=1, bias=False), _norm(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


class StarGanGenerator(nn.Module):
    def __init__(self, conv_dim: int, c_dim: int, repeat_num: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3 + c_dim, conv_dim, 7, stride=1, padding=3, bias=False),
                                   _norm(conv_dim), nn.ReLU(inplace=True)]
        dim = conv_dim
        for _ in range(2):
            layers += [nn.Conv2d(dim, dim * 2, 4, stride=2, padding=1, bias=False), _norm(dim * 2),
                       nn.ReLU(inplace=True)]
            dim *= 2
        layers += [ResidualBlock(dim) for _ in range(repeat_num)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(dim, dim // 2, 4, stride=2, padding=1, bias=False),
                       _norm(dim // 2), nn.ReLU(inplace=True)]
            dim //= 2
        layers += [nn.Conv2d(dim, 3, 7, stride=1, padding=3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        c = c.view(c.size(0), c.size(1), 1, 1).repeat(1, 1, x.size(2), x.size(3))
        return self.main(torch.cat([x, c], dim=1))


@architecture("stargan_generator", inputs=2)
def stargan_generator(conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6) -> nn.Module:
    """StarGAN's Generator (image + attribute vector), per-instance InstanceNorm, upstream keys."""
    return StarGanGenerator(conv_dim, c_dim, repeat_num)
