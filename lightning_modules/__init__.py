"""One LightningModule per model family (each declares its ``Family``), plus the sweep hook they share."""

from lightning_modules.family import Family, families, family_of_group
from lightning_modules.gpt2_glue import GPT2GlueClassifier
from lightning_modules.gpt2_lm import GPT2LanguageModel, load_lm_checkpoint
from lightning_modules.linear import LinearMultitaskRegression, LinearRepresentation
from lightning_modules.sweepable import Sweepable, SweepableMixin

__all__ = [
    "Family",
    "GPT2GlueClassifier",
    "GPT2LanguageModel",
    "LinearMultitaskRegression",
    "LinearRepresentation",
    "Sweepable",
    "SweepableMixin",
    "families",
    "family_of_group",
    "load_lm_checkpoint",
]
