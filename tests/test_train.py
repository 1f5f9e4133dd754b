import io
import json

import numpy as np
import pytest
import torch
from PIL import Image, JpegImagePlugin

from napari_dncnn.jpeg import encode_jpeg, jpeg_roundtrip
from napari_dncnn.training import TrainConfig, train
from napari_dncnn.training.data import PatchSampler, extract_patches, patch_positions
from napari_dncnn.weights import load_model


def test_patch_count_and_positions():
    pos = patch_positions((180, 180), 50, 10)
    assert len(pos) == 14 * 14
    assert pos[0].tolist() == [0, 0] and pos[-1].tolist() == [130, 130]
    assert set(pos[:, 1]) == set(range(0, 131, 10))
    assert len(patch_positions((40, 100), 50, 10)) == 0


def test_patches_come_from_the_whole_compressed_image(camera_crop):
    clean = np.ascontiguousarray(camera_crop[:90, :90])
    degraded = jpeg_roundtrip(clean, 10)
    cp, dp, pos = extract_patches(clean, degraded, 40, 10)
    assert len(cp) == len(pos) == 36
    for c, d, (y, x) in zip(cp, dp, pos):
        np.testing.assert_array_equal(c, clean[y : y + 40, x : x + 40])
        np.testing.assert_array_equal(d, degraded[y : y + 40, x : x + 40])
    # a patch at x = 10 carries the image's block grid (edges at x = 16, 24, ... in image coordinates),
    # which differs from compressing the patch alone (edges at 8, 16, ... in patch coordinates)
    y, x = pos[1]
    assert x % 8 != 0
    assert not np.array_equal(dp[1], jpeg_roundtrip(np.ascontiguousarray(cp[1]), 10))


def test_colour_samples_use_420_chroma(astronaut_crop):
    data = encode_jpeg(astronaut_crop, 30)
    with Image.open(io.BytesIO(data)) as im:
        assert JpegImagePlugin.get_sampling(im) == 2  # 4:2:0
    # a one-pixel colour line bleeds into its neighbour row: chroma is half resolution
    img = np.full((32, 32, 3), 128, np.uint8)
    img[9, :, :] = (255, 0, 0)
    out = jpeg_roundtrip(img, 95).astype(int)
    assert out[8, 16, 0] - out[8, 16, 2] > 20 or out[10, 16, 0] - out[10, 16, 2] > 20


def test_sampler_batches(astronaut_crop):
    rng = np.random.default_rng(0)
    s = PatchSampler([astronaut_crop], 24, 8, 5, 95, 4, rng)
    x, y = s.batch(10)
    assert x.shape == y.shape == (10, 3, 24, 24) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 1 and np.abs(y).max() > 0


@pytest.fixture
def train_folder(tmp_path, camera_crop):
    from skimage import data

    folder = tmp_path / "clean"
    folder.mkdir()
    cam = data.camera()
    for i, (y, x) in enumerate([(0, 0), (100, 200), (300, 100), (250, 350)]):
        Image.fromarray(cam[y : y + 96, x : x + 96]).save(folder / f"c{i}.png")
    return folder


def _cfg(tmp_path, folder, **kw):
    base = {
        "data": [str(folder)],
        "out": str(tmp_path / "w.safetensors"),
        "depth": 4,
        "features": 16,
        "patch_size": 32,
        "stride": 8,
        "batch_size": 8,
        "patches_per_image": 2,
        "steps": 40,
        "lr": 2e-3,
        "warmup": 5,
        "threads": 1,
        "run_dir": str(tmp_path / "run"),
        "checkpoint_minutes": 100,
        "log_every": 5,
        "quality_min": 10,
        "quality_max": 10,
        "command": "test",
    }
    base.update(kw)
    return TrainConfig(**base)


def _fixed_batch_loss(weights, folder):
    from napari_dncnn.training.data import load_clean_images

    net = load_model(weights).network.eval()
    s = PatchSampler(load_clean_images([folder], 1), 32, 8, 10, 10, 2, np.random.default_rng(123))
    x, y = s.batch(32)
    with torch.no_grad():
        return float(torch.mean((net(torch.from_numpy(x)) - torch.from_numpy(y)) ** 2))


def test_a_few_steps_lower_the_loss(tmp_path, train_folder):
    from napari_dncnn import DnCNN, save_weights

    save_weights(DnCNN(1, 4, 16), tmp_path / "init.safetensors")  # untrained: residual 0
    before = _fixed_batch_loss(str(tmp_path / "init.safetensors"), train_folder)
    summary = train(_cfg(tmp_path, train_folder, steps=150, lr=3e-3), progress=False)
    after = _fixed_batch_loss(summary["out"], train_folder)
    assert after < 0.95 * before  # measured: 0.89 of the untrained loss
    record = json.loads((tmp_path / "w.json").read_text())
    assert record["training"]["steps"] == 150 and record["depth"] == 4
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,") and len(rows) == 1 + 30


def test_resume_continues_the_same_trajectory(tmp_path, train_folder):
    straight = train(_cfg(tmp_path / "a", train_folder, steps=12), progress=False)
    train(_cfg(tmp_path / "b", train_folder, steps=12, pause_at=5), progress=False)
    assert json.loads((tmp_path / "b" / "run" / "checkpoint.json").read_text())["step"] == 5
    resumed = train(_cfg(tmp_path / "b", train_folder, steps=12), resume=True, progress=False)
    assert resumed["steps"] == straight["steps"] == 12
    a = load_model(straight["out"]).network.state_dict()
    b = load_model(resumed["out"]).network.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_without_checkpoint_is_an_error(tmp_path, train_folder):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(_cfg(tmp_path, train_folder), resume=True, progress=False)


