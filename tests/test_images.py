import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_dncnn.files.images import ImageReadError, colour_from_header, read_image, write_image


def test_imagej_tiff_keeps_dtype_axes_resolution_and_spacing(tmp_path):
    data = (np.arange(3 * 20 * 30) % 4000).astype(np.uint16).reshape(3, 20, 30)
    src = tmp_path / "stack.tif"
    tifffile.imwrite(
        src,
        data,
        imagej=True,
        resolution=(1 / 0.25, 1 / 0.25),
        metadata={"axes": "ZYX", "spacing": 2.5, "unit": "um"},
    )
    img = read_image(src)
    assert img.axes == "ZYX" and img.data.dtype == np.uint16
    out = write_image(tmp_path / "out" / "stack.tif", img.data + 1, img)
    with tifffile.TiffFile(out) as tf:
        assert tf.is_imagej and tf.series[0].axes == "ZYX"
        assert tf.imagej_metadata["spacing"] == 2.5 and tf.imagej_metadata["unit"] == "um"
        assert tf.pages[0].resolution == pytest.approx((4.0, 4.0))
        np.testing.assert_array_equal(tf.asarray(), data + 1)


def test_ome_tiff_keeps_physical_sizes(tmp_path):
    data = np.zeros((2, 16, 16), np.float32)
    src = tmp_path / "a.ome.tif"
    tifffile.imwrite(
        src,
        data,
        ome=True,
        metadata={"axes": "ZYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5, "PhysicalSizeZ": 3.0},
    )
    img = read_image(src)
    out = write_image(tmp_path / "b.tif", img.data, img)
    with tifffile.TiffFile(out) as tf:
        pixels = tifffile.xml2dict(tf.ome_metadata)["OME"]["Image"]["Pixels"]
        assert tf.is_ome and tf.series[0].axes == "ZYX" and tf.series[0].dtype == np.float32
        assert pixels["PhysicalSizeX"] == 0.5 and pixels["PhysicalSizeZ"] == 3.0


def test_ome_tiff_keeps_channel_names_whole_and_tiled(tmp_path):
    """An OME-TIFF's channel names (DAPI, GFP) were dropped from the restored file."""
    import dask.array as da

    from napari_dncnn.files.lazy_images import open_lazy
    from napari_dncnn.files.tiled_tiff import write_tiled_tiff

    src = tmp_path / "two.ome.tif"
    planes = np.arange(2 * 32 * 48, dtype=np.uint16).reshape(2, 32, 48)
    md = {"axes": "CYX", "Channel": {"Name": ["DAPI", "GFP"]}, "PhysicalSizeX": 0.5}
    tifffile.imwrite(src, planes, metadata=md)
    whole = write_image(tmp_path / "whole.ome.tif", planes, read_image(src))
    with open_lazy(src) as img:
        tiled = write_tiled_tiff([tmp_path / "tiled.ome.tif"], [da.asarray(img.data)], img)[0]
    for out in (whole, tiled):
        with tifffile.TiffFile(out) as tf:
            pixels = tifffile.xml2dict(tf.ome_metadata)["OME"]["Image"]["Pixels"]
            assert [c["Name"] for c in pixels["Channel"]] == ["DAPI", "GFP"], out
            assert tf.series[0].axes == "CYX" and pixels["PhysicalSizeX"] == 0.5
    rgb = tmp_path / "rgb.ome.tif"  # one channel of three samples: its name is not kept
    tifffile.imwrite(
        rgb, np.zeros((8, 8, 3), np.uint8), photometric="rgb", metadata={"Channel": {"Name": "RGB"}}
    )
    out = write_image(tmp_path / "rgb_out.tif", np.ones((8, 8, 3), np.uint8), read_image(rgb))
    assert tifffile.imread(out).shape == (8, 8, 3)


def test_rgb_tiff_channel_axis(tmp_path):
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((10, 12, 3), np.uint8), photometric="rgb")
    img = read_image(tmp_path / "rgb.tif")
    assert img.axes == "YXS" and img.channel_axis == 2


def test_broken_files_name_the_file(tmp_path, camera_crop):
    from PIL import Image

    good = tmp_path / "good.jpg"
    Image.fromarray(camera_crop).save(good, quality=50)
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.tif"
    text.write_text("not a tiff")
    assert read_image(good).data.shape == camera_crop.shape
    for bad in (truncated, empty, text):
        with pytest.raises(ImageReadError, match=bad.name):
            read_image(bad)


def test_an_image_without_pixels_is_refused_by_name_whole_and_lazy(tmp_path):
    """A TIFF of 0x10 pixels and a zarr of 10x0 failed with numpy's "cannot reshape array of size
    0" from the quality guard."""
    import zarr

    from napari_dncnn.files.lazy_images import open_lazy

    tifffile.imwrite(tmp_path / "zero.tif", np.zeros((0, 10), np.uint8))
    zarr.open_array(tmp_path / "zero.zarr", mode="w", shape=(10, 0), dtype="uint8")
    for path, read in ((tmp_path / "zero.tif", read_image), (tmp_path / "zero.tif", open_lazy)):
        with pytest.raises(
            ImageReadError, match=r"zero\.tif: the image has no pixels \(shape \(0, 10\)\)"
        ):
            read(path)
    with pytest.raises(ImageReadError, match=r"zero\.zarr: the image has no pixels"):
        open_lazy(tmp_path / "zero.zarr")


