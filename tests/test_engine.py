import threading
from pathlib import Path

import numpy as np
import pytest

from napari_dncnn import Cancelled, restore


def test_tiled_equals_whole_image_on_odd_sizes(tiny_gray):
    rng = np.random.default_rng(0)
    img = rng.random((67, 53)).astype(np.float32)
    whole = restore(img, tiny_gray, tile_size=1000, precision="fp32", data_range=(0, 1))
    for tile in (7, 16, 30):
        tiled = restore(img, tiny_gray, tile_size=tile, precision="fp32", data_range=(0, 1))
        assert np.abs(whole.residual).max() > 1e-3
        np.testing.assert_allclose(tiled.residual, whole.residual, atol=1e-5, rtol=0)
        np.testing.assert_allclose(tiled.restored, whole.restored, atol=1e-5, rtol=0)


def test_progress_counts_tiles(tiny_gray):
    calls = []
    restore(
        np.zeros((2, 40, 25), np.uint8),
        tiny_gray,
        tile_size=16,
        progress=lambda d, t: calls.append((d, t)),
    )
    # 2 planes x ceil(40/16) x ceil(25/16) = 2 x 3 x 2 tiles
    assert calls[0] == (0, 12) and calls[-1] == (12, 12) and len(calls) == 13


def test_restored_is_input_minus_residual_in_input_units(tiny_gray, camera_crop):
    r = restore(camera_crop, tiny_gray)
    assert r.restored.dtype == np.uint8 and r.residual.dtype == np.float32
    assert r.restored.shape == r.residual.shape == camera_crop.shape
    expect = np.clip(np.round(camera_crop - r.residual.astype(np.float64)), 0, 255)
    np.testing.assert_array_equal(r.restored, expect)
    assert np.abs(r.residual).max() > 1  # in 0..255 units, not 0..1


def test_same_picture_in_three_dtypes_restores_alike(tiny_gray, camera_crop):
    u8 = restore(camera_crop, tiny_gray, precision="fp32")
    u16 = restore(camera_crop.astype(np.uint16) * 257, tiny_gray, precision="fp32")
    f32 = restore(camera_crop.astype(np.float32) / 255, tiny_gray, precision="fp32")
    assert u16.restored.dtype == np.uint16 and f32.restored.dtype == np.float32
    np.testing.assert_allclose(u16.restored / 257.0, u8.restored, atol=0.51)
    assert (u8.restored == 255).any() and (
        u16.restored == 65535
    ).any()  # clipping at the dtype limits
    np.testing.assert_allclose(
        np.clip(f32.restored * 255.0, 0, 255), u8.restored, atol=0.51
    )  # floats: unclipped
    np.testing.assert_allclose(u16.residual / 257.0, u8.residual, atol=1e-3)
    np.testing.assert_allclose(f32.residual * 255.0, u8.residual, atol=1e-3)


def test_float_output_is_not_clipped_and_int_output_is(tiny_gray):
    img = np.full((20, 20), 255, np.uint8)
    img[::2] = 0
    r = restore(img, tiny_gray)
    assert r.restored.min() >= 0 and r.restored.max() <= 255
    f = restore(img.astype(np.float64) / 255, tiny_gray)
    assert f.restored.dtype == np.float64
    assert (
        f.restored.max() > 1 or f.restored.min() < 0
    )  # the untrained net overshoots; floats keep it


def test_stacks_are_restored_plane_by_plane(tiny_gray, camera_crop):
    stack = np.stack([camera_crop, camera_crop[::-1], camera_crop[:, ::-1]])[None].repeat(
        2, 0
    )  # (2,3,Y,X)
    r = restore(stack, tiny_gray)
    assert r.restored.shape == stack.shape
    one = restore(camera_crop[::-1], tiny_gray)
    np.testing.assert_array_equal(r.restored[1, 1], one.restored)


