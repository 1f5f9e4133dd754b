"""Pieces that FBCNN and DRUNet share: residual blocks and 2x down/up steps.

The attribute names (``res.0``, ``res.2``) are those of the released state dicts,
so their files load with ``strict=True``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ResBlock", "down", "up", "unet_activation_bytes", "unet_pass"]


class ResBlock(nn.Module):
    """``x + conv(relu(conv(x)))`` with 3x3 convolutions of one width."""

    def __init__(self, width: int, bias: bool = True):
        super().__init__()
        self.res = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=bias),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1, bias=bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res(x)


def down(width_in: int, width_out: int, bias: bool = True) -> nn.Conv2d:
    """Half the resolution: a 2x2 convolution of stride 2."""
    return nn.Conv2d(width_in, width_out, 2, stride=2, bias=bias)


def up(width_in: int, width_out: int, bias: bool = True) -> nn.ConvTranspose2d:
    """Twice the resolution: a 2x2 transposed convolution of stride 2."""
    return nn.ConvTranspose2d(width_in, width_out, 2, stride=2, bias=bias)


def unet_activation_bytes(widths, h: int, w: int, live: int = 4) -> int:
    """Peak fp32 activations of a 4-level U-Net over ``h x w``: ``live`` maps per level, plus skips."""
    total = 0
    for level, width in enumerate(widths):
        total += (live + 1) * width * (h >> level) * (w >> level)
    return 4 * total


def unet_pass(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The 4-level pass of DRUNet and SCUNet over an already padded ``x``: head, three downs, body,
    three ups (each after adding its skip), tail."""
    x1 = net.m_head(x)
    x2 = net.m_down1(x1)
    x3 = net.m_down2(x2)
    x4 = net.m_down3(x3)
    y = net.m_up3(net.m_body(x4) + x4)
    y = net.m_up2(y + x3)
    y = net.m_up1(y + x2)
    return net.m_tail(y + x1)
