"""napari-dncnn: DnCNN restoration of JPEG-compressed (and noisy) images.

The public API works without napari or Qt::

    from napari_dncnn import restore
    restored, residual = restore(image)          # numpy in, numpy out
"""

from .engine import Cancelled, Restoration, restore
from .model import DnCNN, fold_batchnorm, receptive_field
from .models import BUNDLED_MODELS, LoadedModel, WeightsError, load_model, save_weights

__version__ = "0.1.0"

__all__ = [
    "BUNDLED_MODELS",
    "Cancelled",
    "DnCNN",
    "LoadedModel",
    "Restoration",
    "WeightsError",
    "fold_batchnorm",
    "load_model",
    "receptive_field",
    "restore",
    "save_weights",
]
