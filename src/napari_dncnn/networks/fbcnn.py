"""FBCNN (Jiang et al., ICCV 2021, "Towards Flexible Blind JPEG Artifacts Removal"): a U-Net with a
JPEG-quality predictor, whose quality embedding scales and shifts the decoder's residual blocks.

Written from the paper and its public code (github.com/jiaxi-jiang/FBCNN, Apache-2.0); the
attribute names are those of the released state dicts.  The network predicts the restored image.
Its control is the JPEG quality (1-100) to assume; without one it uses its own prediction.
"""

from __future__ import annotations

import torch
from torch import nn

from .protocol import pad_to_multiple
from .unet_parts import ResBlock, down, unet_activation_bytes, up

__all__ = ["FBCNN"]


class QualityModulatedBlock(ResBlock):
    """``x + gamma * conv(relu(conv(x))) + beta``, gamma and beta per channel from the quality."""

    def forward(self, x, gamma=None, beta=None):
        return x + gamma[..., None, None] * self.res(x) + beta[..., None, None]


def _mlp(*widths: int, last=nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers[-1] = last()
    return nn.Sequential(*layers)


class FBCNN(nn.Module):
    """FBCNN for ``channels`` (1 or 3) image channels; ``widths`` per level, ``blocks`` per stage."""

    architecture = "fbcnn"
    predicts = "image"
    pad_multiple = 8
    halo = 64
    control = "quality"
    whole_plane = True

    def __init__(self, channels: int = 3, widths=(64, 128, 256, 512), blocks: int = 4):
        super().__init__()
        self.channels, self.widths, self.blocks = (
            int(channels),
            tuple(int(w) for w in widths),
            int(blocks),
        )
        w0, w1, w2, w3 = self.widths
        nb = self.blocks
        self.m_head = nn.Conv2d(channels, w0, 3, padding=1)
        self.m_down1 = nn.Sequential(*[ResBlock(w0) for _ in range(nb)], down(w0, w1))
        self.m_down2 = nn.Sequential(*[ResBlock(w1) for _ in range(nb)], down(w1, w2))
        self.m_down3 = nn.Sequential(*[ResBlock(w2) for _ in range(nb)], down(w2, w3))
        self.m_body_encoder = nn.Sequential(*[ResBlock(w3) for _ in range(nb)])
        self.m_body_decoder = nn.Sequential(*[ResBlock(w3) for _ in range(nb)])
        self.m_up3 = nn.ModuleList([up(w3, w2), *[QualityModulatedBlock(w2) for _ in range(nb)]])
        self.m_up2 = nn.ModuleList([up(w2, w1), *[QualityModulatedBlock(w1) for _ in range(nb)]])
        self.m_up1 = nn.ModuleList([up(w1, w0), *[QualityModulatedBlock(w0) for _ in range(nb)]])
        self.m_tail = nn.Conv2d(w0, channels, 3, padding=1)
        # 1 - quality/100 predicted from the deepest features, and its embedding
        self.qf_pred = nn.Sequential(
            *[ResBlock(w3) for _ in range(nb)],
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Flatten(),
            *_mlp(w3, w3, w3, 1, last=nn.Sigmoid),
        )
        self.qf_embed = _mlp(1, w3, w3, w3)
        for level, width in ((3, w2), (2, w1), (1, w0)):
            setattr(self, f"to_gamma_{level}", nn.Sequential(nn.Linear(w3, width), nn.Sigmoid()))
            setattr(self, f"to_beta_{level}", nn.Sequential(nn.Linear(w3, width), nn.Tanh()))

    def settings(self) -> dict:
        return {"channels": self.channels, "widths": list(self.widths), "blocks": self.blocks}

    def inference_copy(self) -> FBCNN:
        return self.eval()

    def activation_bytes(self, h: int, w: int) -> int:
        return unet_activation_bytes(self.widths, h, w)

    def _encode(self, x):
        x1 = self.m_head(x)
        x2 = self.m_down1(x1)
        x3 = self.m_down2(x2)
        x4 = self.m_down3(x3)
        return (x1, x2, x3, x4), self.m_body_encoder(x4)

    def predict_quality(self, x: torch.Tensor) -> torch.Tensor:
        """The JPEG quality (0-100, one per batch item) that the network reads in ``x``."""
        _, deep = self._encode(pad_to_multiple(x, self.pad_multiple))
        return 100.0 * (1.0 - self.qf_pred(deep)[:, 0])

    def forward(self, x: torch.Tensor, control=None) -> torch.Tensor:
        """The restored image; ``control`` is the JPEG quality to assume (a number or one per item)."""
        h, w = x.shape[-2:]
        (x1, x2, x3, x4), deep = self._encode(pad_to_multiple(x, self.pad_multiple))
        if control is None:
            qf = self.qf_pred(deep)
        else:
            q = torch.as_tensor(control, dtype=x.dtype, device=x.device).reshape(-1, 1)
            qf = (1.0 - q / 100.0).expand(x.shape[0], 1)
        embedding = self.qf_embed(qf)
        y = self.m_body_decoder(deep) + x4
        for level, ups, skip in ((3, self.m_up3, x3), (2, self.m_up2, x2), (1, self.m_up1, x1)):
            gamma = getattr(self, f"to_gamma_{level}")(embedding)
            beta = getattr(self, f"to_beta_{level}")(embedding)
            y = ups[0](y)
            for block in ups[1:]:
                y = block(y, gamma, beta)
            y = y + skip
        return self.m_tail(y)[..., :h, :w]
