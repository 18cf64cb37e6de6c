"""The offline W&B run reader for tests (it lives in ``tracking.offline_run``)."""

from tracking.offline_run import OfflineRun, find_runs, read_run, read_run_until

__all__ = ["OfflineRun", "find_runs", "read_run", "read_run_until"]