def test_three_planes_are_gray_unless_channel_axis_says_rgb(tiny_gray, tiny_color, astronaut_crop):
    planes = np.moveaxis(astronaut_crop, -1, 0)  # (3, Y, X)
    r = restore(planes, tiny_gray)
    np.testing.assert_array_equal(r.restored[2], restore(planes[2], tiny_gray).restored)
    with pytest.raises(ValueError, match="colour model needs RGB"):
        restore(planes, tiny_color)
    c = restore(planes, tiny_color, channel_axis=0)
    last = restore(astronaut_crop, tiny_color)
    np.testing.assert_array_equal(np.moveaxis(c.restored, 0, -1), last.restored)


def test_rgba_alpha_passes_through(tiny_color, astronaut_crop):
    alpha = np.linspace(0, 255, astronaut_crop.shape[0] * astronaut_crop.shape[1]).reshape(
        astronaut_crop.shape[:2]
    )
    rgba = np.dstack([astronaut_crop, alpha.astype(np.uint8)])
    r = restore(rgba, tiny_color)
    np.testing.assert_array_equal(r.restored[..., 3], rgba[..., 3])
    assert np.all(r.residual[..., 3] == 0)
    np.testing.assert_array_equal(r.restored[..., :3], restore(astronaut_crop, tiny_color).restored)


def test_channel_axis_of_another_size_than_3_or_4_is_refused(tiny_gray, camera_crop):
    two = np.dstack([camera_crop, camera_crop[::-1]])  # (Y, X, 2): not colour
    with pytest.raises(ValueError, match=r"channel_axis=-1 has 2 entries.*np.moveaxis"):
        restore(two, tiny_gray, channel_axis=-1)
    planes = np.moveaxis(two, -1, 0)  # the fix the message gives: two gray planes
    np.testing.assert_array_equal(
        restore(planes, tiny_gray).restored[1], restore(camera_crop[::-1], tiny_gray).restored
    )


def test_images_smaller_than_the_receptive_field(tiny_gray):
    for shape in [(1, 1), (3, 2), (5, 9)]:
        r = restore(np.arange(np.prod(shape), dtype=np.uint8).reshape(shape), tiny_gray)
        assert r.restored.shape == shape


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.array([[np.nan, 1.0], [2.0, 3.0]]), "NaN or infinite"),
        (np.array([[np.inf, 1.0], [2.0, 3.0]]), "NaN or infinite"),
        (np.zeros((0, 5)), "empty"),
        (np.float32(3), "at least 2 dimensions"),
        (np.arange(5), "at least 2 dimensions"),
        (np.ones((4, 4), bool), "boolean"),
        (np.ones((4, 4), np.complex64), "complex"),
        (np.array([["a", "b"], ["c", "d"]]), "dtype"),
    ],
)
def test_bad_inputs_say_what_is_wrong(tiny_gray, bad, message):
    with pytest.raises(ValueError, match=message):
        restore(bad, tiny_gray)


def test_missing_device_is_a_clear_error(tiny_gray):
    with pytest.raises(ValueError, match="CUDA GPU"):  # "has no CUDA GPU" or "has N CUDA GPU(s)"
        restore(np.zeros((8, 8), np.uint8), tiny_gray, device="cuda:99")
    with pytest.raises(ValueError, match="unknown device"):
        restore(np.zeros((8, 8), np.uint8), tiny_gray, device="tpu9")


def test_cancel_stops_within_one_tile(tiny_gray):
    cancel = threading.Event()
    seen = []

    def progress(done, total):
        seen.append(done)
        if done == 3:
            cancel.set()

    with pytest.raises(Cancelled):
        restore(
            np.zeros((64, 64), np.uint8), tiny_gray, tile_size=8, progress=progress, cancel=cancel
        )
    assert max(seen) == 3  # 64 tiles planned, stopped right after the third


