"""A small UNet generator, as a user's own code would define it."""

import torch
from torch import nn


class UNet(nn.Module):
    def __init__(self, in_ch: int = 3, out_ch: int = 3, ngf: int = 8):
        super().__init__()
        self.down = nn.Sequential(nn.Conv2d(in_ch, ngf, 4, 2, 1), nn.BatchNorm2d(ngf),
                                  nn.LeakyReLU(0.2))
        self.up = nn.Sequential(nn.ConvTranspose2d(ngf, ngf, 4, 2, 1), nn.BatchNorm2d(ngf),
                                nn.Dropout(0.5), nn.ReLU())
        self.out = nn.Sequential(nn.Conv2d(ngf + in_ch, out_ch, 3, padding=1), nn.Tanh())

    def forward(self, x):
        return self.out(torch.cat([self.up(self.down(x)), x], 1))
