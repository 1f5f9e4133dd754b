"""The networks: one module per architecture, each implementing :mod:`.protocol`.

- :mod:`.dncnn`: DnCNN (Zhang et al. 2017), both the paper's form and the space-to-depth form;
- :mod:`.fbcnn`: FBCNN, JPEG artifacts with a quality control;
- :mod:`.drunet`: DRUNet, Gaussian noise with a sigma control;
- :mod:`.scunet`: SCUNet, real-world noise.

:func:`build` makes a network from its architecture name and settings (a record's
``architecture`` and ``settings``); :func:`detect` tells the architecture and settings of a
state dict from its key names and shapes, so a ``.pth`` of any of them loads with ``strict=True``.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from .dncnn import DnCNN, fold_batchnorm, receptive_field, receptive_radius
from .drunet import DRUNet
from .fbcnn import FBCNN
from .protocol import check_protocol, pad_to_multiple
from .scunet import SCUNet

__all__ = [
    "ARCHITECTURES",
    "DnCNN",
    "DRUNet",
    "FBCNN",
    "SCUNet",
    "build",
    "check_protocol",
    "detect",
    "fold_batchnorm",
    "is_network",
    "pad_to_multiple",
    "receptive_field",
    "receptive_radius",
]

ARCHITECTURES: dict[str, type[nn.Module]] = {
    "dncnn": DnCNN,
    "fbcnn": FBCNN,
    "drunet": DRUNet,
    "scunet": SCUNet,
}
"""Architecture name -> network class: the one table a new network is added to."""


def is_network(obj) -> bool:
    """Whether ``obj`` is a network of one of :data:`ARCHITECTURES`."""
    return isinstance(obj, tuple(ARCHITECTURES.values()))


def build(architecture: str, settings: dict) -> nn.Module:
    """An untrained network of ``architecture`` (case-insensitive) with ``settings``."""
    cls = ARCHITECTURES.get(str(architecture).lower())
    if cls is None:
        raise ValueError(f"unknown architecture {architecture!r}; known: {sorted(ARCHITECTURES)}")
    return cls(**settings)


def _count(state: dict, pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in state if (m := rx.fullmatch(k))})


def _widths(state: dict, head: str, downs: list[str]) -> list[int]:
    return [int(state[head].shape[0])] + [int(state[d].shape[0]) for d in downs]


def detect(state: dict[str, torch.Tensor]) -> tuple[str, dict]:
    """``(architecture, settings)`` of a state dict, from its key names and shapes.

    Raises ValueError naming what was looked for when the keys fit no known network.
    """
    if "qf_embed.0.weight" in state and "m_head.weight" in state:
        nb = _count(state, r"m_down1\.(\d+)\.res\.0\.weight")
        downs = [f"m_down{i}.{nb}.weight" for i in (1, 2, 3)]
        widths = _widths(state, "m_head.weight", downs)
        return "fbcnn", {
            "channels": int(state["m_head.weight"].shape[1]),
            "widths": widths,
            "blocks": nb,
        }
    if "m_body.0.res.0.weight" in state and "m_head.weight" in state:
        nb = _count(state, r"m_down1\.(\d+)\.res\.0\.weight")
        downs = [f"m_down{i}.{nb}.weight" for i in (1, 2, 3)]
        return "drunet", {
            "channels": int(state["m_head.weight"].shape[1]) - 1,
            "widths": _widths(state, "m_head.weight", downs),
            "blocks": nb,
            "bias": "m_head.bias" in state,
        }
    if "m_head.0.weight" in state and any(".trans_block." in k for k in state):
        names = ["m_down1", "m_down2", "m_down3", "m_body", "m_up3", "m_up2", "m_up1"]
        stages = [_count(state, rf"{n}\.(\d+)\.trans_block\.ln1\.weight") for n in names]
        width = int(state["m_head.0.weight"].shape[0])
        heads = int(state["m_down1.0.trans_block.msa.relative_position_params"].shape[0])
        return "scunet", {
            "channels": int(state["m_head.0.weight"].shape[1]),
            "stages": stages,
            "width": width,
            "head_width": (width // 2) // heads,
        }
    raise ValueError(
        "its keys fit no known network (DnCNN: model.N.weight; FBCNN: qf_embed.*; "
        f"DRUNet: m_body.N.res.*; SCUNet: *.trans_block.*); first keys: {sorted(state)[:4]}"
    )
