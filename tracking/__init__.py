"""Experiment tracking that never stops the science: W&B offline without credentials, and a
WandbLogger that turns W&B failures into a warning (imported on first use, PEP 562, so that
``OFFLINE_ENV`` can be read before W&B, Lightning or the Hugging Face hub are imported)."""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "OFFLINE_ENV": "tracking.offline",
    "ResilientWandbLogger": "tracking.wandb",
    "WandbRunDir": "tracking.wandb",
    "finish_wandb_run": "tracking.wandb",
    "use_offline_wandb_without_credentials": "tracking.wandb",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tracking' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
