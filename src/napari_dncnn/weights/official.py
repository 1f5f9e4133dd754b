"""The official DnCNN models by name, downloaded on first use with a hash check and cached.

They are the MatConvNet files published with the paper (cszn/DnCNN, folder
``model/``).  That repository carries no licence file, so napari-dncnn never
ships them: the user's machine downloads them from their public URL.  The
cache is ``pooch.os_cache("napari-dncnn")`` or the folder named by
``NAPARI_DNCNN_CACHE``; a file there with the source's own name and the right
hash counts as downloaded.  pooch streams to a temporary file and checks the
hash before it moves the file into place, so a wrong or cut download never
stays in the cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .store import WeightsError

__all__ = ["OfficialModel", "OFFICIAL_MODELS", "cache_dir", "fetch_official"]

SOURCE = "https://github.com/cszn/DnCNN (commit e93b278, folder model/; no licence file)"


@dataclass(frozen=True)
class OfficialModel:
    name: str
    filename: str
    url: str
    sha256: str
    channels: int
    task: str


OFFICIAL_MODELS = {
    m.name: m
    for m in (
        OfficialModel(
            "dncnn3",
            "DnCNN3.mat",
            "https://github.com/cszn/DnCNN/raw/master/model/DnCNN3.mat",
            "3962377d522b6728417e364bf7a589cf34ddfb592af0bd9769e53f8123d17677",
            1,
            "DnCNN-3, gray: JPEG deblocking (q5..99), Gaussian denoising (sigma 0..55), x2..x4 super-resolution",
        ),
        OfficialModel(
            "dncnn-b",
            "GD_Gray_Blind.mat",
            "https://github.com/cszn/DnCNN/raw/master/model/GD_Gray_Blind.mat",
            "37f76da0b71dd2b2789ce91848fe2f184ab486203c9af9ac1b98199b60ea02b0",
            1,
            "DnCNN-B, gray: blind Gaussian denoising (sigma 0..55)",
        ),
        OfficialModel(
            "cdncnn-b",
            "GD_Color_Blind.mat",
            "https://github.com/cszn/DnCNN/raw/master/model/GD_Color_Blind.mat",
            "57db5437a44037e7675a99042fe7b14d3dcdf1c333d3ec665855566e8a59795c",
            3,
            "CDnCNN-B, colour: blind Gaussian denoising (sigma 0..55)",
        ),
    )
}
"""Named official models: file name, public URL, sha256, channels, what each repairs."""


def cache_dir() -> Path:
    """Where downloaded models live: ``$NAPARI_DNCNN_CACHE`` or the user cache of napari-dncnn."""
    env = os.environ.get("NAPARI_DNCNN_CACHE")
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("napari-dncnn"))


def fetch_official(name: str, *, progressbar=False) -> Path:
    """The cached file of official model ``name``, downloaded first if needed.

    ``progressbar``: ``True`` for tqdm, or a tqdm-like object (``total``,
    ``update``, ``reset``, ``close``) such as a napari progress bar.  Raises
    :class:`WeightsError` with the URL and the ways round it when the file
    cannot be had (offline, wrong hash).
    """
    import pooch
    import requests

    model = OFFICIAL_MODELS[name]
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = pooch.retrieve(
            model.url,
            known_hash=f"sha256:{model.sha256}",
            fname=model.filename,
            path=folder,
            downloader=pooch.HTTPDownloader(progressbar=progressbar),
        )
    except requests.exceptions.RequestException as exc:
        cached = folder / model.filename
        if cached.exists():
            raise WeightsError(
                f"the cached {cached} does not match the sha256 of model {name!r} (a damaged or different "
                f"file), and a fresh copy could not be downloaded from {model.url} ({type(exc).__name__}). "
                "Delete it, or replace it with the file from that URL."
            ) from exc
        raise WeightsError(
            f"cannot download model {name!r} from {model.url} ({type(exc).__name__}). Either download "
            f"that file yourself and pass its path as the model, or put it as {model.filename} into "
            f"{folder} (or the folder named by NAPARI_DNCNN_CACHE); it is used from there without network."
        ) from exc
    except ValueError as exc:  # pooch: hash mismatch (the file was deleted)
        raise WeightsError(
            f"model {name!r} from {model.url} did not match its sha256 {model.sha256}; "
            f"nothing was kept. {exc}"
        ) from exc
    except OSError as exc:
        raise WeightsError(
            f"cannot write model {name!r} into the cache {folder}: {exc}; set "
            "NAPARI_DNCNN_CACHE to a writable folder"
        ) from exc
    return Path(path)
