"""Training: JPEG-artifact samples from folders of clean images, and the training loop.

Each sample is an augmented clean image (rotation by a multiple of 90 degrees,
flip; for colour, a 2x antialiased downscale first) JPEG-compressed *whole* at
a random quality; patches are cut from the clean/compressed pair at the same
position on a stride grid, so the 8x8 block grid (and the 4:2:0 chroma grid)
of the patches is that of a real file.  The target is the residual
``compressed - clean`` and the loss is the MSE.

Checkpoints (safetensors + JSON, never pickles) go to a run folder at a time
interval and on Ctrl-C; ``resume=True`` continues the same run step for step.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import shlex
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from .devices import pick_device, use_bf16
from .evaluate import psnr
from .io import IMAGE_SUFFIXES
from .jpeg import jpeg_roundtrip, rgb_to_luma
from .model import DnCNN
from .models import load_state, save_weights, write_json_atomic

__all__ = ["TrainConfig", "PatchSampler", "extract_patches", "patch_positions", "train", "load_clean_images"]



@dataclass
class TrainConfig:
    data: list[str]
    out: str
    channels: int = 1
    depth: int = 17
    features: int = 64
    space_to_depth: int = 1  # 2: FFDNet-style half-resolution body
    patch_size: int = 50
    stride: int = 10
    batch_size: int = 32
    patches_per_image: int = 4
    quality_min: int = 5
    quality_max: int = 95
    quality_power: float = 1.0  # > 1 draws low qualities more often
    clean_fraction: float = 0.0  # share of samples left uncompressed (target: residual 0)
    downscale: int = 0  # 0: 2 for colour, 1 for gray
    steps: int = 10000
    lr: float = 1e-3
    lr_min: float = 1e-5
    warmup: int = 100
    seed: int = 0
    threads: int = 0  # 0: all cores
    device: str = "auto"
    bf16: str = "auto"  # auto: on CUDA and on CPUs with native bf16; on/off
    run_dir: str = ""
    checkpoint_minutes: float = 5.0
    val_dir: str = ""
    val_every: int = 250
    val_images: int = 8
    val_qualities: list[int] = field(default_factory=lambda: [10])
    val_crop: int = 0  # centre crop side of validation images (0: whole images)
    val_minutes: float = 0.0  # validate every this many training minutes (0: every val_every steps)
    log_every: int = 10
    max_minutes: float = 0.0
    pause_at: int = 0  # stop (with a checkpoint) at this step; --resume continues
    init: str = ""
    command: str = field(default_factory=lambda: _command_line())


def _command_line() -> str:
    """The command that is running, as a user would type it."""
    argv = list(sys.argv)
    if argv and (Path(argv[0]).name == "napari-dncnn" or argv[0].endswith("__main__.py")):
        argv[0] = "napari-dncnn"
    return " ".join(shlex.quote(a) for a in argv)


# ---------------------------------------------------------------- data

def list_image_files(folder: str | os.PathLike) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"training data folder {folder} does not exist or is not a folder")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _to_channels(arr: np.ndarray, channels: int, path: Path) -> np.ndarray:
    if arr.dtype != np.uint8:
        raise ValueError(f"{path}: training images must be 8-bit, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    if channels == 1:
        if arr.ndim == 3:
            arr = rgb_to_luma(arr)
        return arr
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return arr


def load_clean_images(folders, channels: int, downscale: int = 1, limit: int = 0) -> list[np.ndarray]:
    """Read every image under ``folders`` as uint8 (H, W) or (H, W, 3), downscaled by ``downscale``."""
    files: list[Path] = []
    for f in folders:
        files += list_image_files(f)
    if limit:
        files = files[:limit]
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found in {list(map(str, folders))}")
    images = []
    for p in files:
        with Image.open(p) as im:
            im = im.convert("RGB") if im.mode not in ("L", "RGB") else im
            if downscale > 1:
                im = im.resize((im.width // downscale, im.height // downscale), Image.LANCZOS)
            images.append(_to_channels(np.asarray(im).copy(), channels, p))
    return images


def patch_positions(shape: tuple[int, int], size: int, stride: int) -> np.ndarray:
    """Top-left (y, x) of every ``size`` patch on a ``stride`` grid inside ``shape``."""
    h, w = shape[:2]
    if h < size or w < size:
        return np.zeros((0, 2), dtype=np.int64)
    ys = np.arange(0, h - size + 1, stride)
    xs = np.arange(0, w - size + 1, stride)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return np.stack([yy.ravel(), xx.ravel()], axis=1)


def extract_patches(clean: np.ndarray, degraded: np.ndarray, size: int, stride: int, positions=None):
    """Cut same-position patches from a clean/degraded pair.

    Returns ``(clean_patches, degraded_patches, positions)`` with patches of
    shape (N, size, size[, C]) and positions (N, 2) in image coordinates.
    """
    if clean.shape != degraded.shape:
        raise ValueError(f"clean {clean.shape} and degraded {degraded.shape} differ in shape")
    if positions is None:
        positions = patch_positions(clean.shape, size, stride)
    cp = np.stack([clean[y:y + size, x:x + size] for y, x in positions]) if len(positions) else \
        np.zeros((0, size, size) + clean.shape[2:], clean.dtype)
    dp = np.stack([degraded[y:y + size, x:x + size] for y, x in positions]) if len(positions) else \
        np.zeros((0, size, size) + clean.shape[2:], clean.dtype)
    return cp, dp, np.asarray(positions)


def augment(image: np.ndarray, k: int, flip: bool) -> np.ndarray:
    out = np.rot90(image, k, axes=(0, 1))
    if flip:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


class PatchSampler:
    """Draws training batches (degraded, residual) as float32 (N, C, P, P) arrays in [0, 1] units."""

    def __init__(self, images, patch_size, stride, quality_min, quality_max, patches_per_image, rng,
                 quality_power=1.0, clean_fraction=0.0):
        self.images = [im for im in images if min(im.shape[:2]) >= patch_size]
        if not self.images:
            raise ValueError(f"no training image is at least {patch_size} px on each side")
        self.patch_size, self.stride = patch_size, stride
        self.qmin, self.qmax = quality_min, quality_max
        self.per_image = patches_per_image
        self.rng = rng
        self.power, self.clean_fraction = quality_power, clean_fraction

    def draw_quality(self) -> int | None:
        """A JPEG quality in qmin..qmax (skewed low by ``quality_power``), or None for a clean sample."""
        if self.clean_fraction and self.rng.random() < self.clean_fraction:
            return None
        u = self.rng.random() ** self.power
        return min(self.qmax, self.qmin + int(u * (self.qmax - self.qmin + 1)))

    def sample_image(self):
        rng = self.rng
        img = self.images[int(rng.integers(len(self.images)))]
        img = augment(img, int(rng.integers(4)), bool(rng.integers(2)))
        q = self.draw_quality()
        degraded = img if q is None else jpeg_roundtrip(img, q)
        pos = patch_positions(img.shape, self.patch_size, self.stride)
        pick = pos[rng.choice(len(pos), size=min(self.per_image, len(pos)), replace=False)]
        return extract_patches(img, degraded, self.patch_size, self.stride, pick)

    def batch(self, batch_size: int):
        cs, ds = [], []
        n = 0
        while n < batch_size:
            c, d, _ = self.sample_image()
            cs.append(c)
            ds.append(d)
            n += len(c)
        clean = np.concatenate(cs)[:batch_size].astype(np.float32) / 255.0
        deg = np.concatenate(ds)[:batch_size].astype(np.float32) / 255.0
        if clean.ndim == 3:
            clean, deg = clean[:, None], deg[:, None]
        else:
            clean, deg = clean.transpose(0, 3, 1, 2), deg.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(deg), np.ascontiguousarray(deg - clean)


# ---------------------------------------------------------------- helpers

def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay from ``lr`` to ``lr_min`` at ``steps``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * t))


# ---------------------------------------------------------------- checkpoints

def save_checkpoint(run_dir: Path, net, opt, step, rng, extra) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    sd = opt.state_dict()
    for idx, st in sd["state"].items():
        for k, v in st.items():
            tensors[f"opt.{idx}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
    tmp = run_dir / ".checkpoint.safetensors.tmp"
    save_file(tensors, str(tmp))
    os.replace(tmp, run_dir / "checkpoint.safetensors")
    meta = {"step": step, "rng": rng.bit_generator.state, "param_groups": sd["param_groups"],
            "torch_rng": torch.get_rng_state().tolist(), **extra}
    write_json_atomic(run_dir / "checkpoint.json", meta)


def load_checkpoint(run_dir: Path, net, opt, rng) -> dict:
    tensors = load_file(str(run_dir / "checkpoint.safetensors"))
    meta = json.loads((run_dir / "checkpoint.json").read_text())
    net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, idx, name = k.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    rng.bit_generator.state = meta["rng"]
    torch.set_rng_state(torch.tensor(meta["torch_rng"], dtype=torch.uint8))
    return meta


def _truncate_log(log_path: Path, step: int) -> None:
    """Drop log rows written after the checkpoint a resumed run continues from."""
    if not log_path.exists():
        return
    with open(log_path, newline="") as f:
        rows = list(csv.reader(f))
    keep = [r for r in rows if not r or not r[0].isdigit() or int(r[0]) <= step]
    with open(log_path, "w", newline="") as f:
        csv.writer(f).writerows(keep)


# ---------------------------------------------------------------- validation

def load_validation(cfg: TrainConfig):
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
    return np.ascontiguousarray(image[y:y + side, x:x + side])


@torch.no_grad()
def validation_gain(net, pairs, device, bf16: bool) -> float:
    """Mean PSNR gain (dB) of the restoration over the JPEG input on ``pairs``."""
    if not pairs:
        return float("nan")
    was_training = net.training
    net.eval()
    gains = []
    for clean, deg in pairs:
        x = torch.from_numpy(deg.astype(np.float32) / 255.0)
        x = x[None, None] if x.ndim == 2 else x.permute(2, 0, 1)[None]
        x = x.to(device).contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, torch.bfloat16, enabled=bf16):
            r = net(x).float()
        out = (x - r).clamp(0, 1)[0].permute(1, 2, 0).squeeze(-1).cpu().numpy()
        restored = np.round(out * 255).astype(np.uint8)
        gains.append(psnr(clean, restored) - psnr(clean, deg))
    net.train(was_training)
    return float(np.mean(gains))


# ---------------------------------------------------------------- loop

def _raise_on_sigterm():
    """Turn SIGTERM (and an ignored SIGINT, as in background jobs) into KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise KeyboardInterrupt

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, handler)
    return signal.signal(signal.SIGTERM, handler)


