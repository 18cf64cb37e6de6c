"""``python run.py ...`` in a fresh interpreter (the true end-to-end path), and where its outputs land."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

#: The repository root (``run.py`` lives here).
ROOT = Path(__file__).resolve().parents[2]
#: The environment of every test: no network, and time for the W&B service to start. ``tracking.offline``
#: is read from its file, not imported: importing the ``tracking`` package imports Lightning, which imports
#: the Hugging Face hub, which reads ``HF_HUB_OFFLINE`` once; conftest sets this environment before that.
OFFLINE_ENV = {
    **runpy.run_path(str(ROOT / "tracking" / "offline.py"))["OFFLINE_ENV"],
    "WANDB_INIT_TIMEOUT": "300",  # a loaded 2-core machine can be slow to start the W&B service
}


def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    unset: tuple[str, ...] = (),
    timeout: int = 600,
) -> subprocess.CompletedProcess:
    """``python run.py ARGS`` in a fresh interpreter, stdin closed; ``env`` adds to the offline environment."""
    environment = {**os.environ, **OFFLINE_ENV, **(env or {})}
    environment.pop("WANDB_SERVICE", None)  # a fresh process starts its own W&B service, as a user's would
    for name in unset:
        environment.pop(name, None)
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *args],
        cwd=cwd or ROOT,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def only_test_sweep(root: Path) -> Path:
    """The one test sweep CSV under ``root`` (named after the epoch of the tested checkpoint)."""
    (path,) = (root / "robustness").glob("sweep_test_epoch???.csv")
    return path
