"""Named models that are downloaded on first use, with a hash check, and cached.

The files are the registry's (:mod:`.registry`): the official DnCNN models
(MatConvNet files from cszn/DnCNN, which has no licence, so napari-dncnn never
ships them), FBCNN, DRUNet and SCUNet (``.pth`` state dicts from their
releases).  The cache is ``pooch.os_cache("napari-dncnn")`` or the folder named
by ``NAPARI_DNCNN_CACHE``; a file there with the source's own name and the
right hash counts as downloaded.  pooch streams to a temporary file and checks
the hash before it moves the file into place, so a wrong or cut download never
stays in the cache.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import registry
from .store import WeightsError

__all__ = ["cache_dir", "cached_path", "download_note", "download_size", "fetch_model"]


def cache_dir() -> Path:
    """Where downloaded models live: ``$NAPARI_DNCNN_CACHE`` or the user cache of napari-dncnn."""
    env = os.environ.get("NAPARI_DNCNN_CACHE")
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("napari-dncnn"))


def _file(name: str) -> registry.ModelFile:
    spec = registry.MODELS.get(name)
    if spec is None or spec.file is None:
        raise WeightsError(f"{name!r} is not a model that napari-dncnn downloads")
    return spec.file


def cached_path(name: str) -> Path:
    """Where the file of model ``name`` is (or will be) in the cache."""
    return cache_dir() / _file(name).filename


def megabytes(size: int | None, approx: int | None = None, *, short: bool = False) -> str:
    """``"2.8 MB"``; ``"about 131 MB"`` from an estimate; ``"size unknown"``; ``short``, for a
    table's cells: ``"~131 MB"`` and ``"unknown"``."""
    if size is not None:
        return f"{size / 1e6:.1f} MB"
    if approx is None:
        return "unknown" if short else "size unknown"
    return ("~" if short else "about ") + f"{approx / 1e6:.0f} MB"


def shown_size(file: registry.ModelFile, *, short: bool = False) -> str:
    """``file``'s size as a user reads it: exact, estimated ("about 131 MB") or unknown."""
    return megabytes(file.size, file.approx_size, short=short)


def download_size(name: str) -> str | None:
    """What a first use of model ``name`` will download ("2.8 MB"), or None: cached, bundled,
    or not a named model."""
    spec = registry.MODELS.get(name)
    if spec is None or spec.file is None or cached_path(name).exists():
        return None
    return shown_size(spec.file)


def download_note(name: str) -> str | None:
    """What a first use of ``name`` will download (size, URL, cache), or None when it is cached."""
    size = download_size(name)
    if size is None:
        return None
    spec = registry.MODELS[name]
    return (
        f"model {name!r}: downloading {size} once from {spec.file.url} "
        f"into {cache_dir()} (licence: {spec.licence})"
    )


def fetch_model(name: str, *, progressbar=False) -> Path:
    """The cached file of model ``name``, downloaded first if needed.

    ``progressbar``: ``True`` for tqdm, or a tqdm-like object (``total``,
    ``update``, ``reset``, ``close``) such as a napari progress bar.  Raises
    :class:`WeightsError` with the URL and the ways round it when the file
    cannot be had (offline, wrong hash).
    """
    import pooch
    import requests

    file, folder = _file(name), cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = pooch.retrieve(
            file.url,
            known_hash=f"sha256:{file.sha256}",
            fname=file.filename,
            path=folder,
            downloader=pooch.HTTPDownloader(progressbar=progressbar),
        )
    except requests.exceptions.RequestException as exc:
        cached = folder / file.filename
        if cached.exists():
            raise WeightsError(
                f"the cached {cached} does not match the sha256 of model {name!r} (a damaged or different "
                f"file), and a fresh copy could not be downloaded from {file.url} ({type(exc).__name__}). "
                "Delete it, or replace it with the file from that URL."
            ) from exc
        raise WeightsError(
            f"cannot download model {name!r} from {file.url} ({type(exc).__name__}). Either download "
            f"that file yourself and pass its path as the model, or put it as {file.filename} into "
            f"{folder} (or the folder named by NAPARI_DNCNN_CACHE); it is used from there without network."
        ) from exc
    except ValueError as exc:  # pooch: hash mismatch (the file was deleted)
        raise WeightsError(
            f"model {name!r} from {file.url} did not match its sha256 {file.sha256}; nothing was kept. "
            f"If you downloaded the file yourself and trust it, pass its path as the model. {exc}"
        ) from exc
    except OSError as exc:
        raise WeightsError(
            f"cannot write model {name!r} into the cache {folder}: {exc}; set "
            "NAPARI_DNCNN_CACHE to a writable folder"
        ) from exc
    return Path(path)
