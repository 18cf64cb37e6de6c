"""Shared test setup: offline everything, small helpers for CLI runs and generated fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

from tracking.offline import OFFLINE_ENV as NO_NETWORK

# Property tests draw the same examples on every run, so CI is reproducible; set
# HYPOTHESIS_PROFILE=explore to draw fresh ones when hunting for new failures.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = Path(__file__).resolve().parents[1]
OFFLINE_ENV = {
    **NO_NETWORK,
    "WANDB_INIT_TIMEOUT": "300",  # a loaded 2-core machine can be slow to start the W&B service
}
os.environ.update(OFFLINE_ENV)


def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    unset: tuple[str, ...] = (),
    timeout: int = 600,
) -> subprocess.CompletedProcess:
    """``python run.py ARGS`` in a fresh interpreter (the true end-to-end path), stdin closed."""
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


@pytest.fixture
def cli():
    """The ``run_cli`` helper as a fixture."""
    return run_cli


def only_test_sweep(root: Path) -> Path:
    """The one test sweep CSV under ``root`` (named after the epoch of the tested checkpoint)."""
    (path,) = (root / "robustness").glob("sweep_test_epoch???.csv")
    return path
