"""``napari-dncnn compress``: the smallest JPEG per image whose restoration reaches a target."""

from __future__ import annotations

from .common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    add_device,
    add_folder_selection,
    add_model,
    add_overwrite,
    add_progress,
    add_skip_above,
    load_model_or_usage,
    say,
    tqdm_progress,
)


def add(sub) -> None:
    p = sub.add_parser(
        "compress",
        help="the smallest JPEG per image whose restored version reaches a PSNR or SSIM",
        description="For every clean image of IN_DIR, find the smallest JPEG quality whose "
        "restoration by the model reaches the target against the original, write it as "
        "OUT_DIR/<same relative path>.jpg (the model named in its comment), and report the "
        "plain-JPEG quality and bytes the same target needs (compress-report.json). An image no "
        "quality can bring to the target is kept losslessly as PNG. Rerunning skips finished "
        "files. Exit status: 0 nothing failed, 1 some file failed, 2 bad usage, 130 interrupted, "
        "143 terminated.",
    )
    p.add_argument("in_dir", help="folder of clean images")
    p.add_argument("out_dir", help="folder for the JPEGs and the report (not inside IN_DIR)")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--target-psnr", type=float, metavar="DB", help="PSNR to reach, in dB")
    target.add_argument("--target-ssim", type=float, metavar="S", help="SSIM to reach, in (0, 1]")
    add_model(p)
    add_folder_selection(p)
    add_overwrite(p, "recompute files already written")
    add_skip_above(
        p,
        "qualities above Q are viewed without the model, as the quality guard does "
        "(default: the highest quality at which the model was measured to make no image "
        "worse, see docs/models.md; 90 gray, 80 colour where unmeasured)",
    )
    add_device(p)
    add_progress(p)


def run(args) -> int:
    from ..compression import Target
    from ..compression.folders import run_compress

    try:
        target = (
            Target("psnr", args.target_psnr)
            if args.target_psnr is not None
            else Target("ssim", args.target_ssim)
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    load_model_or_usage(args.model, not args.no_progress)
    progress, close = tqdm_progress("compress", "file", not args.no_progress)
    try:
        report = run_compress(
            args.in_dir,
            args.out_dir,
            target,
            args.model,
            recursive=args.recursive,
            pattern=args.pattern,
            overwrite=args.overwrite,
            skip_above=args.skip_above,
            device=args.device,
            progress=progress,
            log=say,
            on_interrupt=lambda r: print(r.summary(), flush=True),
        )
    except (ValueError, OSError) as exc:
        raise UsageError(str(exc)) from exc
    finally:
        close()
    print(report.summary())
    return EXIT_FAILED if report.failed or report.report_error else EXIT_OK
