"""SCUNet (Zhang et al., Machine Intelligence Research 2023, "Practical Blind Image Denoising via
Swin-Conv-UNet and Data Synthesis"): a U-Net whose blocks split their channels between a residual
convolution branch and a (shifted-)window self-attention branch.

Written from the paper and the public code (github.com/cszn/SCUNet, Apache-2.0); the attribute
names are those of the released state dicts.  The network predicts the restored image; no control.
"""

from __future__ import annotations

import torch
from torch import nn

from .protocol import pad_to_multiple
from .unet_parts import unet_pass

__all__ = ["SCUNet"]


class WindowAttention(nn.Module):
    """Multi-head self-attention inside ``window`` x ``window`` windows, shifted by half a window
    when ``shifted``; a learned bias per head and relative offset.  Works on (B, H, W, C)."""

    def __init__(self, width: int, head_width: int, window: int, shifted: bool):
        super().__init__()
        self.heads, self.head_width = width // head_width, head_width
        self.window, self.shifted = window, shifted
        self.embedding_layer = nn.Linear(width, 3 * width)
        self.relative_position_params = nn.Parameter(
            torch.zeros(self.heads, 2 * window - 1, 2 * window - 1)
        )
        self.linear = nn.Linear(width, width)

    def _offsets(self) -> torch.Tensor:
        """(p*p, p*p) bias per head: indexed by the row and column offset of two tokens."""
        p = self.window
        r = torch.arange(p, device=self.relative_position_params.device)
        rows, cols = r.repeat_interleave(p), r.repeat(p)
        dr = rows[:, None] - rows[None, :] + p - 1
        dc = cols[:, None] - cols[None, :] + p - 1
        return self.relative_position_params[:, dr, dc]

    def _shift_mask(self, nh: int, nw: int) -> torch.Tensor:
        """True where two tokens of a window came from different image regions (after the roll)."""
        p, s = self.window, self.window - self.window // 2
        r = torch.arange(p, device=self.relative_position_params.device)
        last_row = (torch.arange(nh) == nh - 1).to(r.device)
        last_col = (torch.arange(nw) == nw - 1).to(r.device)
        lower = last_row[:, None, None, None] & (r >= s)[None, None, :, None]  # (nh, 1, p, 1)
        right = last_col[None, :, None, None] & (r >= s)[None, None, None, :]  # (1, nw, 1, p)
        lower = lower.expand(nh, nw, p, p).reshape(nh * nw, p * p)
        right = right.expand(nh, nw, p, p).reshape(nh * nw, p * p)
        return (lower[:, :, None] != lower[:, None, :]) | (right[:, :, None] != right[:, None, :])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        p, half = self.window, self.window // 2
        if self.shifted:
            x = torch.roll(x, shifts=(-half, -half), dims=(1, 2))
        nh, nw = h // p, w // p
        x = x.reshape(b, nh, p, nw, p, c).transpose(2, 3).reshape(b, nh * nw, p * p, c)
        qkv = self.embedding_layer(x).reshape(b, nh * nw, p * p, 3, self.heads, self.head_width)
        q, k, v = qkv.permute(3, 4, 0, 1, 2, 5)  # each (heads, B, windows, tokens, head width)
        sim = (q @ k.transpose(-1, -2)) * self.head_width**-0.5
        sim = sim + self._offsets()[:, None, None]
        if self.shifted:
            sim = sim.masked_fill(self._shift_mask(nh, nw), float("-inf"))
        out = sim.softmax(dim=-1) @ v
        out = out.permute(1, 2, 3, 0, 4).reshape(b, nh * nw, p * p, c)
        out = self.linear(out)
        out = out.reshape(b, nh, nw, p, p, c).transpose(2, 3).reshape(b, h, w, c)
        if self.shifted:
            out = torch.roll(out, shifts=(half, half), dims=(1, 2))
        return out