def test_writes_leave_no_temporary_file(tmp_path):
    write_image(tmp_path / "x.png", np.zeros((5, 5), np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


@pytest.mark.parametrize("source", ["jpeg", "png", "png16"])
def test_a_png_output_keeps_the_resolution_and_icc_profile(tmp_path, source):
    """A restored (or unchanged) PNG/JPEG kept neither its dpi nor its colour profile, nor a PNG
    its text chunks."""
    import imagecodecs
    from PIL import ImageCms
    from PIL.PngImagePlugin import PngInfo
    from skimage import data

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    text = {"Author": "A. Lab", "Title": "Zellkultur 日本"}  # Latin-1 (tEXt) and UTF-8 (iTXt)
    rgb = data.astronaut()[:64, :96]
    src = tmp_path / f"in.{'jpg' if source == 'jpeg' else 'png'}"
    if source == "png16":  # Pillow cannot write 16-bit colour: the chunks go in by hand
        from napari_dncnn.files.png import png_with_chunks

        rgb16 = rgb.astype(np.uint16) * 257
        info = {"dpi": (300, 300), "icc_profile": icc, "text": text}
        src.write_bytes(png_with_chunks(imagecodecs.png_encode(rgb16), info))
    else:
        chunks = PngInfo()
        chunks.add_text("Author", text["Author"])
        chunks.add_itxt("Title", text["Title"])
        kw = {"pnginfo": chunks} if source == "png" else {"quality": 30}
        Image.fromarray(rgb).save(src, dpi=(300, 300), icc_profile=icc, **kw)
    img = read_image(src)
    assert img.pil["icc_profile"] == icc and np.allclose(img.pil["dpi"], (300, 300), atol=0.01)
    out = write_image(tmp_path / "out.png", img.data[::-1].copy(), img)
    with Image.open(out) as im:
        assert im.info["icc_profile"] == icc and np.allclose(im.info["dpi"], (300, 300), atol=0.01)
        kept = {k: im.info.get(k) for k in text}
        assert kept == (text if source != "jpeg" else dict.fromkeys(text)), kept
    np.testing.assert_array_equal(read_image(out).data, img.data[::-1])  # the pixels as written
    assert read_image(out).data.dtype == (np.uint16 if source == "png16" else np.uint8)


def test_a_cmyk_jpeg_profile_is_not_put_on_its_rgb_pixels(tmp_path):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()  # stands for CMYK's
    Image.new("CMYK", (32, 32), (10, 20, 30, 0)).save(
        tmp_path / "c.jpg", icc_profile=icc, dpi=(150, 150)
    )
    img = read_image(tmp_path / "c.jpg")
    assert (
        img.data.shape == (32, 32, 3)
        and "icc_profile" not in img.pil
        and img.pil["dpi"] == (150.0, 150.0)
    )


def test_a_palette_png_is_gray_when_its_palette_is(tmp_path, camera_crop, astronaut_crop):
    """A gray palette PNG is read as gray (it was RGB), with transparency as gray + alpha; a
    colour palette stays RGB(A); the header says the same before any pixel is decoded."""
    gray = Image.fromarray(camera_crop).convert("P")
    gray.save(tmp_path / "gray.png")
    gray.save(tmp_path / "gray_t.png", transparency=0)
    colour = Image.fromarray(astronaut_crop).convert("P")
    colour.save(tmp_path / "colour.png")
    colour.save(tmp_path / "colour_t.png", transparency=0)
    expected = {  # name: (shape, samples, colour)
        "gray": (camera_crop.shape, "", False),
        "gray_t": ((*camera_crop.shape, 2), "gray+alpha", False),
        "colour": ((*astronaut_crop.shape[:2], 3), "", True),
        "colour_t": ((*astronaut_crop.shape[:2], 4), "", True),
    }
    for name, (shape, samples, colour) in expected.items():
        img = read_image(tmp_path / f"{name}.png")
        assert (img.data.shape, img.samples) == (shape, samples), name
        assert colour_from_header(tmp_path / f"{name}.png") is colour, name
    assert np.array_equal(read_image(tmp_path / "gray.png").data, np.asarray(gray.convert("L")))


def test_a_tiled_tiff_is_written_tiled_in_its_tiles(tmp_path, camera_crop):
    """A tiled TIFF's result was written in strips; an ImageJ one stays untiled (ImageJ reads no
    tiles)."""
    stack = np.stack([camera_crop, camera_crop[::-1]])
    tifffile.imwrite(tmp_path / "t.tif", stack, tile=(32, 48), metadata={"axes": "ZYX"})
    src = read_image(tmp_path / "t.tif")
    write_image(tmp_path / "o.tif", stack[:, ::-1].copy(), src)
    with tifffile.TiffFile(tmp_path / "o.tif") as tf:
        page = tf.pages[0]
        assert (page.tilelength, page.tilewidth) == (32, 48) and tf.series[0].axes == "ZYX"
        assert np.array_equal(tf.asarray(), stack[:, ::-1])
    tifffile.imwrite(tmp_path / "ij.tif", stack, imagej=True, metadata={"axes": "ZYX"})
    write_image(tmp_path / "ij_out.tif", stack, read_image(tmp_path / "ij.tif"))
    with tifffile.TiffFile(tmp_path / "ij_out.tif") as tf:
        assert tf.is_imagej and not tf.pages[0].is_tiled
