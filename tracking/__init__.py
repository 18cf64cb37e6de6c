"""Experiment tracking that never stops the science: W&B offline without credentials, and a
WandbLogger that turns W&B failures into a warning (imported on first use, PEP 562, so that
``OFFLINE_ENV`` can be read before W&B, Lightning or the Hugging Face hub are imported)."""

from robustness.lazy import lazy_exports

_EXPORTS = {
    "OFFLINE_ENV": "tracking.offline",
    "ResilientWandbLogger": "tracking.wandb",
    "finish_wandb_run": "tracking.wandb",
    "use_offline_wandb_without_credentials": "tracking.wandb",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports("tracking", _EXPORTS)
