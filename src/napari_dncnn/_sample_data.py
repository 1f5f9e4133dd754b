"""Sample data for napari: images JPEG-compressed at quality 10, made from images scikit-image ships.

Nothing is downloaded: camera and astronaut are bundled with scikit-image.
"""

from __future__ import annotations

import numpy as np

from .jpeg import jpeg_roundtrip


def camera_q10():
    from skimage import data

    return [(jpeg_roundtrip(data.camera(), 10), {"name": "camera q10"})]


def astronaut_q10():
    from skimage import data

    return [(jpeg_roundtrip(data.astronaut(), 10), {"name": "astronaut q10", "rgb": True})]


def stack_q10():
    """A 6-plane z-stack: shifted crops of camera, each plane JPEG-compressed at quality 10."""
    from skimage import data

    cam = data.camera()
    planes = [
        jpeg_roundtrip(
            np.ascontiguousarray(cam[40 + 12 * z : 296 + 12 * z, 150 + 8 * z : 406 + 8 * z]), 10
        )
        for z in range(6)
    ]
    return [(np.stack(planes), {"name": "camera stack q10", "scale": (4.0, 1.0, 1.0)})]
