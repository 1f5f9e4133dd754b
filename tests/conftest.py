"""Shared fixtures: tiny DnCNNs with non-trivial batch-norm state, and their weights files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_dncnn import DnCNN, save_weights


def randomised(net: DnCNN, seed: int = 0) -> DnCNN:
    """Give every BN random running statistics and affine parameters, and the last layer weights."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
        last = net.body[-1]
        last.weight.copy_(torch.randn(last.weight.shape, generator=g) * 0.05)
        last.bias.copy_(torch.randn(last.bias.shape, generator=g) * 0.01)
    return net.eval()


@pytest.fixture
def tiny_gray() -> DnCNN:
    torch.manual_seed(0)
    return randomised(DnCNN(1, depth=5, features=8))


@pytest.fixture
def tiny_color() -> DnCNN:
    torch.manual_seed(1)
    return randomised(DnCNN(3, depth=4, features=8), seed=1)


@pytest.fixture
def tiny_weights(tmp_path_factory, tiny_gray) -> str:
    path = tmp_path_factory.mktemp("weights") / "tiny-gray.safetensors"
    save_weights(tiny_gray, path, {"note": "test weights"})
    return str(path)


@pytest.fixture
def tiny_color_weights(tmp_path_factory, tiny_color) -> str:
    path = tmp_path_factory.mktemp("weights") / "tiny-color.safetensors"
    save_weights(tiny_color, path, {"note": "test weights"})
    return str(path)


@pytest.fixture
def camera_crop() -> np.ndarray:
    from skimage import data

    img = data.camera()[100:196, 150:270].copy()  # 96 x 120
    img[0, 0], img[0, 1] = 0, 255  # full 0..255 range, so every dtype normalises alike
    return img


@pytest.fixture
def astronaut_crop() -> np.ndarray:
    from skimage import data

    return data.astronaut()[40:120, 180:280].copy()  # 80 x 100 x 3
