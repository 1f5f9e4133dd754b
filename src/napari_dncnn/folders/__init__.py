"""The folder pipeline that ``batch`` and ``compress`` share, and its result types."""

from .pipeline import (
    FolderError,
    FolderPlan,
    check_folders,
    discover,
    drain,
    earlier_entries,
    find_inputs,
    finished_if_all_exist,
    iterate,
    plan_outputs,
    run_lock,
    triage,
    written,
)
from .results import FileResult, FolderReport, Skipped, Status, describe_error

__all__ = [
    "FileResult",
    "FolderError",
    "FolderPlan",
    "FolderReport",
    "Skipped",
    "Status",
    "check_folders",
    "describe_error",
    "discover",
    "drain",
    "earlier_entries",
    "find_inputs",
    "finished_if_all_exist",
    "iterate",
    "plan_outputs",
    "run_lock",
    "triage",
    "written",
]
