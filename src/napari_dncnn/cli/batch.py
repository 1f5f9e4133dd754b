"""``napari-dncnn batch``: restore a folder of images into another folder."""

from __future__ import annotations

import os

from .common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    add_controls,
    add_device,
    add_folder_selection,
    add_model,
    add_overwrite,
    add_progress,
    add_skip_above,
    add_tile_size,
    at_least,
    load_model_or_usage,
    say,
)


def add(sub) -> None:
    p = sub.add_parser(
        "batch",
        help="restore every image in a folder into another folder",
        description="Restore every image (.tif .tiff .png .jpg .jpeg .bmp, any case, and .zarr "
        "folders; hidden files are left out) in INPUT_DIR into OUTPUT_DIR, mirroring relative "
        "paths, and write a JSON report (napari-dncnn-report.json) there. Exit status: 0 nothing "
        "failed, 1 some file failed, 2 bad usage or no matching files, 130 interrupted (Ctrl-C), "
        "143 terminated (SIGTERM).",
    )
    p.add_argument("input_dir", help="folder of images to restore; never written to")
    p.add_argument(
        "output_dir", help="folder for the restored images and the report (made if missing)"
    )
    add_model(p)
    add_folder_selection(p)
    add_overwrite(p, "recompute outputs that already exist")
    p.add_argument(
        "--save-residual", action="store_true", help="also write <stem>_residual.tif (float32)"
    )
    add_tile_size(p)
    add_controls(p)
    add_device(p)
    _add_cluster_options(p)
    _add_size_options(p)
    p.add_argument(
        "--force",
        action="store_true",
        help="restore every image, also those the quality guard finds without JPEG artifacts "
        "(JPEG files above --skip-above, other files without an 8x8 JPEG grid)",
    )
    add_skip_above(
        p,
        "JPEG files of a higher estimated quality are written unchanged "
        "(default: the highest quality at which the model was measured to make no image "
        "worse, see docs/models.md; 90 gray, 80 colour where unmeasured)",
    )
    add_progress(p)


def _add_cluster_options(p) -> None:
    p.add_argument(
        "--scheduler",
        default=os.environ.get("DASK_SCHEDULER_ADDRESS") or None,
        help="address of a running dask.distributed scheduler (e.g. tcp://10.0.0.5:8786); "
        "default: $DASK_SCHEDULER_ADDRESS",
    )
    p.add_argument(
        "--workers",
        type=at_least(1, int),
        default=None,
        help="start a LocalCluster of N worker processes on this machine",
    )
    p.add_argument(
        "--retries",
        type=at_least(0, int),
        default=2,
        help="retries per file on a cluster (default 2)",
    )


def _add_size_options(p) -> None:
    """Options on big images: where the out-of-core path starts, and the pixel limit."""
    from ..batch import OUT_OF_CORE_ABOVE, PIXEL_LIMIT

    p.add_argument(
        "--out-of-core-above",
        type=at_least(0, float),
        default=OUT_OF_CORE_ABOVE / 2**20,
        metavar="MVALUES",
        help="TIFFs with more than this many Mi values are read lazily, restored block by "
        "block and written as tiled BigTIFF (default %(default)g Mi: 4096x4096 gray is just at "
        "it, not above); .zarr folders always are; PNG/JPEG/BMP files above it are decoded "
        "whole and restored block by block",
    )
    p.add_argument(
        "--pixel-limit",
        type=at_least(0, float, above=True),
        default=PIXEL_LIMIT / 2**30,
        metavar="GVALUES",
        help="images with more than this many Gi values are refused from their header, before any "
        "decoding (default %(default)g, e.g. 65536x65536 gray); raise it for real images that big",
    )


def run(args) -> int:
    if args.scheduler and args.workers:
        raise UsageError(
            "give --scheduler (an existing cluster) or --workers (a new local one), not both"
        )
    load_model_or_usage(args.model, not args.no_progress, args.tile_size, args.quality, args.sigma)
    try:
        report = _run(args)
    except ValueError as exc:  # a missing device, bad options: before any file is touched
        raise UsageError(str(exc)) from exc
    print(report.summary())
    return EXIT_FAILED if report.failed or report.report_error else EXIT_OK


def _run(args):
    from ..batch import run_batch

    return run_batch(
        args.input_dir,
        args.output_dir,
        model=args.model,
        recursive=args.recursive,
        pattern=args.pattern,
        overwrite=args.overwrite,
        save_residual=args.save_residual,
        tile_size=args.tile_size or None,
        quality=args.quality,
        sigma=args.sigma,
        device=args.device,
        progress=not args.no_progress,
        log=say,
        scheduler=args.scheduler,
        workers=args.workers,
        retries=args.retries,
        out_of_core_above=int(args.out_of_core_above * 2**20),
        force=args.force,
        skip_above=args.skip_above,
        pixel_limit=int(args.pixel_limit * 2**30),
        on_interrupt=lambda r: print(r.summary(), flush=True),
    )
