"""One LightningModule per model family, plus the sweep hook they share.

Names are imported on first use (PEP 562), so ``import lightning_modules`` stays cheap and the
data and model packages can import each other's submodules without cycles.
"""

from robustness.lazy import lazy_exports

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

__getattr__ = lazy_exports("lightning_modules", _EXPORTS)
