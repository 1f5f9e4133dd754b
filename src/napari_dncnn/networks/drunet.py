"""DRUNet (Zhang et al., TPAMI 2021, "Plug-and-Play Image Restoration with Deep Denoiser Prior"):
a 4-level U-Net of residual blocks whose input carries a noise-level map as one more channel.

Written from the paper and the public code (KAIR's ``UNetRes``, github.com/cszn/KAIR, MIT); the
attribute names are those of the released state dicts (no biases in the released files).  The
network predicts the restored image; its control is sigma in 0-255 units (default 15).
"""

from __future__ import annotations

import torch
from torch import nn

from .protocol import pad_to_multiple
from .unet_parts import ResBlock, down, unet_activation_bytes, unet_pass, up

__all__ = ["DRUNet"]


class DRUNet(nn.Module):
    """DRUNet for ``channels`` (1 or 3) image channels, plus the noise-level map."""

    architecture = "drunet"
    predicts = "image"
    pad_multiple = 8
    halo = 64
    control = "sigma"
    default_control = 15.0
    whole_plane = True

    def __init__(self, channels: int = 3, widths=(64, 128, 256, 512), blocks: int = 4, bias=False):
        super().__init__()
        self.channels, self.widths = int(channels), tuple(int(w) for w in widths)
        self.blocks, self.bias = int(blocks), bool(bias)
        w0, w1, w2, w3 = self.widths

        def res(width):
            return [ResBlock(width, bias) for _ in range(self.blocks)]

        self.m_head = nn.Conv2d(channels + 1, w0, 3, padding=1, bias=bias)
        self.m_down1 = nn.Sequential(*res(w0), down(w0, w1, bias))
        self.m_down2 = nn.Sequential(*res(w1), down(w1, w2, bias))
        self.m_down3 = nn.Sequential(*res(w2), down(w2, w3, bias))
        self.m_body = nn.Sequential(*res(w3))
        self.m_up3 = nn.Sequential(up(w3, w2, bias), *res(w2))
        self.m_up2 = nn.Sequential(up(w2, w1, bias), *res(w1))
        self.m_up1 = nn.Sequential(up(w1, w0, bias), *res(w0))
        self.m_tail = nn.Conv2d(w0, channels, 3, padding=1, bias=bias)

    def settings(self) -> dict:
        return {
            "channels": self.channels,
            "widths": list(self.widths),
            "blocks": self.blocks,
            "bias": self.bias,
        }

    def inference_copy(self) -> DRUNet:
        return self.eval()

    def activation_bytes(self, h: int, w: int) -> int:
        return unet_activation_bytes(self.widths, h, w)

    def forward(self, x: torch.Tensor, control=None) -> torch.Tensor:
        """The denoised image; ``control`` is sigma (0-255 units): a number, or an (N, 1, H, W) map."""
        h, w = x.shape[-2:]
        sigma = self.default_control if control is None else control
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device) / 255.0
        if sigma.ndim < 4:
            sigma = sigma.reshape(-1, 1, 1, 1)
        x = torch.cat([x, sigma.expand(x.shape[0], 1, h, w)], dim=1)
        return unet_pass(self, pad_to_multiple(x, self.pad_multiple))[..., :h, :w]
