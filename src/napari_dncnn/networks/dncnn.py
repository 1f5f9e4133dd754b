"""The DnCNN network (Zhang et al. 2017), its receptive field, and batch-norm folding.

The network predicts the *residual* (the artifact) of a degraded image;
the restoration is ``input - residual``.  Nothing here knows about files,
value ranges or napari: it is a plain :class:`torch.nn.Module`.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["DnCNN", "receptive_field", "receptive_radius", "fold_batchnorm"]


class DnCNN(nn.Module):
    """DnCNN as in the paper: Conv+ReLU, (depth-2) x Conv+BN+ReLU, Conv; it predicts the residual.

    Parameters
    ----------
    channels : int
        Image channels in and out (1 for gray, 3 for RGB).
    depth : int
        Number of convolution layers (17 in the paper's blind models).
    features : int
        Filters per hidden layer (64 in the paper).
    batchnorm : bool
        ``False`` gives the BN-free form (a bias in every conv), as the
        published BN-merged models are stored.
    space_to_depth : int
        1: the paper's network.  2: the FFDNet-style form: pixel-unshuffle by
        2 (C -> 4C channels), the body at half resolution, pixel-shuffle back.
        Odd sizes are padded (edge replicate) and cropped.  At half resolution
        a 17-layer, 96-feature body costs ~0.56x the FLOPs per pixel of
        DnCNN-17/64 and sees twice as far.
    """

    architecture = "dncnn"
    predicts = "residual"
    control = None
    whole_plane = False

    def __init__(
        self,
        channels: int = 1,
        depth: int = 17,
        features: int = 64,
        *,
        batchnorm: bool = True,
        space_to_depth: int = 1,
    ):
        super().__init__()
        if channels < 1 or depth < 2 or features < 1 or space_to_depth < 1:
            raise ValueError(
                f"DnCNN needs channels >= 1, depth >= 2, features >= 1, space_to_depth >= 1; "
                f"got channels={channels}, depth={depth}, features={features}, "
                f"space_to_depth={space_to_depth}"
            )
        self.channels = int(channels)
        self.depth = int(depth)
        self.features = int(features)
        self.batchnorm = bool(batchnorm)
        self.space_to_depth = int(space_to_depth)
        inner = self.channels * self.space_to_depth**2
        layers: list[nn.Module] = [
            nn.Conv2d(inner, features, 3, padding=1, bias=True),
            nn.ReLU(inplace=True),
        ]
        for _ in range(depth - 2):
            layers.append(nn.Conv2d(features, features, 3, padding=1, bias=not batchnorm))
            if batchnorm:
                layers.append(nn.BatchNorm2d(features))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv2d(features, inner, 3, padding=1, bias=True))
        self.body = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He init for the hidden convolutions and a zero last layer.

        A zero last layer makes the untrained net the identity restoration
        (residual 0), which shortens the early loss plateau of DnCNN training.
        """
        for m in self.body:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        last = self.body[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    @property
    def pad_multiple(self) -> int:
        return self.space_to_depth

    @property
    def halo(self) -> int:
        """The receptive radius: tiles with this overlap give exactly the whole-image result."""
        return self.receptive_radius

    def settings(self) -> dict:
        return {
            "channels": self.channels,
            "depth": self.depth,
            "features": self.features,
            "batchnorm": self.batchnorm,
            "space_to_depth": self.space_to_depth,
        }

    def inference_copy(self) -> DnCNN:
        """Batch norm folded into the convolutions (once: a folded copy is returned as it is)."""
        return self if getattr(self, "batchnorm_folded", False) else fold_batchnorm(self)

    def activation_bytes(self, h: int, w: int) -> int:
        """Three live feature maps and the input and output, fp32."""
        return 4 * h * w * (3 * self.features + 2 * self.channels)

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.depth, self.space_to_depth)

    @property
    def receptive_radius(self) -> int:
        """Tile overlap (px) that makes tiled results equal whole-image ones; a multiple of ``space_to_depth``."""
        return receptive_radius(self.depth, self.space_to_depth)

    def forward(self, x: torch.Tensor, control=None) -> torch.Tensor:
        """Return the predicted residual (same shape as ``x``); DnCNN takes no control."""
        s = self.space_to_depth
        if s == 1:
            return self.body(x)
        h, w = x.shape[-2:]
        pad_h, pad_w = -h % s, -w % s
        if pad_h or pad_w:
            x = nn.functional.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        r = nn.functional.pixel_shuffle(self.body(nn.functional.pixel_unshuffle(x, s)), s)
        return r[..., :h, :w]


def receptive_radius(depth: int, space_to_depth: int = 1) -> int:
    """Overlap in pixels that tiles need to give whole-image results.

    ``depth`` 3x3 convolutions see ``depth`` pixels each way.  At
    ``space_to_depth`` s > 1 each body pixel covers s x s image pixels: an
    output pixel sees ``s*depth + s - 1`` pixels, rounded up here to the
    multiple ``s*(depth+1)`` so that tiles start on the unshuffle grid.
    """
    depth, s = int(depth), int(space_to_depth)
    return depth if s == 1 else s * (depth + 1)


def receptive_field(depth: int, space_to_depth: int = 1) -> int:
    """Side length in pixels of the receptive field (``2 * radius + 1``)."""
    return 2 * receptive_radius(depth, space_to_depth) + 1


@torch.no_grad()
def fold_batchnorm(model: DnCNN) -> DnCNN:
    """Return an inference copy of ``model`` with every BatchNorm folded into its conv.

    Uses the running statistics (eval-mode semantics); the copy is in eval mode
    and gives the same output as ``model.eval()`` to float rounding.
    """
    folded = copy.deepcopy(model).eval()
    layers = list(folded.body)
    out: list[nn.Module] = []
    i = 0
    while i < len(layers):
        m = layers[i]
        if (
            isinstance(m, nn.Conv2d)
            and i + 1 < len(layers)
            and isinstance(layers[i + 1], nn.BatchNorm2d)
        ):
            bn = layers[i + 1]
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            conv = nn.Conv2d(
                m.in_channels, m.out_channels, m.kernel_size, padding=m.padding, bias=True
            )
            conv.weight.copy_(m.weight * scale.reshape(-1, 1, 1, 1))
            bias = m.bias if m.bias is not None else torch.zeros_like(bn.running_mean)
            conv.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
            out.append(conv)
            i += 2
        else:
            out.append(m)
            i += 1
    folded.body = nn.Sequential(*out).eval()
    folded.batchnorm_folded = True
    return folded
