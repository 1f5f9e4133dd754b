"""Training and evaluation: samples (:mod:`.data`), the loop (:mod:`.loop`),
checkpoints (:mod:`.checkpoint`), options (:mod:`.config`) and metrics/tables (:mod:`.evaluate`)."""

from .config import TrainConfig
from .loop import train

__all__ = ["TrainConfig", "train"]