def test_bad_weights_path_is_a_clear_error(tmp_path):
    from napari_dncnn import WeightsError

    with pytest.raises(WeightsError, match="does not exist"):
        restore(np.zeros((8, 8), np.uint8), str(tmp_path / "nope.safetensors"))
    pth = tmp_path / "model.pth"
    pth.write_bytes(b"\x80\x04not really")
    with pytest.raises(WeightsError, match="model.pth: refused"):
        restore(np.zeros((8, 8), np.uint8), str(pth))
    with pytest.raises(WeightsError, match="not a weights file napari-dncnn reads"):
        restore(
            np.zeros((8, 8), np.uint8),
            str(pth.with_suffix(".bin").write_bytes(b"x") and pth.with_suffix(".bin")),
        )
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(WeightsError, match="cannot read"):
        restore(np.zeros((8, 8), np.uint8), str(broken))
    with pytest.raises(WeightsError, match="unknown model"):
        restore(np.zeros((8, 8), np.uint8), "jpeg-purple")
    with pytest.raises(WeightsError, match="did you mean 'jpeg-gray'"):
        restore(np.zeros((8, 8), np.uint8), "jpeg-grey")


def test_weights_file_round_trip(tiny_gray, tiny_weights, camera_crop):
    a = restore(camera_crop, tiny_gray)
    b = restore(camera_crop, tiny_weights)
    np.testing.assert_array_equal(a.restored, b.restored)


def test_engine_imports_neither_napari_nor_qt():
    import subprocess
    import sys

    code = (
        "import sys, napari_dncnn, napari_dncnn.engine, napari_dncnn.batch, napari_dncnn.cli, "
        "napari_dncnn.training, napari_dncnn.training.evaluate, napari_dncnn.files.lazy_images, "
        "napari_dncnn.folders, napari_dncnn.compression.folders\n"
        "gui = ('napari', 'magicgui', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'vispy')\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in gui]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_space_to_depth_network_tiles_exactly_and_round_trips_through_a_file(tmp_path):
    import torch

    from conftest import randomised
    from napari_dncnn import DnCNN, load_model, save_weights

    torch.manual_seed(3)
    net = randomised(DnCNN(1, depth=4, features=8, space_to_depth=2), seed=3)
    img = np.random.default_rng(1).random((67, 53)).astype(np.float32)
    whole = restore(img, net, tile_size=1000, precision="fp32", data_range=(0, 1))
    assert np.abs(whole.residual).max() > 1e-3
    for tile in (11, 16, 30):  # odd tiles are rounded up to the unshuffle grid
        tiled = restore(img, net, tile_size=tile, precision="fp32", data_range=(0, 1))
        np.testing.assert_allclose(tiled.residual, whole.residual, atol=1e-5, rtol=0)
    path = save_weights(net, tmp_path / "s2d.safetensors")
    loaded = load_model(path)
    assert loaded.network.space_to_depth == 2 and loaded.record["receptive_radius"] == 10
    again = restore(img, str(path), tile_size=16, precision="fp32", data_range=(0, 1))
    np.testing.assert_allclose(again.residual, whole.residual, atol=1e-5, rtol=0)


def test_unknown_precision_is_an_error(tiny_gray, camera_crop):
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        restore(camera_crop, tiny_gray, precision="fp16")


def test_masked_arrays_and_odd_tile_sizes_are_clear_errors(tiny_gray, camera_crop):
    masked = np.ma.masked_array(camera_crop, mask=camera_crop > 200)
    with pytest.raises(ValueError, match="masked array"):
        restore(masked, tiny_gray)
    with pytest.raises(ValueError, match="whole number"):
        restore(camera_crop, tiny_gray, tile_size=2.5)
    with pytest.raises(ValueError, match="below this network's receptive radius \\(5 px\\)"):
        restore(camera_crop, tiny_gray, tile_size=2)
    assert (
        restore(camera_crop, tiny_gray, tile_size=0).restored.shape == camera_crop.shape
    )  # 0: automatic


def test_auto_precision_follows_this_cpu_s_flags_for_inference_and_training():
    import torch

    from napari_dncnn.devices import use_bf16

    flags = Path("/proc/cpuinfo").read_text()
    cpu = torch.device("cpu")
    assert use_bf16("auto", cpu) == ("amx_bf16" in flags)  # inference: AMX only
    assert use_bf16("auto", cpu, training=True) == ("avx512_bf16" in flags or "amx_bf16" in flags)
    assert use_bf16("fp32", cpu) is False and use_bf16("bf16", cpu) is True
