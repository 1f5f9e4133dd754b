"""The napari widget: one-click DnCNN restoration of the active image layer.

With ``_sample_data``, the only place that imports napari and Qt.

- ``panel``: the Restore panel, its controls and what a click does;
- ``worker``: the worker thread (reads the layer, downloads a model, restores, yields progress);
- ``outputs``: the residual and restored layers beside their source;
- ``notes``: the quality guard's notes on a layer, and errors in the widget's words.
"""

from .panel import RestoreWidget

__all__ = ["RestoreWidget"]
