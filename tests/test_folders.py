"""The folder pipeline that batch and compress share: statuses, the report written last, failures kept."""

from __future__ import annotations

import json

from PIL import Image

from napari_dncnn.batch import REPORT_NAME, Status, run_batch
from napari_dncnn.cli import main


def _inputs(folder):
    folder.mkdir()
    from skimage import data

    img = data.camera()[100:356, 100:356]
    Image.fromarray(img).save(folder / "a.jpg", quality=10)
    Image.fromarray(img).save(folder / "b.png")  # no JPEG grid: left unchanged
    return img


def test_statuses_tell_the_guard_from_existing_outputs(tmp_path, tiny_weights):
    _inputs(tmp_path / "in")
    first = run_batch(tmp_path / "in", tmp_path / "out", model=tiny_weights, progress=False)
    assert [r.status for r in first.results] == [Status.DONE, Status.UNCHANGED]
    again = run_batch(tmp_path / "in", tmp_path / "out", model=tiny_weights, progress=False)
    assert [r.status for r in again.results] == [Status.EXISTING, Status.EXISTING]
    report = json.loads((tmp_path / "out" / REPORT_NAME).read_text())
    assert [f["status"] for f in report["files"]] == ["existing", "existing"]


def test_a_report_that_cannot_be_written_still_leaves_the_summary_and_exit_1(
    tmp_path, tiny_weights, capsys
):
    _inputs(tmp_path / "in")
    (tmp_path / "out" / REPORT_NAME).mkdir(parents=True)  # the report's name is taken by a folder
    report = run_batch(tmp_path / "in", tmp_path / "out", model=tiny_weights, progress=False)
    assert report.path is None and REPORT_NAME in report.report_error
    assert (tmp_path / "out" / "a.png").exists() and report.count("done") == 1
    code = main(
        ["batch", str(tmp_path / "in"), str(tmp_path / "o2"), "--model", tiny_weights]
        + ["--no-progress", "--overwrite"]
    )
    assert code == 0
    (tmp_path / "o2" / REPORT_NAME).unlink()
    (tmp_path / "o2" / REPORT_NAME).mkdir()
    code = main(
        ["batch", str(tmp_path / "in"), str(tmp_path / "o2"), "--model", tiny_weights]
        + ["--no-progress", "--overwrite"]
    )
    out = capsys.readouterr().out
    assert code == 1 and "done 1, unchanged 1" in out and "could not be written" in out


def test_the_summary_names_six_unchanged_files_and_folds_seven():
    from pathlib import Path

    from napari_dncnn.folders.results import FileResult, FolderReport, Status

    def report(n):
        files = [FileResult(Path(f"f{i}.png"), Status.UNCHANGED, note="why") for i in range(n)]
        return FolderReport(results=files).summary()

    six, seven = report(6), report(7)
    assert "unchanged f5.png: why" in six and "more unchanged" not in six
    assert "unchanged f4.png: why" in seven and "f5.png" not in seven
    assert "... and 2 more unchanged (see the report)" in seven


def test_an_interrupted_overwrite_counts_as_done_only_what_it_wrote(tmp_path):
    """Ctrl-C during --overwrite reported "done 40" where 7 files were rewritten: the others'
    outputs of an earlier run were taken for this run's."""
    import os

    import pytest

    from napari_dncnn.folders import FileResult, FolderReport, drain, plan_outputs

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    files = [src / f"{name}.png" for name in ("ran", "written", "old")]
    plan = plan_outputs(src, files, out, lambda rel: [rel])
    for f in files:
        f.write_bytes(b"in")
        (out / f.name).write_bytes(b"an earlier run's output")
        os.utime(out / f.name, (1.6e9, 1.6e9))  # 2020

    def runner():
        yield FileResult(files[0], Status.DONE, [out / files[0].name])
        (out / "written.png").write_bytes(b"written now, its result lost")  # a worker's
        raise KeyboardInterrupt

    report = FolderReport()
    with pytest.raises(KeyboardInterrupt):
        drain(runner(), plan, {}, report, report_path=out / REPORT_NAME, meta={})
    assert [r.status for r in report.results] == [Status.DONE, Status.DONE, Status.NOT_RUN]
    entries = json.loads((out / REPORT_NAME).read_text())["files"]
    assert [e["status"] for e in entries] == ["done", "done", "not run"]
