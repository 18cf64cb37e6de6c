"""Experiment tracking that never stops the science: W&B offline without credentials, and a
WandbLogger that turns W&B failures into a warning."""

from tracking.offline import OFFLINE_ENV
from tracking.wandb import ResilientWandbLogger, WandbRunDir, finish_wandb_run, use_offline_wandb_without_credentials

__all__ = [
    "OFFLINE_ENV",
    "ResilientWandbLogger",
    "WandbRunDir",
    "finish_wandb_run",
    "use_offline_wandb_without_credentials",
]
