"""Training checkpoints: network, optimiser and random state in safetensors + JSON (never pickles)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..files.atomic import atomic_target, write_json_atomic

__all__ = ["save_checkpoint", "load_checkpoint", "truncate_log"]


def save_checkpoint(run_dir: Path, net, opt, step, rng, extra) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    sd = opt.state_dict()
    for idx, st in sd["state"].items():
        for k, v in st.items():
            tensors[f"opt.{idx}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
    with atomic_target(run_dir / "checkpoint.safetensors") as tmp:
        save_file(tensors, str(tmp))
    meta = {
        "step": step,
        "rng": rng.bit_generator.state,
        "param_groups": sd["param_groups"],
        "torch_rng": torch.get_rng_state().tolist(),
        **extra,
    }
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


def truncate_log(log_path: Path, step: int) -> None:
    """Drop log rows written after the checkpoint a resumed run continues from."""
    if not log_path.exists():
        return
    with open(log_path, newline="") as f:
        rows = list(csv.reader(f))
    keep = [r for r in rows if not r or not r[0].isdigit() or int(r[0]) <= step]
    with open(log_path, "w", newline="") as f:
        csv.writer(f).writerows(keep)
