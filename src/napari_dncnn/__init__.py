"""napari-dncnn: DnCNN restoration of JPEG-compressed (and noisy) images.

The public API works without napari or Qt::

    from napari_dncnn import restore
    restored, residual = restore(image)          # numpy in, numpy out
"""

from importlib.metadata import PackageNotFoundError, version

from .engine import Cancelled, Restoration, iter_restore, restore
from .networks import DnCNN, fold_batchnorm, receptive_field
from .weights import BUNDLED_MODELS, LoadedModel, WeightsError, load_model, save_weights

try:
    __version__ = version("napari-dncnn")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "BUNDLED_MODELS",
    "Cancelled",
    "DnCNN",
    "LoadedModel",
    "Restoration",
    "WeightsError",
    "fold_batchnorm",
    "iter_restore",
    "load_model",
    "receptive_field",
    "restore",
    "save_weights",
]
