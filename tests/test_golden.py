"""The same pixels as before the engine was split: bundled models on crops of the shipped examples.

``tests/data/golden-restore.npz``: the colour entries were written by the single-module engine
(commit ba903f5), the gray and 16-bit entries again when the bundled gray model changed (stage 9,
2026-12-02, on an AVX-512 host); fp32 on the CPU, residuals stored as float16.  The golden file
is the project's own output, so the plain-torch forward below checks the engine independently.
"""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from napari_dncnn import restore

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def golden():
    return np.load(ROOT / "tests" / "data" / "golden-restore.npz")


def _close(restored, expected, residual=None, expected_residual=None, ties=1 / 1000):
    """Equal but for one level at a ``ties`` share of the pixels: .5 rounding ties, which fp32
    kernels break differently on AVX2 and AVX-512 hosts (the golden file came from an AVX2 one)."""
    assert restored.dtype == expected.dtype and restored.shape == expected.shape
    diff = np.abs(restored.astype(np.int64) - expected)
    assert diff.max() <= 1 and np.count_nonzero(diff) <= max(2, diff.size * ties)
    if residual is not None:
        np.testing.assert_allclose(
            residual, expected_residual.astype(np.float32), atol=0.05, rtol=0
        )


def test_gray_colour_and_stack_restore_as_before(golden):
    gray = np.asarray(Image.open(ROOT / "examples" / "camera_q10.jpg"))[:160, :192]
    rgb = np.asarray(Image.open(ROOT / "examples" / "astronaut_q15.jpg"))[:96, :128]
    kw = {"tile_size": 64, "device": "cpu", "precision": "fp32"}
    g = restore(gray, "jpeg-gray", **kw)
    c = restore(rgb, "jpeg-color", **kw)
    s = restore(np.stack([gray, gray[::-1]]).astype(np.uint16) * 200, "jpeg-gray", **kw)
    _close(g.restored, golden["gray"], g.residual, golden["gray_residual"])
    _close(c.restored, golden["rgb"], c.residual, golden["rgb_residual"])
    # a 16-bit level is 1/65535 of the range: 257x more .5 ties than in 8 bits (67 of 61,440
    # pixels were one level off between an AVX2 and an AVX-512 host)
    _close(s.restored, golden["stack16"], ties=1 / 200)
    assert np.abs(g.residual).max() > 10  # the model did change the image


def _plain_forward(weights: Path, x: np.ndarray) -> np.ndarray:
    """DnCNN written out in plain torch functions from the safetensors keys, not the package's module.

    conv+ReLU, then (conv, batch norm with the running statistics, ReLU) per hidden layer, then a
    conv: the predicted residual, in the model's [0, 1] units.
    """
    import torch
    import torch.nn.functional as F
    from safetensors.torch import load_file

    state = load_file(str(weights))
    layers = sorted({int(k.split(".")[1]) for k in state})
    t = torch.from_numpy(x.astype(np.float32))[None, None] / 255.0
    with torch.no_grad():
        for i in layers:
            w = state[f"body.{i}.weight"]
            if w.ndim == 4:  # a convolution (bias only where no batch norm follows)
                t = F.conv2d(t, w, state.get(f"body.{i}.bias"), padding=1)
            else:  # batch norm, inference form
                mean, var = state[f"body.{i}.running_mean"], state[f"body.{i}.running_var"]
                t = (t - mean[:, None, None]) / torch.sqrt(var[:, None, None] + 1e-5)
                t = t * w[:, None, None] + state[f"body.{i}.bias"][:, None, None]
            if i != layers[-1] and (w.ndim == 1 or i == 0):
                t = torch.relu(t)
    return t[0, 0].numpy() * 255.0


def test_the_engine_equals_a_plain_forward_pass_written_here():
    """Independent of the stored arrays: the bundled gray model through the engine (tiled) against
    the network computed here from its weights file, whole, with the same uint8 rounding."""
    gray = np.asarray(Image.open(ROOT / "examples" / "camera_q10.jpg"))[:160, :192]
    weights = ROOT / "src" / "napari_dncnn" / "weights" / "bundled" / "jpeg-gray.safetensors"
    residual = _plain_forward(weights, gray)
    expected = np.clip(np.rint(gray - residual), 0, 255).astype(np.uint8)
    out = restore(gray, "jpeg-gray", tile_size=64, device="cpu", precision="fp32")
    np.testing.assert_allclose(out.residual, residual, atol=2e-3, rtol=0)
    _close(out.restored, expected)
    assert np.abs(residual).max() > 10
