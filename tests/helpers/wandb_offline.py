"""The offline W&B run reader for tests (it lives in ``tracking.offline_run``), and a patient read of a run whose
W&B service may still be writing."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tracking.offline_run import OfflineRun, find_runs, read_run

__all__ = ["OfflineRun", "find_runs", "read_run", "read_run_until"]


def read_run_until(path: str | Path, ready: Callable[[OfflineRun], bool], patience_s: float = 60.0) -> OfflineRun:
    """``read_run(path)``, re-read until ``ready`` holds or ``patience_s`` passes: right after ``finish()`` the
    W&B service of a loaded machine may still be writing the file."""
    deadline = time.monotonic() + patience_s
    while not ready(run := read_run(path)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return run
