"""Compression: Bjontegaard deltas against closed forms, the quality search, and the rd/compress commands."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
from PIL import Image
from skimage import data

from napari_dncnn import restore
from napari_dncnn.cli import main
from napari_dncnn.compression import Target, bd_quality, bd_rate, compress_image, smallest_quality
from napari_dncnn.jpeg import estimate_jpeg_quality, read_model_tag
from napari_dncnn.training.evaluate import psnr
from napari_dncnn.weights import load_model

# ---------------------------------------------------------------- Bjontegaard deltas


def test_bd_rate_and_psnr_of_a_constant_rate_ratio():
    """Test codec needs 80% of the bytes at every PSNR: BD-rate -20%, BD-PSNR 10 log10(1.25) dB."""
    rate = np.array([0.25, 0.5, 1.0, 2.0, 4.0])
    quality = 28 + 10 * np.log10(rate)  # PSNR linear in log-rate: the cubic fit is exact
    assert bd_rate(rate, quality, 0.8 * rate, quality) == pytest.approx(-20.0, abs=1e-9)
    assert bd_quality(rate, quality, 0.8 * rate, quality) == pytest.approx(
        10 * math.log10(1.25), abs=1e-9
    )
    assert bd_rate(rate, quality, rate, quality) == pytest.approx(0.0, abs=1e-9)


def test_bd_rate_integrates_only_the_overlap():
    """log-rate gap growing linearly with PSNR, curves overlapping on 33..40 dB: mean gap in closed form."""
    d_ref, d_test = np.linspace(30, 40, 6), np.linspace(33, 45, 7)
    log_rate = lambda d: 0.2 * d - 7  # noqa: E731
    rate_ref = np.exp(log_rate(d_ref))
    rate_test = np.exp(log_rate(d_test) + 0.01 * d_test - 0.5)
    mean_gap = 0.01 * (33 + 40) / 2 - 0.5  # integral of the linear gap over [33, 40], / 7
    expected = (math.exp(mean_gap) - 1) * 100
    assert bd_rate(rate_ref, d_ref, rate_test, d_test) == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(-12.63, abs=0.01)


def test_bd_refuses_curves_that_do_not_overlap_and_bad_rates():
    rate = np.array([1.0, 2.0, 4.0, 8.0])
    with pytest.raises(ValueError, match="do not overlap"):
        bd_rate(rate, [30, 31, 32, 33], rate, [40, 41, 42, 43])
    with pytest.raises(ValueError, match="positive"):
        bd_rate([0, 1, 2, 3], [30, 31, 32, 33], rate, [30, 31, 32, 33])
    with pytest.raises(ValueError, match="two distinct"):
        bd_rate([1.0], [30.0], rate, [30, 31, 32, 33])


# ---------------------------------------------------------------- the quality search


def test_smallest_quality_bisects_then_checks_the_neighbours():
    calls = []

    def score(q):  # monotone except that 40 and 41 dip below the target
        calls.append(q)
        return q - 10.0 if q in (40, 41) else float(q)

    best, scores = smallest_quality(score, 42.0)
    assert best == 42 and all(scores[q] < 42 for q in (40, 41))
    assert len(calls) <= 10  # bisection, not a scan
    # 40 reaches although 41 does not: the neighbour check finds it below the bisection answer
    best, _ = smallest_quality(lambda q: 100.0 if q == 40 else float(q), 42.0)
    assert best == 40
    assert smallest_quality(lambda q: float(q), 101.0) == (None, {100: 100.0})


def test_target_arguments_are_checked():
    for metric, value in (("psnr", 0), ("psnr", -3), ("ssim", 0), ("ssim", 1.5), ("mse", 3)):
        with pytest.raises(ValueError):
            Target(metric, value)


def test_compress_image_reaches_the_target_with_fewer_bytes_than_plain_jpeg():
    clean = data.camera()[200:328, 180:308].copy()
    best = compress_image(clean, Target("psnr", 31.0), model="jpeg-gray")
    assert best.quality is not None and best.score >= 31.0
    viewed = restore(_decode(best.data), "jpeg-gray").restored
    assert psnr(clean, viewed) == pytest.approx(best.score)
    assert best.quality - 1 in best.scores and best.scores[best.quality - 1] < 31.0
    assert best.jpeg_only_quality > best.quality
    assert len(best.data) < best.jpeg_only_bytes


def _decode(b: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(b)))


# ---------------------------------------------------------------- the commands on folders


@pytest.fixture
def clean_dir(tmp_path):
    folder = tmp_path / "clean"
    folder.mkdir()
    Image.fromarray(data.camera()[100:196, 150:278]).save(folder / "camera.png")
    Image.fromarray(data.moon()[200:296, 200:328]).save(folder / "moon.png")
    Image.fromarray(data.astronaut()[40:136, 180:308]).save(folder / "astronaut.png")
    return folder


def test_rd_end_to_end_on_three_images_and_three_qualities(clean_dir, tmp_path):
    out = tmp_path / "rd"
    argv = ["rd", str(clean_dir), str(out), "--qualities", "10,30,50", "--gray", "--no-progress"]
    assert main(argv) == 0
    rows = list(csv.DictReader(io.StringIO((out / "rd.csv").read_text())))
    assert [(r["image"], int(r["quality"])) for r in rows] == [
        (name, q) for name in ("astronaut.png", "camera.png", "moon.png") for q in (10, 30, 50)
    ]
    for r in rows:
        assert int(r["bytes"]) > 0
        assert float(r["bpp"]) == pytest.approx(int(r["bytes"]) * 8 / (96 * 128), abs=1e-4)
    summary = json.loads((out / "rd.json").read_text())
    assert summary["model"] == "jpeg-gray" and summary["fingerprint"]
    assert [m["quality"] for m in summary["per_quality"]] == [10, 30, 50]
    assert summary["bd_psnr_db"] > 0 and summary["bd_rate_percent"] < 0  # the bundled model helps
    with Image.open(out / "rd.png") as im:
        assert im.format == "PNG" and im.width > 800
    assert main(argv) == 2  # results exist: refused without --overwrite
    assert main([*argv, "--overwrite"]) == 0


def test_compress_folder_meets_targets_and_tags_the_model(clean_dir, tmp_path, capsys):
    out = tmp_path / "small"
    assert main(["compress", str(clean_dir), str(out), "--target-psnr", "30", "--no-progress"]) == 0
    report = json.loads((out / "compress-report.json").read_text())
    for entry in report["files"]:
        assert entry["status"] == "done"
        jpg = out / entry["output"]
        clean = np.asarray(Image.open(clean_dir / entry["file"]))
        model = "jpeg-color" if clean.ndim == 3 else "jpeg-gray"  # 'auto' by the image
        assert (
            read_model_tag(jpg)
            == (model, load_model(model).fingerprint)
            == (
                entry["model"],
                entry["fingerprint"],
            )
        )
        assert estimate_jpeg_quality(jpg) == entry["quality"]
        viewed = restore(np.asarray(Image.open(jpg)), model).restored
        assert psnr(clean, viewed) >= 30.0
        assert entry["bytes"] == jpg.stat().st_size
    t = report["totals"]
    assert t["files_compared"] == 3 and t["bytes"] == sum(e["bytes"] for e in report["files"])
    # rerun: nothing recomputed, numbers kept
    capsys.readouterr()
    assert main(["compress", str(clean_dir), str(out), "--target-psnr", "30", "--no-progress"]) == 0
    assert "already done 3" in capsys.readouterr().out
    again = json.loads((out / "compress-report.json").read_text())
    assert again["totals"] == t


def test_compress_keeps_an_unreachable_image_losslessly(clean_dir, tmp_path):
    out = tmp_path / "lossless"
    assert main(["compress", str(clean_dir), str(out), "--target-psnr", "80", "--no-progress"]) == 0
    report = json.loads((out / "compress-report.json").read_text())
    for entry in report["files"]:
        assert entry["quality"] is None and "losslessly" in entry["note"]
        kept = np.asarray(Image.open(out / entry["output"]))
        assert np.array_equal(kept, np.asarray(Image.open(clean_dir / entry["file"])))
    assert report["totals"]["unreachable"] == 3


def test_compress_usage_errors_and_bad_files(clean_dir, tmp_path, capsys):
    out = str(tmp_path / "o")
    both = ["--target-psnr", "30", "--target-ssim", "0.9"]
    with pytest.raises(SystemExit) as exc:
        main(["compress", str(clean_dir), out, *both])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["compress", str(clean_dir), out])
    assert exc.value.code == 2
    assert main(["compress", str(clean_dir), out, "--target-psnr", "0"]) == 2
    assert "above 0 dB" in capsys.readouterr().err
    inside = str(clean_dir / "out")
    assert main(["compress", str(clean_dir), inside, "--target-psnr", "30"]) == 2
    assert not (clean_dir / "out").exists()
    (clean_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    np.save(clean_dir / "ignored.npy", np.zeros(3))
    Image.fromarray(np.zeros((40, 40), np.uint16)).save(clean_dir / "deep.tif")
    code = main(["compress", str(clean_dir), out, "--target-ssim", "0.8", "--no-progress"])
    report = json.loads((tmp_path / "o" / "compress-report.json").read_text())
    status = {e["file"]: e["status"] for e in report["files"]}
    assert code == 1 and status["broken.png"] == "failed" and status["deep.tif"] == "failed"
    assert status["camera.png"] == "done" and "ignored.npy" not in status
    errors = {e["file"]: e.get("error", "") for e in report["files"]}
    assert "8-bit" in errors["deep.tif"] and "broken.png" in errors["broken.png"]


def test_batch_warns_when_a_compressed_jpeg_is_restored_with_another_model(tmp_path, tiny_weights):
    from napari_dncnn.batch import run_batch
    from napari_dncnn.jpeg import encode_jpeg, model_tag

    src = tmp_path / "in"
    src.mkdir()
    tag = model_tag("jpeg-gray", load_model("jpeg-gray").fingerprint)
    (src / "a.jpg").write_bytes(encode_jpeg(data.camera()[:96, :96], 30, comment=tag))
    other = run_batch(src, tmp_path / "other", model=tiny_weights, progress=False)
    assert "compressed for model jpeg-gray" in other.results[0].warning
    assert "--model jpeg-gray" in other.summary()
    same = run_batch(src, tmp_path / "same", model="auto", progress=False)
    assert same.results[0].status == "done" and same.results[0].warning == ""


def test_rd_refuses_a_mixed_folder_and_skips_tiny_images(clean_dir, tmp_path, capsys):
    # clean_dir mixes gray (camera, moon) and RGB (astronaut)
    assert main(["rd", str(clean_dir), str(tmp_path / "a"), "--qualities", "20,40"]) == 2
    assert "mixes gray and colour" in capsys.readouterr().err
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(clean_dir / "tiny.png")
    argv = ["rd", str(clean_dir), str(tmp_path / "b"), "--qualities", "20,40", "--gray"]
    assert main([*argv, "--no-progress"]) == 0
    out = capsys.readouterr()
    assert "tiny.png: smaller than SSIM" in out.err and "3 gray image(s)" in out.out


def test_compress_refuses_a_rerun_for_another_target_and_bad_numbers(clean_dir, tmp_path, capsys):
    out = str(tmp_path / "o")
    assert main(["compress", str(clean_dir), out, "--target-psnr", "28", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["compress", str(clean_dir), out, "--target-psnr", "35", "--no-progress"]) == 2
    assert "made for target {'psnr': 28.0}" in capsys.readouterr().err
    assert main(["compress", str(clean_dir), out, "--target-psnr", "inf"]) == 2
    with pytest.raises(SystemExit):
        main(["compress", str(clean_dir), out, "--target-psnr", "30", "--skip-above", "200"])
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(clean_dir / "tiny.png")
    code = main(["compress", str(clean_dir), str(tmp_path / "s"), "--target-ssim", "0.5"])
    report = json.loads((tmp_path / "s" / "compress-report.json").read_text())
    tiny = next(e for e in report["files"] if e["file"] == "tiny.png")
    assert code == 1 and "11x11 window" in tiny["error"]


def test_rd_defaults_to_the_qualities_the_guard_lets_through(clean_dir, tmp_path, tiny_weights):
    out = tmp_path / "rd"
    argv = ["rd", str(clean_dir), str(out), "--gray", "--model", tiny_weights, "--no-progress"]
    assert main([*argv, "--skip-above", "20"]) == 0
    summary = json.loads((out / "rd.json").read_text())
    assert [m["quality"] for m in summary["per_quality"]] == [5, 10, 15, 20]


def test_rd_says_why_when_bd_rate_and_bd_psnr_disagree():
    from napari_dncnn.cli.rd import DISAGREE, _summary_line

    base = {"images": 3, "qualities": [10, 50, 90], "model": "m", "color": False}
    agree = _summary_line(base | {"bd_rate_percent": -13.5, "bd_psnr_db": 0.6})
    assert "13.5% fewer" in agree and DISAGREE not in agree
    clash = _summary_line(base | {"bd_rate_percent": 4.1, "bd_psnr_db": 0.17})
    assert "4.1% more" in clash and DISAGREE in clash and "curves cross" in clash
