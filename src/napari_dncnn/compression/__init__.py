"""Compression with a DnCNN decoder: how many bytes it saves, and JPEGs made to a target.

- :mod:`.bd`: Bjontegaard delta rate and quality between two rate-distortion curves;
- :mod:`.rd`: the rate-distortion measurement of JPEG and JPEG + DnCNN over images;
- :mod:`.plot`: its figure;
- :mod:`.compress`: the smallest JPEG whose restored version reaches a PSNR or SSIM;
- :mod:`.folders`: the ``rd`` and ``compress`` commands on folders, with batch rules.
"""

from .bd import bd_quality, bd_rate
from .compress import Compressed, Target, compress_image, smallest_quality
from .rd import DEFAULT_QUALITIES, RDRow, rd_rows, summarize

__all__ = [
    "DEFAULT_QUALITIES",
    "Compressed",
    "RDRow",
    "Target",
    "bd_quality",
    "bd_rate",
    "compress_image",
    "rd_rows",
    "smallest_quality",
    "summarize",
]