class TransformerBlock(nn.Module):
    """Pre-norm window attention and MLP (4x wide, GELU), each with a skip.  Works on (B, H, W, C)."""

    def __init__(self, width: int, head_width: int, window: int, shifted: bool):
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.msa = WindowAttention(width, head_width, window, shifted)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )

    def forward(self, x):
        x = x + self.msa(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class SwinConvBlock(nn.Module):
    """1x1 conv, then half the channels through a residual conv pair and half through a
    transformer block, then 1x1 conv of both, with a skip over the whole block."""

    def __init__(self, half: int, head_width: int, window: int, shifted: bool):
        super().__init__()
        self.half = half
        self.trans_block = TransformerBlock(half, head_width, window, shifted)
        self.conv1_1 = nn.Conv2d(2 * half, 2 * half, 1)
        self.conv1_2 = nn.Conv2d(2 * half, 2 * half, 1)
        self.conv_block = nn.Sequential(
            nn.Conv2d(half, half, 3, padding=1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(half, half, 3, padding=1, bias=False),
        )

    def forward(self, x):
        conv_x, trans_x = self.conv1_1(x).split(self.half, dim=1)
        conv_x = conv_x + self.conv_block(conv_x)
        trans_x = self.trans_block(trans_x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return x + self.conv1_2(torch.cat([conv_x, trans_x], dim=1))


class SCUNet(nn.Module):
    """SCUNet for ``channels`` image channels; ``stages``: blocks in each of the 7 stages."""

    architecture = "scunet"
    predicts = "image"
    pad_multiple = 64
    halo = 64
    control = None
    whole_plane = True

    def __init__(
        self, channels: int = 3, stages=(4, 4, 4, 4, 4, 4, 4), width: int = 64, head_width: int = 32
    ):
        super().__init__()
        self.channels, self.stages = int(channels), tuple(int(n) for n in stages)
        self.width, self.head_width, window = int(width), int(head_width), 8
        d = self.width

        def blocks(stage: int, half: int):
            return [
                SwinConvBlock(half, head_width, window, i % 2 == 1)
                for i in range(self.stages[stage])
            ]

        self.m_head = nn.Sequential(nn.Conv2d(channels, d, 3, padding=1, bias=False))
        self.m_down1 = nn.Sequential(*blocks(0, d // 2), nn.Conv2d(d, 2 * d, 2, 2, bias=False))
        self.m_down2 = nn.Sequential(*blocks(1, d), nn.Conv2d(2 * d, 4 * d, 2, 2, bias=False))
        self.m_down3 = nn.Sequential(*blocks(2, 2 * d), nn.Conv2d(4 * d, 8 * d, 2, 2, bias=False))
        self.m_body = nn.Sequential(*blocks(3, 4 * d))
        self.m_up3 = nn.Sequential(
            nn.ConvTranspose2d(8 * d, 4 * d, 2, 2, bias=False), *blocks(4, 2 * d)
        )
        self.m_up2 = nn.Sequential(
            nn.ConvTranspose2d(4 * d, 2 * d, 2, 2, bias=False), *blocks(5, d)
        )
        self.m_up1 = nn.Sequential(
            nn.ConvTranspose2d(2 * d, d, 2, 2, bias=False), *blocks(6, d // 2)
        )
        self.m_tail = nn.Sequential(nn.Conv2d(d, channels, 3, padding=1, bias=False))

    def settings(self) -> dict:
        return {
            "channels": self.channels,
            "stages": list(self.stages),
            "width": self.width,
            "head_width": self.head_width,
        }

    def inference_copy(self) -> SCUNet:
        return self.eval()

    def activation_bytes(self, h: int, w: int) -> int:
        """Feature maps per level plus one level-1 attention matrix (64 x 64 per token window)."""
        maps = sum(6 * (self.width << lv) * (h >> lv) * (w >> lv) for lv in range(4))
        heads = max(1, (self.width // 2) // self.head_width)
        return 4 * (maps + 2 * heads * h * w * 64)

    def forward(self, x: torch.Tensor, control=None) -> torch.Tensor:
        h, w = x.shape[-2:]
        return unet_pass(self, pad_to_multiple(x, self.pad_multiple))[..., :h, :w]
