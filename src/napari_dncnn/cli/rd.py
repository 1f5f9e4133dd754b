"""``napari-dncnn rd``: rate-distortion of JPEG against JPEG + DnCNN over a folder."""

from __future__ import annotations

from .common import (
    EXIT_OK,
    UsageError,
    add_device,
    add_gray_or_color,
    add_model,
    add_overwrite,
    add_progress,
    add_skip_above,
    check_data_folder,
    color_of,
    load_model_or_usage,
    quality_list,
    say,
    tqdm_progress,
)


def add(sub) -> None:
    from ..compression import DEFAULT_QUALITIES

    p = sub.add_parser(
        "rd",
        help="rate-distortion of JPEG against JPEG + DnCNN: bytes saved at equal quality",
        description="Encode every clean image of CLEAN_DIR as JPEG at each quality, restore it, "
        "and write OUT_DIR/rd.csv (one row per image and quality), rd.json (means per quality, "
        "Bjontegaard delta rate and PSNR/SSIM of JPEG + DnCNN against JPEG, the model and its "
        "record) and rd.png (the curves). Exit status: 0 done, 1 failed, 2 bad usage, 130 interrupted, 143 terminated.",
    )
    p.add_argument("clean_dir", help="folder of clean (never compressed) images")
    p.add_argument("out_dir", help="folder for rd.csv, rd.json and rd.png (not inside CLEAN_DIR)")
    p.add_argument(
        "--qualities",
        type=quality_list,
        default=None,
        help="comma-separated JPEG qualities (default: those of "
        f"{','.join(map(str, DEFAULT_QUALITIES))} where the quality guard lets the model run: up "
        "to the model's measured no-harm quality, or --skip-above)",
    )
    add_model(p)
    add_gray_or_color(p, "gray (BT.601 luma of colour)")
    add_overwrite(p, "replace rd.csv/json/png in OUT_DIR")
    add_skip_above(
        p,
        "above Q the restoration is the JPEG itself, as the quality guard shows it "
        "(default: the model's measured no-harm quality, else 90 gray, 80 colour; 100 measures "
        "the model at every quality)",
    )
    add_device(p)
    add_progress(p)


def run(args) -> int:
    from ..compression.folders import run_rd

    check_data_folder(args.clean_dir, "clean folder")
    load_model_or_usage(args.model, not args.no_progress)
    progress, close = tqdm_progress("rd", "encode", not args.no_progress)
    try:
        paths, summary = run_rd(
            args.clean_dir,
            args.out_dir,
            args.qualities,
            args.model,
            color_of(args),
            overwrite=args.overwrite,
            skip_above=args.skip_above,
            device=args.device,
            progress=progress,
        )
    except (ValueError, OSError) as exc:
        raise UsageError(str(exc)) from exc
    finally:
        close()
    for problem in summary.get("skipped_files", []):
        say(f"skipped {problem}")
    print(_summary_line(summary))
    print("wrote " + ", ".join(str(p) for p in paths))
    return EXIT_OK


def _summary_line(summary: dict) -> str:
    bd = summary.get("bd_rate_percent")
    mode = "RGB" if summary.get("color") else "gray"
    qualities = ",".join(map(str, summary["qualities"]))
    head = (
        f"{summary['images']} {mode} image(s) x {len(summary['qualities'])} quality(ies) "
        f"({qualities}), model {summary.get('model')}: BD-rate "
    )
    if bd is None:
        return head + "not defined (" + "; ".join(summary.get("bd_problems", [])) + ")"
    line = head + f"{bd:+.1f}%, BD-PSNR {summary['bd_psnr_db']:+.2f} dB\n" + _what_they_mean(bd)
    if (bd < 0) != (summary["bd_psnr_db"] > 0):
        line += "\n" + DISAGREE
    return line


def _what_they_mean(bd: float) -> str:
    return (
        "  BD-rate: the change in bytes at equal PSNR (negative: the DnCNN decoder needs fewer "
        f"bytes, here {abs(bd):.1f}% {'fewer' if bd < 0 else 'more'}); BD-PSNR: the PSNR it adds "
        "at equal bytes (positive: better)"
    )


DISAGREE = (
    "  The two disagree in sign: the curves cross, so the model gains over part of the range and "
    "loses over another (rd.csv and rd.png show where). BD-rate averages over the PSNR range both "
    "curves reach and BD-PSNR over the byte range, so each weighs the two parts differently; "
    "measure the qualities you use (--qualities), up to where the quality guard lets the model run"
)
