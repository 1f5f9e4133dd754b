"""Where the panel's last run stands, as a value the panel and its tests read (not the status text)."""

from __future__ import annotations

from enum import Enum


class RunState(Enum):
    """Where the panel's last run stands; the status line says it in words."""

    IDLE = "idle"  # no run yet (the status line shows the plan)
    RUNNING = "running"
    CANCELLING = "cancelling"  # Cancel was clicked and the run has not ended yet
    CANCELLED = "cancelled"
    DONE = "done"
    FAILED = "failed"
    REFUSED = "refused"  # the run could not start (no image layer, a colour model on gray, ...)
    STOPPED = "stopped"  # the source layer was deleted during the run
