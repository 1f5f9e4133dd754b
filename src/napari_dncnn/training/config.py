"""Training options: one dataclass; the ``train`` command's options are built from its fields and their help."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["TrainConfig", "option", "portable_path"]


def option(default, help: str, **cli):
    """A config field with its command-line help (and extra argparse settings such as ``choices``)."""
    factory = (lambda: list(default)) if isinstance(default, list) else None
    meta = {"help": help, **cli}
    return (
        field(default_factory=factory, metadata=meta)
        if factory
        else field(default=default, metadata=meta)
    )


def portable_path(path: str) -> str:
    """``path`` relative to the working folder when it is absolute, so records name no machine's folders."""
    if not os.path.isabs(path):
        return path
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return Path(path).name


@dataclass
class TrainConfig:
    data: list[str] = field(
        metadata={"help": "folders of clean training images", "positional": True}
    )
    out: str = field(
        metadata={
            "help": "output weights (.safetensors; a .json record is written beside it)",
            "required": True,
        }
    )
    # the network
    channels: int = option(1, "1: gray model, 3: RGB model", choices=(1, 3))
    depth: int = option(17, "convolution layers")
    features: int = option(64, "filters per hidden layer")
    space_to_depth: int = option(
        1, "2: FFDNet-style body at half resolution (pixel-unshuffle by 2)", choices=(1, 2)
    )
    init: str = option(
        "",
        "start from these weights (ours, .mat, .pth or a model name such as dncnn3); their "
        "training stages are kept in the record",
    )
    # the samples
    patch_size: int = option(50, "patch side in px (space-to-depth: at least 96)")
    stride: int = option(10, "grid step of patch positions in px")
    batch_size: int = option(32, "patches per step")
    patches_per_image: int = option(4, "patches cut from each compressed image")
    quality_min: int = option(5, "lowest JPEG quality drawn")
    quality_max: int = option(
        95, "highest JPEG quality drawn (100 teaches the model to leave good images alone)"
    )
    quality_power: float = option(
        1.0, "> 1 draws low qualities more often (q = min + (max-min) * u**power)"
    )
    clean_fraction: float = option(0.0, "share of samples left uncompressed (target: residual 0)")
    synthetic_fraction: float = option(
        0.0, "share of samples that are synthetic flat, gradient, blob or texture images"
    )
    downscale: int = option(0, "downscale factor of training images (0: 2 for colour, 1 for gray)")
    # the schedule
    steps: int = option(10000, "steps in all (the cosine schedule ends here)")
    lr: float = option(1e-3, "peak learning rate (Adam)")
    lr_min: float = option(1e-5, "learning rate at the last step")
    warmup: int = option(100, "steps of linear learning-rate warm-up")
    max_minutes: float = option(0.0, "stop (and save) after this many minutes (0: no limit)")
    pause_at: int = option(0, "stop with a checkpoint at this step; --resume continues (0: never)")
    seed: int = option(0, "random seed of sampling and initialisation")
    # the machine
    threads: int = option(0, "CPU threads (0: all cores)")
    device: str = option("auto", "auto, cpu, cuda, cuda:N or mps")
    bf16: str = option(
        "auto",
        "bf16 autocast: auto (on CUDA and CPUs with native bf16), on or off",
        choices=("auto", "on", "off"),
    )
    # records
    run_dir: str = option("", "checkpoint and log folder (default: runs/<stem of --out>)")
    checkpoint_minutes: float = option(5.0, "minutes between checkpoints")
    log_every: int = option(10, "steps between log rows")
    val_dir: str = option(
        "", "folder of clean validation images for the periodic PSNR gain (best weights kept)"
    )
    val_every: int = option(250, "steps between validations (unless --val-minutes)")
    val_minutes: float = option(
        0.0, "validate every this many training minutes instead (0: use --val-every)"
    )
    val_images: int = option(8, "validation images (the first N of the folder)")
    val_crop: int = option(0, "centre crop side of validation images in px (0: whole images)")
    val_qualities: list[int] = option(
        [10], "JPEG qualities of the validation (the gain is their mean)"
    )
    command: str = field(default="", metadata={"cli": False})  # the command line, for the record
