"""pix2pixHD's GlobalGenerator and LocalEnhancer (NVIDIA/pix2pixHD, models/networks.py).

Written from the documented layer tables (shared/reference/models-upstream.md §4).

GlobalGenerator (`model`, Sequential): ReflectionPad(3), Conv7 in->ngf, IN, ReLU; then
`n_downsampling` Conv3 stride-2 (zero pad 1) + IN + ReLU; `n_blocks` ResnetBlocks (reflect
pads, `conv_block.{1,5}`); `n_downsampling` ConvTranspose3 stride-2 (output_padding 1) + IN +
ReLU; ReflectionPad(3), Conv7 ngf->out, Tanh. Every conv has a bias; the norm is
InstanceNorm2d without affine parameters or running statistics, so there are no norm keys.

LocalEnhancer (label2city_1024p: `--netG local --ngf 32`): `model` is the GlobalGenerator with
ngf * 2**n_local_enhancers (64) minus its last three layers; `model1_1` is ReflectionPad(3),
Conv7 in->ngf, IN, ReLU, Conv3 stride-2 ngf->2ngf, IN, ReLU; `model1_2` is n_blocks_local
ResnetBlocks, ConvTranspose3 stride-2 2ngf->ngf, IN, ReLU, ReflectionPad(3), Conv7 ngf->out,
Tanh; `downsample` is AvgPool2d(3, stride 2, padding 1, count_include_pad=False).
forward: model1_2(model1_1(x) + model(downsample(x))).

Only n_local_enhancers=1 is supported (the released model; more would nest `model2_*`).
"""

from __future__ import annotations

import torch
from torch import nn

from gancc.archs import architecture
from gancc.archs.resnet_generator import ResnetBlock


def _in(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


def global_layers(input_nc: int, output_nc: int, ngf: int, n_downsampling: int,
                  n_blocks: int) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, padding=0),
                               _in(ngf), nn.ReLU(True)]
    for i in range(n_downsampling):
        c = ngf * 2 ** i
        layers += [nn.Conv2d(c, c * 2, 3, stride=2, padding=1), _in(c * 2), nn.ReLU(True)]
    c = ngf * 2 ** n_downsampling
    # ResnetBlock with reflect padding, instance norm, no dropout, conv biases: the same
    # block (and key layout) as CycleGAN's.
    layers += [ResnetBlock(c, "reflect", "instance", False, True) for _ in range(n_blocks)]
    for i in range(n_downsampling):
        c = ngf * 2 ** (n_downsampling - i)
        layers += [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1),
                   _in(c // 2), nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7, padding=0), nn.Tanh()]
    return layers


class GlobalGenerator(nn.Module):
    def __init__(self, input_nc: int, output_nc: int, ngf: int, n_downsampling: int, n_blocks: int):
        super().__init__()
        self.model = nn.Sequential(*global_layers(input_nc, output_nc, ngf, n_downsampling, n_blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LocalEnhancer(nn.Module):
    def __init__(self, input_nc: int, output_nc: int, ngf: int, n_downsample_global: int,
                 n_blocks_global: int, n_blocks_local: int):
        super().__init__()
        ngf_global = ngf * 2
        self.model = nn.Sequential(*global_layers(input_nc, output_nc, ngf_global,
                                                  n_downsample_global, n_blocks_global)[:-3])
        self.model1_1 = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, padding=0), _in(ngf), nn.ReLU(True),
            nn.Conv2d(ngf, ngf * 2, 3, stride=2, padding=1), _in(ngf * 2), nn.ReLU(True))
        self.model1_2 = nn.Sequential(
            *[ResnetBlock(ngf * 2, "reflect", "instance", False, True) for _ in range(n_blocks_local)],
            nn.ConvTranspose2d(ngf * 2, ngf, 3, stride=2, padding=1, output_padding=1), _in(ngf),
            nn.ReLU(True), nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7, padding=0), nn.Tanh())
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model1_2(self.model1_1(x) + self.model(self.downsample(x)))


@architecture("pix2pixhd_local_enhancer", inputs=1)
def pix2pixhd_local_enhancer(input_nc: int = 36, output_nc: int = 3, ngf: int = 32,
                             n_downsample_global: int = 4, n_blocks_global: int = 9,
                             n_local_enhancers: int = 1, n_blocks_local: int = 3) -> nn.Module:
    """pix2pixHD's LocalEnhancer (label2city_1024p: ngf 32, global ngf 64), upstream keys."""
    if n_local_enhancers != 1:
        from gancc.archs import ArchitectureError
        raise ArchitectureError("pix2pixhd_local_enhancer supports n_local_enhancers=1 only "
                                f"(got {n_local_enhancers})", "the released models use 1",
                                arg="n_local_enhancers")
    return LocalEnhancer(input_nc, output_nc, ngf, n_downsample_global, n_blocks_global,
                         n_blocks_local)


@architecture("pix2pixhd_global_generator", inputs=1)
def pix2pixhd_global_generator(input_nc: int = 36, output_nc: int = 3, ngf: int = 64,
                               n_downsampling: int = 4, n_blocks: int = 9) -> nn.Module:
    """pix2pixHD's GlobalGenerator (--netG global, 512p models), upstream keys."""
    return GlobalGenerator(input_nc, output_nc, ngf, n_downsampling, n_blocks)
