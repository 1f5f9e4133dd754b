"""The same pixels as before the engine was split: bundled models on crops of the shipped examples.

``tests/data/golden-restore.npz`` was written by the single-module engine (commit ba903f5) with
fp32 on the CPU; residuals are stored as float16.
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


def _close(restored, expected, residual=None, expected_residual=None):
    assert restored.dtype == expected.dtype and restored.shape == expected.shape
    diff = np.abs(restored.astype(np.int64) - expected)
    assert diff.max() <= 1 and np.count_nonzero(diff) <= max(
        2, diff.size // 1000
    )  # .5 rounding ties
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
    _close(s.restored, golden["stack16"])
    assert np.abs(g.residual).max() > 10  # the model did change the image
