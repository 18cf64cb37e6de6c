"""W&B without drama.

- ``use_offline_wandb_without_credentials``: with no API key anywhere, switch to offline mode and
  say how to sync later, instead of failing or waiting on a login prompt.
- ``ResilientWandbLogger``: a quiet ``WandbLogger`` (no anonymous setting, no end-of-run wall of
  keys) whose failures (server unreachable at start, the W&B service dying mid-run, ...) become one
  warning. Unreachable at start → it logs offline instead;
  failing later → it stops logging. The run goes on and the local CSV/PNG outputs are complete.
"""

from __future__ import annotations

import netrc
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_warn

from cognitive_reserve.errors import first_line

WANDB_HOST = "api.wandb.ai"


def use_offline_wandb_without_credentials(save_dir: str) -> None:
    """Switch W&B to offline mode (and say how to sync) when no API key can be found."""
    if os.environ.get("WANDB_MODE") or os.environ.get("WANDB_API_KEY") or _netrc_has_wandb():
        return
    os.environ["WANDB_MODE"] = "offline"
    if os.environ.get("LOCAL_RANK", "0") == "0":
        print(
            f"W&B: no credentials found, logging offline under {save_dir}/wandb. "
            f"Upload later with: wandb sync {save_dir}/wandb/offline-run-*",
            file=sys.stderr,
        )


def _netrc_has_wandb() -> bool:
    try:
        return netrc.netrc().authenticators(WANDB_HOST) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


@dataclass(frozen=True)
class WandbRunDir:
    """Where a finished W&B run lives: its local directory, and its URL when it was online."""

    path: Path
    url: str | None


def finish_wandb_run(exit_code: int | None = None) -> WandbRunDir | None:
    """Finish the active W&B run, so every logged record is on disk before the process exits; returns
    where the run lives (None without a run). A non-zero ``exit_code`` marks the run as failed."""
    import wandb

    run = wandb.run
    if run is None:
        return None
    where = WandbRunDir(Path(run.dir).parent, None if run.offline else run.url)
    try:
        wandb.finish(exit_code=exit_code)
    except Exception as err:
        rank_zero_warn(
            f"W&B failed ({type(err).__name__}: {first_line(err)}) while finishing the run; "
            "local CSV/PNG outputs are complete"
        )
    return where


class _NoExperiment:
    """Stands in for the W&B run once W&B has failed: every call does nothing."""

    id = None

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


class ResilientWandbLogger(WandbLogger):
    """``WandbLogger`` (same arguments) that warns instead of raising when W&B fails."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("settings") is None:  # LightningCLI passes every wandb.init argument, None when unset
            kwargs["settings"] = {"quiet": True}  # no wall of keys at the end: run.py summarises the run
        super().__init__(*args, **kwargs)
        if "anonymous" in self._wandb_init and self._wandb_init["anonymous"] is None:
            del self._wandb_init["anonymous"]  # W&B warns "has no effect" whenever the setting is passed
        self._failed = False

    @property
    def experiment(self) -> Any:
        if self._failed:
            return _NoExperiment()
        try:
            return WandbLogger.experiment.fget(self)
        except Exception as err:
            if self._wandb_init.get("mode") == "offline":
                return self._give_up(err)
            rank_zero_warn(f"W&B unreachable ({first_line(err)}); logging offline under {self.save_dir} instead")
            self._wandb_init["mode"] = "offline"
            self._experiment = None
            try:
                return WandbLogger.experiment.fget(self)
            except Exception as offline_err:
                return self._give_up(offline_err)

    def _give_up(self, err: Exception) -> _NoExperiment:
        rank_zero_warn(
            f"W&B failed ({type(err).__name__}: {first_line(err)}); the run continues without W&B, "
            "local CSV/PNG outputs are complete"
        )
        self._failed = True
        return _NoExperiment()

    def guarded(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``method(*args, **kwargs)``, or None once W&B has failed (the failure becomes one warning)."""
        if self._failed:
            return None
        try:
            return method(*args, **kwargs)
        except Exception as err:
            self._give_up(err)
            return None

    def log_metrics(self, *args: Any, **kwargs: Any) -> None:
        self.guarded(super().log_metrics, *args, **kwargs)

    def log_hyperparams(self, *args: Any, **kwargs: Any) -> None:
        self.guarded(super().log_hyperparams, *args, **kwargs)

    def log_table(self, *args: Any, **kwargs: Any) -> None:
        self.guarded(super().log_table, *args, **kwargs)

    def log_text(self, *args: Any, **kwargs: Any) -> None:
        self.guarded(super().log_text, *args, **kwargs)

    def log_image(self, *args: Any, **kwargs: Any) -> None:
        self.guarded(super().log_image, *args, **kwargs)

    def after_save_checkpoint(self, *args: Any, **kwargs: Any) -> None:
        self.guarded(super().after_save_checkpoint, *args, **kwargs)

    def finalize(self, *args: Any, **kwargs: Any) -> None:
        self.guarded(super().finalize, *args, **kwargs)
