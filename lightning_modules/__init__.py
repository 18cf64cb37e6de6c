"""One LightningModule per model family, plus the sweep hook they share.

Names are imported on first use (PEP 562), so ``import lightning_modules`` stays cheap and the
data and model packages can import each other's submodules without cycles.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "GPT2GlueClassifier": "lightning_modules.gpt2_glue",
    "GPT2LanguageModel": "lightning_modules.gpt2_lm",
    "load_lm_checkpoint": "lightning_modules.gpt2_lm",
    "LinearMultitaskRegression": "lightning_modules.linear",
    "LinearRepresentation": "lightning_modules.linear",
    "Sweepable": "lightning_modules.sweepable",
    "SweepableMixin": "lightning_modules.sweepable",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lightning_modules' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