def test_init_continues_from_weights_and_counts_earlier_stages(tmp_path, train_folder):
    first = train(_cfg(tmp_path / "a", train_folder, steps=4), progress=False)
    second = train(_cfg(tmp_path / "b", train_folder, steps=3, init=first["out"]), progress=False)
    record = json.loads((tmp_path / "b" / "w.json").read_text())["training"]
    assert [st["steps"] for st in record["stages"]] == [4, 3] and record["total_steps"] == 7
    assert load_model(second["out"]).network.depth == 4


def test_quality_draws_skew_low_and_leave_a_share_clean(astronaut_crop):
    s = PatchSampler(
        [astronaut_crop],
        24,
        8,
        5,
        100,
        4,
        np.random.default_rng(0),
        quality_power=2.0,
        clean_fraction=0.1,
    )
    draws = [s.draw_quality() for _ in range(4000)]
    clean = sum(q is None for q in draws)
    qs = np.array([q for q in draws if q is not None])
    assert 300 < clean < 500  # ~10 %
    assert qs.min() >= 5 and qs.max() <= 100 and np.mean(qs <= 40) > 0.55  # uniform would give 0.37


def test_space_to_depth_training_validates_at_several_qualities(tmp_path, train_folder):
    summary = train(
        _cfg(
            tmp_path,
            train_folder,
            steps=10,
            space_to_depth=2,
            val_dir=str(train_folder),
            val_images=2,
            val_crop=64,
            val_qualities=[10, 30],
            val_every=5,
        ),
        progress=False,
    )
    assert load_model(summary["out"]).network.space_to_depth == 2
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert rows[0] == "step,elapsed_s,train_s,lr,loss,val_gain_db,val_q10_db,val_q30_db"
    last = rows[-1].split(",")
    assert float(last[2]) <= float(last[1])  # training time leaves validation out
    assert abs(float(last[5]) - (float(last[6]) + float(last[7])) / 2) < 1e-3


def test_init_from_a_matconvnet_file_fine_tunes_the_bn_free_network(tmp_path, train_folder):
    from test_foreign import bn_free_net, matconvnet_layers, write_matconvnet

    src = write_matconvnet(
        tmp_path / "official.mat", matconvnet_layers(bn_free_net(depth=4, features=16))
    )
    summary = train(_cfg(tmp_path, train_folder, steps=3, init=str(src)), progress=False)
    net = load_model(summary["out"]).network
    assert not net.batchnorm and net.depth == 4
    record = json.loads((tmp_path / "w.json").read_text())
    assert record["derived_from"]["source_file"] == "official.mat"
    assert len(record["derived_from"]["source_sha256"]) == 64


def test_existing_out_is_refused_unless_overwrite_or_resume(tmp_path, train_folder):
    first = train(_cfg(tmp_path, train_folder, steps=2), progress=False)
    before = (tmp_path / "w.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        train(_cfg(tmp_path, train_folder, steps=2, seed=1), progress=False)
    assert (tmp_path / "w.safetensors").read_bytes() == before
    train(_cfg(tmp_path, train_folder, steps=2, seed=1), progress=False, overwrite=True)
    assert (tmp_path / "w.safetensors").read_bytes() != before and first["steps"] == 2


def test_validation_gain_of_gray_and_rgb_pairs(tiny_gray, tiny_color, camera_crop, astronaut_crop):
    """The periodic validation runs on colour pairs too (it crashed on them), and 0 for a zero residual."""
    import torch

    from napari_dncnn.jpeg import jpeg_roundtrip
    from napari_dncnn.training.loop import validation_gain

    for net, clean in ((tiny_gray, camera_crop), (tiny_color, astronaut_crop)):
        gain = validation_gain(
            net, [(clean, jpeg_roundtrip(clean, 20))], torch.device("cpu"), False
        )
        assert np.isfinite(gain)
        with torch.no_grad():
            for p in net.body[-1].parameters():
                p.zero_()  # residual 0: the restoration is the JPEG itself
        assert (
            validation_gain(net, [(clean, jpeg_roundtrip(clean, 20))], torch.device("cpu"), False)
            == 0
        )


@pytest.mark.parametrize("channels", [1, 3])
def test_synthetic_images_are_flat_smooth_or_textured_and_mixed_in(channels, astronaut_crop):
    from napari_dncnn.training.synthetic import KINDS, synthetic_image

    rng = np.random.default_rng(1)
    images = [synthetic_image(rng, (96, 96), channels) for _ in range(60)]
    assert all(im.dtype == np.uint8 and im.shape[:2] == (96, 96) for im in images)
    assert all((im.ndim == 3) == (channels == 3) for im in images)
    # the kinds differ: some are nearly flat, some vary at every pixel
    roughness = [np.abs(np.diff(im.astype(float), axis=0)).mean() for im in images]
    assert min(roughness) < 1 and max(roughness) > 10 and len(KINDS) >= 5
    real = astronaut_crop if channels == 3 else astronaut_crop[..., 0]
    s = PatchSampler([real], 24, 8, 5, 100, 4, rng, synthetic_fraction=1.0)
    x, y = s.batch(12)
    assert x.shape == (12, channels, 24, 24) and np.isfinite(y).all()
    none = PatchSampler([real], 24, 8, 5, 100, 4, np.random.default_rng(1))
    some = PatchSampler([real], 24, 8, 5, 100, 4, np.random.default_rng(1), synthetic_fraction=0.5)
    assert not np.array_equal(none.batch(8)[0], some.batch(8)[0])
