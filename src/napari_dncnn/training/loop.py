"""The training loop: MSE on the residual, warm-up and cosine schedule, periodic validation, checkpoints.

The target is the residual ``compressed - clean`` of :mod:`.data`'s samples.
The weights with the best periodic validation gain (the mean over the
validation qualities; or the last weights, with no validation folder) are
written to ``cfg.out`` with a JSON record of every training stage.
Checkpoints go to a run folder at a time interval and on Ctrl-C or SIGTERM;
``resume=True`` continues the same run step for step.
"""

from __future__ import annotations

import csv
import errno
import math
import platform
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..devices import pick_device, use_bf16
from ..engine.tiles import residual
from ..files.atomic import write_json_atomic
from ..jpeg import jpeg_roundtrip
from ..networks import DnCNN
from ..weights import load_model, save_weights
from .checkpoint import load_checkpoint, save_checkpoint, truncate_log
from .config import TrainConfig, portable_path
from .data import PatchSampler, load_clean_images
from .evaluate import psnr

__all__ = ["TrainConfig", "train", "lr_at", "validation_gain"]


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay from ``lr`` to ``lr_min`` at ``steps``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * t))


# ---------------------------------------------------------------- validation


def load_validation(cfg: TrainConfig) -> dict[int, list]:
    """``{quality: [(clean, jpeg), ...]}`` for the periodic validation (centre crops if ``val_crop``)."""
    if not cfg.val_dir:
        return {}
    clean = load_clean_images([cfg.val_dir], cfg.channels, 1, limit=cfg.val_images)
    if cfg.val_crop:
        clean = [_centre_crop(c, cfg.val_crop) for c in clean]
    return {q: [(c, jpeg_roundtrip(c, q)) for c in clean] for q in cfg.val_qualities}


