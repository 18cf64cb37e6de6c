"""A W&B run for a reporting command (a table or figure built from finished runs' outputs).

Without W&B credentials the run is offline (``wandb sync`` uploads it later); it never blocks on a
login prompt. Every reporting command logs through ``log_report``, so they behave alike.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def log_report(
    payload: Callable[[Any], Mapping[str, Any]],
    *,
    project: str,
    name: str | None,
    save_dir: Path,
    job_type: str,
    group: str | None = None,
) -> str:
    """Start a W&B run (in ``group`` when given), log ``payload(wandb)`` (a function of the ``wandb`` module,
    so callers build ``wandb.Table``/``wandb.Image`` objects without importing W&B themselves), finish it;
    returns the run's directory."""
    import wandb

    save_dir.mkdir(parents=True, exist_ok=True)
    settings = {"project": project, "name": name, "dir": str(save_dir), "job_type": job_type, "group": group}
    try:
        run = wandb.init(**settings)
    except wandb.errors.UsageError:
        run = wandb.init(**settings, mode="offline")
        print(
            f"W&B: no credentials found, logged offline. Upload later with: wandb sync {Path(run.dir).parent}",
            file=sys.stderr,
        )
    try:
        run.log(dict(payload(wandb)))
        return str(Path(run.dir).parent)
    finally:
        run.finish()
