"""CycleGAN's ResnetGenerator (junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py).

Written from the documented layer table (shared/reference/models-upstream.md §2). The
module tree reproduces upstream's indices, so the state_dict keys are upstream's exactly:
`model.{1,4,7,19,22,26}.*` for the convolutions and `model.{10..18}.conv_block.{1,5}.*` for
the residual blocks (with reflect padding; other padding types shift the block indices the
same way upstream's do).
"""

from __future__ import annotations

import torch
from torch import nn

from gancc.archs import architecture

NORMS = ("instance", "batch", "none")
PADDINGS = ("reflect", "replicate", "zero")


def norm_layer(kind: str, channels: int) -> nn.Module | None:
    # Upstream's get_norm_layer: instance norm has neither affine parameters nor running
    # statistics, so its checkpoints' stray running_* keys are dropped on load.
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    return None


def _pad(kind: str, amount: int) -> tuple[list[nn.Module], int]:
    """The padding module (if any) and the conv's own padding, as upstream builds them."""
    if kind == "reflect":
        return [nn.ReflectionPad2d(amount)], 0
    if kind == "replicate":
        return [nn.ReplicationPad2d(amount)], 0
    return [], amount


class ResnetBlock(nn.Module):
    """x + [pad, conv3x3, norm, relu, (dropout), pad, conv3x3, norm](x); no ReLU after the add."""

    def __init__(self, dim: int, padding_type: str, norm: str, use_dropout: bool, use_bias: bool):
        super().__init__()
        layers: list[nn.Module] = []
        for second in (False, True):
            pad_modules, conv_pad = _pad(padding_type, 1)
            layers += pad_modules
            layers.append(nn.Conv2d(dim, dim, 3, padding=conv_pad, bias=use_bias))
            if (n := norm_layer(norm, dim)) is not None:
                layers.append(n)
            if not second:
                layers.append(nn.ReLU(True))
                if use_dropout:
                    layers.append(nn.Dropout(0.5))
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    def __init__(self, input_nc: int, output_nc: int, ngf: int, n_blocks: int, norm: str,
                 padding_type: str, use_dropout: bool, n_downsampling: int = 2):
        super().__init__()
        use_bias = norm != "batch"   # a BatchNorm after the conv makes its bias redundant

        def with_norm(conv: nn.Module, channels: int) -> list[nn.Module]:
            n = norm_layer(norm, channels)
            return [conv] + ([n] if n is not None else []) + [nn.ReLU(True)]

        layers: list[nn.Module] = [nn.ReflectionPad2d(3)]
        layers += with_norm(nn.Conv2d(input_nc, ngf, 7, padding=0, bias=use_bias), ngf)
        for i in range(n_downsampling):
            mult = 2 ** i
            layers += with_norm(nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1,
                                          bias=use_bias), ngf * mult * 2)
        mult = 2 ** n_downsampling
        layers += [ResnetBlock(ngf * mult, padding_type, norm, use_dropout, use_bias)
                   for _ in range(n_blocks)]
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            layers += with_norm(nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2,
                                                   padding=1, output_padding=1, bias=use_bias),
                                ngf * mult // 2)
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@architecture("resnet_generator", inputs=1, choices={"norm": NORMS, "padding_type": PADDINGS})
def resnet_generator(input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_blocks: int = 9,
                     norm: str = "instance", padding_type: str = "reflect",
                     use_dropout: bool = False) -> nn.Module:
    """CycleGAN's ResnetGenerator (resnet_9blocks / resnet_6blocks), upstream state_dict keys."""
    return ResnetGenerator(input_nc, output_nc, ngf, n_blocks, norm, padding_type, use_dropout)
