"""Choosing a torch device and numeric precision (no napari, no Qt)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import torch

__all__ = [
    "pick_device",
    "available_devices",
    "describe_device",
    "cpu_has_amx",
    "cpu_has_native_bf16",
    "use_bf16",
]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """Devices present on this machine, best first (``cuda:N``..., ``mps``, ``cpu``)."""
    devs = (
        [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    )
    if _mps_available():
        devs.append("mps")
    return devs + ["cpu"]


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``'auto'`` gives cuda, then mps, then cpu; an explicit device that is missing raises ``ValueError``."""
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        return torch.device(available_devices()[0])
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"unknown device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} was asked for but this machine has no CUDA GPU; "
                "choose the device cpu or auto"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r} does not exist: this machine has "
                f"{torch.cuda.device_count()} CUDA GPU(s)"
            )
    elif dev.type == "mps" and not _mps_available():
        raise ValueError(
            f"device {device!r} was asked for but Apple MPS is not available here; "
            "choose the device cpu or auto"
        )
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(
            f"unsupported device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        )
    return dev


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True on CPUs with AVX512-BF16 or AMX, where bf16 autocast beats fp32 (elsewhere it is ~10x slower)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@lru_cache(maxsize=1)
def cpu_has_amx() -> bool:
    """True on CPUs with AMX tiles for bf16 (``amx_bf16``)."""
    try:
        return "amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def use_bf16(setting, device: torch.device, *, training: bool = False) -> bool:
    """Resolve a precision setting (``'auto'``, ``'on'``/``'bf16'``, ``'off'``/``'fp32'``); others raise.

    ``'auto'`` is bf16 on CUDA; on a CPU, for training where it computes bf16 natively (AVX512-BF16
    or AMX: 1.2x the fp32 step rate measured on an AVX512-BF16 Xeon), for inference only with AMX:
    on that Xeon without AMX, bf16 inference was slower than fp32 (DnCNN 0.72x,
    ``benchmarks/bench_precision.py``; FBCNN 0.63x, ``benchmarks/bench_networks.py``).
    """
    if setting in ("on", "bf16", True):
        return True
    if setting in ("off", "fp32", False):
        return False
    if setting != "auto":
        raise ValueError(
            f"unknown precision {setting!r}; use 'auto', 'fp32' (or 'off') or 'bf16' (or 'on')"
        )
    if device.type == "cuda":
        return True
    return device.type == "cpu" and (cpu_has_native_bf16() if training else cpu_has_amx())


def describe_device(device: str) -> str:
    """``device`` in words for a device list: ``cuda:0 NVIDIA H100``, ``cpu: 16 cores, bf16 (AMX)``."""
    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        return f"{device} {props.name} ({props.total_memory / 2**30:.0f} GiB)"
    if device == "mps":
        return "mps: Apple GPU"
    kind = "bf16 (AMX)" if cpu_has_amx() else "fp32"  # short: the list sets the panel's width
    return f"cpu: {os.cpu_count() or 1} cores, {kind}"
