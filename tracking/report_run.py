"""A W&B run for a reporting command (a table or figure built from finished runs' outputs).

Without W&B credentials the run is offline (``wandb sync`` uploads it later); it never blocks on a
login prompt. Every reporting command logs through ``log_report``, so they behave alike: W&B prints
nothing itself (``silent``: its start and end banners said the same thing three times; a failure still
raises), and the command prints one line, ``report_line``, saying where the run is and how to upload it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tracking.wandb import WandbRunDir


def log_report(
    payload: Callable[[Any], Mapping[str, Any]],
    *,
    project: str,
    name: str | None,
    save_dir: Path,
    job_type: str,
    group: str | None = None,
) -> WandbRunDir:
    """Start a W&B run (in ``group`` when given), log ``payload(wandb)`` (a function of the ``wandb`` module,
    so callers build ``wandb.Table``/``wandb.Image`` objects without importing W&B themselves), finish it;
    returns where the run lives (offline without credentials)."""
    import wandb

    save_dir.mkdir(parents=True, exist_ok=True)
    settings = {
        "project": project,
        "name": name,
        "dir": str(save_dir),
        "job_type": job_type,
        "group": group,
        "settings": wandb.Settings(silent=True),
        "reinit": "create_new",  # its own run, even beside an active one
    }
    try:
        run = wandb.init(**settings)
    except wandb.errors.UsageError:
        run = wandb.init(**settings, mode="offline")
    try:
        run.log(dict(payload(wandb)))
        return WandbRunDir(Path(run.dir).parent, None if run.offline else run.url)
    finally:
        run.finish()


def report_line(run: WandbRunDir) -> str:
    """``W&B run: <dir> (offline; upload with: wandb sync <dir>)``, or its URL when it was online."""
    return f"W&B run: {run.path} ({run.url or f'offline; upload with: wandb sync {run.path}'})"
