"""TIFFs whose pixels mean more than their stored values: MinIsWhite, palette (indexed colour),
associated alpha.  A batch writes each restoration so that it shows what the input showed."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_dncnn import restore
from napari_dncnn.batch import run_batch
from napari_dncnn.files.images import colour_from_header

OUT_OF_CORE = {"whole": 2**40, "out of core": 1000}  # --out-of-core-above, in values


def _batch(src, out, weights, path):
    kw = {"force": True, "progress": False, "out_of_core_above": OUT_OF_CORE[path]}
    report = run_batch(src, out, model=weights, save_residual=True, **kw)
    assert all(r.details["out_of_core"] == (path == "out of core") for r in report.results)
    return report


@pytest.mark.parametrize("path", list(OUT_OF_CORE))
def test_a_miniswhite_tiff_stays_miniswhite(tmp_path, camera_crop, tiny_weights, path):
    """It came back MinIsBlack with its stored values restored: a negative of the input."""
    src = tmp_path / "in"
    src.mkdir()
    stored = 255 - camera_crop
    tifffile.imwrite(src / "w.tif", stored, photometric="miniswhite")
    report = _batch(src, tmp_path / "out", tiny_weights, path)
    assert report.count("done") == 1, report.summary()
    with tifffile.TiffFile(tmp_path / "out" / "w.tif") as tf:
        assert tf.pages[0].photometric == tifffile.PHOTOMETRIC.MINISWHITE
        got = tf.asarray()
    assert np.abs(got.astype(int) - restore(stored, tiny_weights).restored).max() <= 1


@pytest.mark.parametrize("path", list(OUT_OF_CORE))
def test_a_palette_tiff_is_restored_as_the_colours_it_shows(
    tmp_path, camera_crop, tiny_weights, tiny_color_weights, path
):
    """Its indices were restored as gray levels and written without the colormap."""
    src = tmp_path / "in"
    src.mkdir()
    levels = np.arange(256, dtype=np.uint16)
    colour = np.stack([levels, 255 - levels, levels // 2]) * 257
    tifffile.imwrite(src / "c.tif", camera_crop, photometric="palette", colormap=colour)
    gray = np.stack([levels] * 3) * 257
    tifffile.imwrite(src / "g.tif", camera_crop, photometric="palette", colormap=gray)
    assert colour_from_header(src / "c.tif") and colour_from_header(src / "g.tif") is False
    report = _batch(src, tmp_path / "out", "auto", path)
    assert report.count("done") == 2, report.summary()
    shown = np.stack([camera_crop, 255 - camera_crop, camera_crop // 2], -1).astype(np.uint8)
    expected = {"c": (shown, "jpeg-color", 2), "g": (camera_crop, "jpeg-gray", 1)}
    for r in report.results:
        name = r.input.stem
        image, model, photometric = expected[name]
        with tifffile.TiffFile(tmp_path / "out" / f"{name}.tif") as tf:
            assert tf.pages[0].photometric == photometric and tf.pages[0].colormap is None
            got = tf.asarray()
        want = restore(image, model).restored
        assert got.shape == want.shape and got.dtype == np.uint8
        assert np.abs(got.astype(int) - want).max() <= 2, name
        shows = "RGB" if name == "c" else "gray"
        assert f"written as the {shows} image it shows, not as a palette" in r.warning


@pytest.mark.parametrize("path", list(OUT_OF_CORE))
def test_an_associated_alpha_stays_associated(tmp_path, astronaut_crop, tiny_color_weights, path):
    """An RGBA TIFF's premultiplied (associated) alpha came back as unassociated."""
    src = tmp_path / "in"
    src.mkdir()
    alpha = np.full(astronaut_crop.shape[:2], 200, np.uint8)
    rgba = np.dstack([astronaut_crop, alpha])
    tifffile.imwrite(src / "a.tif", rgba, photometric="rgb", extrasamples=["assocalpha"])
    report = _batch(src, tmp_path / "out", tiny_color_weights, path)
    assert report.count("done") == 1, report.summary()
    for name in ("a.tif", "a_residual.tif"):
        with tifffile.TiffFile(tmp_path / "out" / name) as tf:
            assert tf.pages[0].extrasamples == (tifffile.EXTRASAMPLE.ASSOCALPHA,), name
    assert np.array_equal(tifffile.imread(tmp_path / "out" / "a.tif")[..., 3], alpha)