def _centre_crop(image: np.ndarray, side: int) -> np.ndarray:
    y = max(0, (image.shape[0] - side) // 2)
    x = max(0, (image.shape[1] - side) // 2)
    return np.ascontiguousarray(image[y : y + side, x : x + side])


def validation_gain(net: DnCNN, pairs, device, bf16: bool) -> float:
    """Mean PSNR gain (dB) of the restoration over the JPEG input on ``pairs`` (the engine's forward pass)."""
    if not pairs:
        return float("nan")
    was_training = net.training
    net.eval()
    gains = []
    for clean, deg in pairs:
        x = deg.astype(np.float32) / 255.0
        x = x[None] if x.ndim == 2 else x.transpose(2, 0, 1)
        out = np.clip(x - residual(net, x, device, bf16=bf16), 0, 1)
        out = out.transpose(1, 2, 0)
        restored = np.round((out[..., 0] if out.shape[-1] == 1 else out) * 255).astype(np.uint8)
        gains.append(psnr(clean, restored) - psnr(clean, deg))
    net.train(was_training)
    return float(np.mean(gains))


# ---------------------------------------------------------------- the run


def _earlier_stages(record: dict) -> list[dict]:
    """The training stages that made a weights record (older records kept one stage unnamed)."""
    prev = record.get("training", {})
    if prev.get("stages"):
        return list(prev["stages"])
    return (
        [{k: prev[k] for k in ("command", "steps", "wall_time_s", "hardware") if k in prev}]
        if prev
        else []
    )


class _Run:
    """State of one training run: network, optimiser, sampler, validation sets, clocks and the log."""

    def __init__(self, cfg: TrainConfig, resume: bool):
        self.cfg = cfg
        self.device = pick_device(cfg.device)
        self._process_state = (torch.get_num_threads(), torch.random.get_rng_state())
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.bf16 = use_bf16(cfg.bf16, self.device, training=True)
        self.run_dir = Path(cfg.run_dir or Path("runs") / Path(cfg.out).stem)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.rng = np.random.default_rng(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.downscale = cfg.downscale or (2 if cfg.channels == 3 else 1)
        images = load_clean_images(cfg.data, cfg.channels, self.downscale)
        self.sampler = PatchSampler(
            images,
            cfg.patch_size,
            cfg.stride,
            cfg.quality_min,
            cfg.quality_max,
            cfg.patches_per_image,
            self.rng,
            cfg.quality_power,
            cfg.clean_fraction,
            cfg.synthetic_fraction,
        )
        self.net, self.earlier, self.derived_from = self._network()
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        self.step, self.elapsed, self.best, self.val_s = 0, 0.0, -float("inf"), 0.0
        self.log_path = self.run_dir / "log.csv"
        if resume:
            self._resume()
        self.val_sets = load_validation(cfg)
        self.val_cols = [f"val_q{q}_db" for q in self.val_sets]
        if not resume:
            with open(self.log_path, "w", newline="") as f:
                csv.writer(f).writerow(
                    ["step", "elapsed_s", "train_s", "lr", "loss", "val_gain_db", *self.val_cols]
                )
        write_json_atomic(self.run_dir / "config.json", asdict(cfg))

    def _network(self) -> tuple[DnCNN, list[dict], dict]:
        """A new network, or the ``--init`` weights: their architecture, earlier stages and source (if foreign)."""
        cfg = self.cfg
        earlier, derived = [], {}
        if cfg.init:
            loaded = load_model(cfg.init)
            net, earlier = loaded.network, _earlier_stages(loaded.record)
            keys = ("source", "source_file", "source_sha256", "licence", "derived_from")
            derived = {k: loaded.record[k] for k in keys if k in loaded.record}
        else:
            net = DnCNN(cfg.channels, cfg.depth, cfg.features, space_to_depth=cfg.space_to_depth)
        return net.to(self.device).to(memory_format=torch.channels_last).train(), earlier, derived

    def _resume(self) -> None:
        if not (self.run_dir / "checkpoint.json").exists():
            raise FileNotFoundError(
                f"resume: no checkpoint in {self.run_dir}; start without resuming"
            )
        meta = load_checkpoint(self.run_dir, self.net, self.opt, self.rng)
        self.step, self.elapsed, self.best = (
            meta["step"],
            meta["elapsed_s"],
            meta["best_val_gain_db"],
        )
        self.val_s = meta.get("val_s", 0.0)
        truncate_log(self.log_path, self.step)

    def hardware(self) -> str:
        if self.device.type == "cpu":
            return (
                f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
            )
        return torch.cuda.get_device_name(self.device)

    def record(self, val_gain: float) -> dict:
        """The JSON record of the weights: every training stage, the recipe, the validation gain."""
        cfg = self.cfg
        stages = self.earlier + [
            {
                "command": cfg.command,
                "steps": self.step,
                "wall_time_s": round(self.elapsed, 1),
                "hardware": self.hardware(),
            }
        ]
        training = {
            "stages": stages,
            "total_steps": sum(st.get("steps", 0) for st in stages),
            "total_wall_time_s": round(sum(st.get("wall_time_s", 0) for st in stages), 1),
            "data": [portable_path(str(d)) for d in cfg.data],
            "command": cfg.command,
            "steps": self.step,
            "wall_time_s": round(self.elapsed, 1),
            "device": str(self.device),
            "hardware": self.hardware(),
            "bf16": self.bf16,
            "quality_power": cfg.quality_power,
            "clean_fraction": cfg.clean_fraction,
            "synthetic_fraction": cfg.synthetic_fraction,
            "patch_size": cfg.patch_size,
            "stride": cfg.stride,
            "batch_size": cfg.batch_size,
            "qualities": [cfg.quality_min, cfg.quality_max],
            "downscale": self.downscale,
        }
        validation = {
            "folder": portable_path(cfg.val_dir),
            "images": cfg.val_images,
            "crop": cfg.val_crop,
            "qualities": list(self.val_sets),
            "psnr_gain_db": None if math.isnan(val_gain) else round(val_gain, 4),
        }
        out = {"training": training, "training_validation": validation}
        if (
            self.derived_from
        ):  # weights fine-tuned from someone else's: say whose, and on what terms
            out["derived_from"] = self.derived_from.get("derived_from", self.derived_from)
        return out

    def checkpoint(self) -> None:
        save_checkpoint(
            self.run_dir,
            self.net,
            self.opt,
            self.step,
            self.rng,
            {"elapsed_s": self.elapsed, "best_val_gain_db": self.best, "val_s": self.val_s},
        )

    def train_step(self) -> float:
        cfg, dev = self.cfg, self.device
        for g in self.opt.param_groups:
            g["lr"] = lr_at(self.step, cfg)
        x, y = self.sampler.batch(cfg.batch_size)
        x = torch.from_numpy(x).to(dev).contiguous(memory_format=torch.channels_last)
        y = torch.from_numpy(y).to(dev).contiguous(memory_format=torch.channels_last)
        with torch.autocast(dev.type, torch.bfloat16, enabled=self.bf16):
            pred = self.net(x)
        loss = torch.nn.functional.mse_loss(pred.float(), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        return float(loss.detach())

    def validate(self) -> list[float]:
        """Gains per validation quality; keeps the weights when their mean is the best so far."""
        t = time.monotonic()
        per_q = [
            validation_gain(self.net, pairs, self.device, self.bf16)
            for pairs in self.val_sets.values()
        ]
        self.val_s += time.monotonic() - t
        if np.mean(per_q) > self.best:
            self.best = float(np.mean(per_q))
            save_weights(self.net, self.cfg.out, self.record(self.best))
        return per_q

    def restore_process_state(self) -> None:
        """Give back torch's thread count and global random state as they were before the run."""
        threads, rng = self._process_state
        torch.set_num_threads(threads)
        torch.random.set_rng_state(rng)

    def log(self, losses: list[float], per_q: list[float]) -> None:
        val = (
            [f"{np.mean(per_q):.4f}"] + [f"{v:.4f}" for v in per_q]
            if per_q
            else [""] * (1 + len(self.val_cols))
        )
        with open(self.log_path, "a", newline="") as f:
            csv.writer(f).writerow(
                [
                    self.step,
                    round(self.elapsed, 1),
                    round(self.elapsed - self.val_s, 1),
                    f"{lr_at(self.step - 1, self.cfg):.3g}",
                    f"{np.mean(losses):.4g}",
                    *val,
                ]
            )


def _loop(run: _Run, bar) -> None:
    """Steps until ``steps``, ``max_minutes`` or ``pause_at``; validation, log rows and checkpoints on the way."""
    cfg = run.cfg
    start_elapsed, t0 = run.elapsed, time.monotonic()
    last_ckpt, next_val, losses = t0, run.elapsed - run.val_s + cfg.val_minutes * 60, []
    while run.step < cfg.steps:
        if cfg.max_minutes and time.monotonic() - t0 > cfg.max_minutes * 60:
            break
        if cfg.pause_at and run.step >= cfg.pause_at:
            break
        losses.append(run.train_step())
        run.elapsed = start_elapsed + time.monotonic() - t0
        due = (
            run.elapsed - run.val_s >= next_val
            if cfg.val_minutes
            else run.step % cfg.val_every == 0
        )
        per_q = run.validate() if run.val_sets and (due or run.step == cfg.steps) else []
        if per_q:
            run.elapsed = start_elapsed + time.monotonic() - t0
            next_val = run.elapsed - run.val_s + cfg.val_minutes * 60
        if run.step % cfg.log_every == 0 or per_q:
            run.log(losses, per_q)
            if bar is not None:
                bar.set_postfix(
                    loss=f"{np.mean(losses):.3g}",
                    val_db=f"{run.best:+.3f}" if run.best > -1e9 else "-",
                )
            losses = []
        if bar is not None:
            bar.update(1)
        if time.monotonic() - last_ckpt > cfg.checkpoint_minutes * 60:
            run.checkpoint()
            last_ckpt = time.monotonic()


def train(
    cfg: TrainConfig, *, resume: bool = False, progress: bool = True, overwrite: bool = False
) -> dict:
    """Train a DnCNN on ``cfg.data`` and write ``cfg.out`` (safetensors + JSON record).

    An existing ``cfg.out`` is refused (``FileExistsError``) unless ``resume``
    (the run that wrote it goes on) or ``overwrite``.

    Raises ``KeyboardInterrupt`` (also the CLI's SIGTERM, a subclass of it) after saving a checkpoint
    when interrupted.  Returns a summary dict.
    """
    out = Path(cfg.out).with_suffix(".safetensors")
    if out.exists() and not (resume or overwrite):
        raise FileExistsError(
            errno.EEXIST,
            f"{out} already exists; choose another out, pass overwrite=True to replace it, "
            "or resume=True to continue the run that wrote it",
            str(out),
        )
    run = _Run(cfg, resume)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=run.step, desc="train", unit="step", dynamic_ncols=True)
    try:
        _loop(run, bar)
    except KeyboardInterrupt:
        run.checkpoint()
        raise
    finally:
        if bar is not None:
            bar.close()
        run.restore_process_state()
    run.checkpoint()
    if not run.val_sets:
        save_weights(run.net, cfg.out, run.record(float("nan")))
    return {
        "steps": run.step,
        "elapsed_s": run.elapsed,
        "best_val_gain_db": run.best,
        "out": str(cfg.out),
        "run_dir": str(run.run_dir),
    }
