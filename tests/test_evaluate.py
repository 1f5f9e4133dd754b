import math

import numpy as np
import pytest

from napari_dncnn.jpeg import jpeg_roundtrip, rgb_to_luma
from napari_dncnn.training.evaluate import (
    blocking_effect_factor,
    evaluate_folder,
    psnr,
    psnrb,
    ssim,
)


def test_identical_images():
    img = np.add.outer(np.arange(64), 2 * np.arange(64)).astype(np.uint8)  # a ramp: no blocking
    assert (
        psnr(img, img) == math.inf
        and ssim(img, img) == pytest.approx(1.0)
        and psnrb(img, img) == math.inf
    )
    # PSNR-B judges the test image alone: an image with edges on the block grid is penalised even
    # against itself (Yim & Bovik's definition)
    blocky = np.kron(np.arange(16).reshape(4, 4) * 10, np.ones((8, 8))).astype(np.uint8)
    assert psnr(blocky, blocky) == math.inf and psnrb(blocky, blocky) < 40


def test_constant_offset():
    img = np.full((64, 64), 100, np.uint8)
    off = img + 5
    assert psnr(img, off) == pytest.approx(10 * math.log10(255**2 / 25))
    assert blocking_effect_factor(off) == 0  # flat: no blocking
    assert psnrb(img, off) == pytest.approx(psnr(img, off))


def test_blocky_image_is_penalised():
    rng = np.random.default_rng(0)
    blocks = rng.integers(50, 200, (8, 8)).astype(np.uint8)
    blocky = np.kron(blocks, np.ones((8, 8), np.uint8))  # 64 x 64, edges on the 8x8 grid only
    # BEF by hand: only block-boundary pairs differ; eta = log2(8) / log2(64) = 0.5
    dh = (blocky[:, 8::8].astype(float) - blocky[:, 7:-1:8]) ** 2
    dv = (blocky[8::8].astype(float) - blocky[7:-1:8]) ** 2
    d_b = (dh.sum() + dv.sum()) / (2 * 64 * 7)
    assert blocking_effect_factor(blocky) == pytest.approx(0.5 * d_b)
    clean = blocky.copy()
    clean[0, 0] += 1
    mse = 1 / 64**2
    assert psnrb(clean, blocky) == pytest.approx(10 * math.log10(255**2 / (mse + 0.5 * d_b)))
    shifted = np.roll(blocky, 4, axis=(0, 1))  # same edges off the grid: not blocking
    assert blocking_effect_factor(shifted) == 0


def test_luma_matches_matlab():
    rgb = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0]]], np.uint8)
    np.testing.assert_array_equal(rgb_to_luma(rgb), [[235, 16, 81]])


def test_evaluate_folder_with_identity_model(tmp_path, camera_crop):
    from PIL import Image

    from napari_dncnn import DnCNN

    Image.fromarray(camera_crop).save(tmp_path / "a.png")
    rows, color = evaluate_folder(
        tmp_path, DnCNN(1, 3, 4), qualities=(10, 30)
    )  # untrained = identity
    assert not color and [r.quality for r in rows] == [10, 30]
    j = jpeg_roundtrip(camera_crop, 10)
    assert rows[0].jpeg_psnr == pytest.approx(psnr(camera_crop, j))
    assert rows[0].gain == pytest.approx(0.0) and rows[1].jpeg_psnr > rows[0].jpeg_psnr


def test_evaluate_empty_folder_fails(tmp_path):
    from napari_dncnn.files.images import ImageReadError

    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ImageReadError, match="no readable"):
        evaluate_folder(tmp_path)


def test_eval_command_prints_json_and_records_it(tmp_path, camera_crop, tiny_weights):
    import json
    import shutil
    import subprocess
    import sys

    from PIL import Image

    (tmp_path / "val").mkdir()
    Image.fromarray(camera_crop).save(tmp_path / "val" / "a.png")
    weights = tmp_path / "w.safetensors"
    shutil.copy(tiny_weights, weights)
    shutil.copy(tiny_weights.replace(".safetensors", ".json"), weights.with_suffix(".json"))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "napari_dncnn",
            "eval",
            str(tmp_path / "val"),
            "--model",
            str(weights),
            "--qualities",
            "10",
            "--json",
            "--record",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (
        out["mode"] == "gray" and out["rows"][0]["quality"] == 10 and out["rows"][0]["images"] == 1
    )
    record = json.loads(weights.with_suffix(".json").read_text())
    assert record["validation"]["val (gray)"]["rows"] == out["rows"]
    r = subprocess.run(
        [sys.executable, "-m", "napari_dncnn", "eval", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "nothing" in r.stderr  # a missing folder is bad usage, as in batch


def test_concurrent_record_updates_are_not_lost(tmp_path):
    # Two `eval --record` runs on one model each read, change and rewrite its JSON record.  Six
    # processes that each hold the record for 0.3 s between reading and writing: without the lock
    # all but one update would be lost.
    import json
    import subprocess
    import sys

    record = tmp_path / "w.json"
    record.write_text(json.dumps({"channels": 1}))
    code = (
        "import sys, time\nfrom napari_dncnn.files.atomic import update_json\n"
        "def add(r):\n    time.sleep(0.3)\n    r.setdefault('validation', {})[sys.argv[2]] = int(sys.argv[2])\n"
        "update_json(sys.argv[1], add)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(record), str(i)]) for i in range(6)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 6
    saved = json.loads(record.read_text())
    assert saved == {"channels": 1, "validation": {str(i): i for i in range(6)}}
    assert [p.name for p in tmp_path.iterdir()] == ["w.json"]  # no temporary files left


def test_record_update_refuses_a_corrupt_record(tmp_path):
    from napari_dncnn.files.atomic import JsonRecordError, update_json

    record = tmp_path / "w.json"
    record.write_text("{not json")
    with pytest.raises(JsonRecordError, match="w.json.*fix or delete"):
        update_json(record, lambda r: r.update(x=1))
    assert record.read_text() == "{not json"  # left as it was


def test_noise_evaluation_adds_seeded_noise_of_the_asked_sigma(tmp_path, camera_crop, tiny_weights):
    from PIL import Image

    (tmp_path / "val").mkdir()
    Image.fromarray(camera_crop).save(tmp_path / "val" / "a.png")
    rows, _ = evaluate_folder(tmp_path / "val", tiny_weights, noise=[25], device="cpu")
    again, _ = evaluate_folder(tmp_path / "val", tiny_weights, noise=[25], device="cpu")
    assert rows[0].noise_sigma == 25 and rows[0].label == "sigma 25"
    # uint8-rounded Gaussian noise of sigma 25 (clipped at 0 and 255): PSNR about 20.2 dB
    assert 19.5 < rows[0].jpeg_psnr < 21.0 and rows[0].psnr == again[0].psnr


def test_eval_refuses_jpeg_and_noise_together_and_bad_sigmas(tmp_path, capsys):
    from napari_dncnn.cli import main

    assert main(["eval", str(tmp_path), "--qualities", "10", "--noise", "25"]) == 2
    assert "not both" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["eval", str(tmp_path), "--noise", "-5"])
    assert exc.value.code == 2 and "at least" in capsys.readouterr().err


def test_version_and_top_level_help(capsys):
    from napari_dncnn import __version__
    from napari_dncnn.cli import main

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"napari-dncnn {__version__}"
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "``" not in out and "convert" in out and "COMMAND" in out
