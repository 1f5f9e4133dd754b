"""Folder batches: :func:`run_batch` (:mod:`.run`), one file's work (:mod:`.job`), local and dask runners."""

from ..folders import FileResult, Status
from .job import (
    OUT_OF_CORE_ABOVE,
    PIXEL_LIMIT,
    BatchError,
    BatchOptions,
    process_file,
)
from .run import REPORT_NAME, BatchReport, find_inputs, plan_outputs, run_batch

__all__ = [
    "BatchError",
    "BatchOptions",
    "BatchReport",
    "FileResult",
    "OUT_OF_CORE_ABOVE",
    "PIXEL_LIMIT",
    "REPORT_NAME",
    "Status",
    "find_inputs",
    "plan_outputs",
    "process_file",
    "run_batch",
]