def train(cfg: TrainConfig, *, resume: bool = False, progress: bool = True) -> dict:
    """Train a DnCNN on ``cfg.data`` and write ``cfg.out`` (safetensors + JSON record).

    The weights with the best periodic validation gain (or the last ones, with
    no validation folder) are written to ``cfg.out``.  Raises
    ``KeyboardInterrupt`` after saving a checkpoint when interrupted.
    Returns a summary dict.
    """
    device = pick_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    bf16 = use_bf16(cfg.bf16, device)
    run_dir = Path(cfg.run_dir or Path("runs") / Path(cfg.out).stem)
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    downscale = cfg.downscale or (2 if cfg.channels == 3 else 1)
    images = load_clean_images(cfg.data, cfg.channels, downscale)
    sampler = PatchSampler(images, cfg.patch_size, cfg.stride, cfg.quality_min, cfg.quality_max,
                           cfg.patches_per_image, rng, cfg.quality_power, cfg.clean_fraction)
    net = DnCNN(cfg.channels, cfg.depth, cfg.features, space_to_depth=cfg.space_to_depth)
    earlier: list[dict] = []  # the stages that made the --init weights
    if cfg.init:
        net.load_state_dict(load_state(cfg.init))
        init_json = Path(cfg.init).with_suffix(".json")
        if init_json.exists():
            prev = json.loads(init_json.read_text()).get("training", {})
            earlier = prev.get("stages", []) or ([{k: prev[k] for k in ("command", "steps", "wall_time_s", "hardware")
                                                   if k in prev}] if prev else [])
    net = net.to(device).to(memory_format=torch.channels_last).train()
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    step, elapsed, best, val_s = 0, 0.0, -float("inf"), 0.0
    log_path = run_dir / "log.csv"
    if resume:
        if not (run_dir / "checkpoint.json").exists():
            raise FileNotFoundError(f"--resume: no checkpoint in {run_dir}; start without --resume")
        meta = load_checkpoint(run_dir, net, opt, rng)
        step, elapsed, best = meta["step"], meta["elapsed_s"], meta["best_val_gain_db"]
        val_s = meta.get("val_s", 0.0)
        _truncate_log(log_path, step)
    val_sets = load_validation(cfg)
    val_cols = [f"val_q{q}_db" for q in val_sets]
    if not resume:
        with open(log_path, "w", newline="") as f:
            csv.writer(f).writerow(["step", "elapsed_s", "train_s", "lr", "loss", "val_gain_db", *val_cols])
    write_json_atomic(run_dir / "config.json", asdict(cfg))
    val_pairs = [p for pairs in val_sets.values() for p in pairs]

    def record(val_gain: float) -> dict:
        hardware = (f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
                    if device.type == "cpu" else torch.cuda.get_device_name(device))
        stages = earlier + [{"command": cfg.command, "steps": step, "wall_time_s": round(elapsed, 1),
                             "hardware": hardware}]
        return {
            "training": {
                "stages": stages, "total_steps": sum(st.get("steps", 0) for st in stages),
                "total_wall_time_s": round(sum(st.get("wall_time_s", 0) for st in stages), 1),
                "data": [str(d) for d in cfg.data], "command": cfg.command, "steps": step,
                "wall_time_s": round(elapsed, 1), "device": str(device),
                "hardware": hardware,
                "bf16": bf16, "quality_power": cfg.quality_power, "clean_fraction": cfg.clean_fraction,
                "patch_size": cfg.patch_size, "stride": cfg.stride, "batch_size": cfg.batch_size,
                "qualities": [cfg.quality_min, cfg.quality_max], "downscale": downscale,
            },
            "training_validation": {"folder": cfg.val_dir, "images": cfg.val_images, "crop": cfg.val_crop,
                                    "qualities": list(val_sets),
                                    "psnr_gain_db": None if math.isnan(val_gain) else round(val_gain, 4)},
        }

    def checkpoint():
        save_checkpoint(run_dir, net, opt, step, rng, {"elapsed_s": elapsed, "best_val_gain_db": best,
                                                       "val_s": val_s})

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=step, desc="train", unit="step", dynamic_ncols=True)
    last_ckpt = time.monotonic()
    losses: list[float] = []
    old_term = _raise_on_sigterm()
    start_elapsed, t0 = elapsed, time.monotonic()
    next_val_s = elapsed - val_s + cfg.val_minutes * 60
    try:
        while step < cfg.steps:
            if cfg.max_minutes and (time.monotonic() - t0) > cfg.max_minutes * 60:
                break
            if cfg.pause_at and step >= cfg.pause_at:
                break
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg)
            x, y = sampler.batch(cfg.batch_size)
            x = torch.from_numpy(x).to(device).contiguous(memory_format=torch.channels_last)
            y = torch.from_numpy(y).to(device).contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, torch.bfloat16, enabled=bf16):
                pred = net(x)
            loss = torch.nn.functional.mse_loss(pred.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            elapsed = start_elapsed + time.monotonic() - t0
            losses.append(float(loss.detach()))
            val, per_q = float("nan"), []
            due = (elapsed - val_s - next_val_s >= 0) if cfg.val_minutes else step % cfg.val_every == 0
            if val_sets and (due or step == cfg.steps):
                tv = time.monotonic()
                per_q = [validation_gain(net, pairs, device, bf16) for pairs in val_sets.values()]
                val = float(np.mean(per_q))
                val_s += time.monotonic() - tv
                elapsed = start_elapsed + time.monotonic() - t0
                next_val_s = elapsed - val_s + cfg.val_minutes * 60
                if val > best:
                    best = val
                    save_weights(net, cfg.out, record(val))
            if step % cfg.log_every == 0 or not math.isnan(val):
                with open(log_path, "a", newline="") as f:
                    csv.writer(f).writerow([step, round(elapsed, 1), round(elapsed - val_s, 1),
                                            f"{lr_at(step - 1, cfg):.3g}", f"{np.mean(losses):.4g}",
                                            "" if math.isnan(val) else f"{val:.4f}"]
                                           + ([f"{v:.4f}" for v in per_q] if per_q else [""] * len(val_cols)))
                if bar is not None:
                    bar.set_postfix(loss=f"{np.mean(losses):.3g}", val_db=f"{best:+.3f}" if best > -1e9 else "-")
                losses = []
            if bar is not None:
                bar.update(1)
            if time.monotonic() - last_ckpt > cfg.checkpoint_minutes * 60:
                checkpoint()
                last_ckpt = time.monotonic()
    except KeyboardInterrupt:
        checkpoint()
        raise
    finally:
        if bar is not None:
            bar.close()
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    checkpoint()
    if not val_pairs:
        save_weights(net, cfg.out, record(float("nan")))
    return {"steps": step, "elapsed_s": elapsed, "best_val_gain_db": best, "out": str(cfg.out), "run_dir": str(run_dir)}
