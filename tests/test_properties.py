"""A property of every batch, over random dtypes, shapes, channel layouts and formats: the output
has the input's dtype, shape and channel layout, "unchanged" means equal, and the input's bytes
never change."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import imagecodecs
import numpy as np
import tifffile
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from napari_dncnn.batch import run_batch
from napari_dncnn.files.images import read_image


@st.composite
def image_files(draw):
    """(file name, pixels): a TIFF (gray, RGB or a 3-plane stack; 8/16-bit or float) or a PNG
    (gray or RGB, 8 or 16 bits) of random size and content."""
    fmt = draw(st.sampled_from(["tif", "png"]))
    layout = draw(st.sampled_from(["gray", "rgb", "stack"] if fmt == "tif" else ["gray", "rgb"]))
    dtype = np.dtype(
        draw(st.sampled_from(["uint8", "uint16", "float32"][: 3 if fmt == "tif" else 2]))
    )
    h, w = draw(st.integers(9, 72)), draw(st.integers(9, 72))
    shape = {"gray": (h, w), "rgb": (h, w, 3), "stack": (3, h, w)}[layout]
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if dtype.kind == "f":
        pixels = rng.random(shape, dtype=np.float32)
    else:
        pixels = rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
    return f"im.{fmt}", pixels, layout


def _write(path: Path, pixels: np.ndarray, layout: str) -> None:
    if path.suffix == ".tif":
        tifffile.imwrite(path, pixels, photometric="rgb" if layout == "rgb" else "minisblack")
    elif pixels.dtype == np.uint16 and pixels.ndim == 3:  # Pillow writes 16-bit colour as 8
        path.write_bytes(imagecodecs.png_encode(pixels))
    else:
        Image.fromarray(pixels).save(path)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(image=image_files(), force=st.booleans())
def test_outputs_keep_dtype_shape_and_layout_and_inputs_never_change(tiny_weights, image, force):
    name, pixels, layout = image
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in", Path(tmp) / "out"
        src.mkdir()
        _write(src / name, pixels, layout)
        before = hashlib.sha256((src / name).read_bytes()).hexdigest()
        given_in = read_image(src / name)
        run_batch(src, out, model=tiny_weights, progress=False, force=force, log=lambda *_: None)
        assert hashlib.sha256((src / name).read_bytes()).hexdigest() == before  # input untouched
        entry = json.loads((out / "napari-dncnn-report.json").read_text())["files"][0]
        assert entry["status"] in ("done", "unchanged"), entry
        event(f"{entry['status']} {name} {layout} {pixels.dtype}")
        result = read_image(
            out / Path(name).with_suffix(".png" if name.endswith(".png") else ".tif")
        )
        assert result.data.dtype == given_in.data.dtype and result.data.shape == given_in.data.shape
        assert result.axes == given_in.axes and result.channel_axis == given_in.channel_axis
        if entry["status"] == "unchanged":
            np.testing.assert_array_equal(result.data, given_in.data)
        else:  # restored: finite values of the input's kind (a float image stays float)
            assert np.isfinite(result.data.astype(np.float64)).all()
