"""One LightningModule per model family, plus the sweep hook they share."""

from lightning_modules.linear import LinearMultitaskRegression, LinearRepresentation
from lightning_modules.sweepable import Sweepable, SweepableMixin

__all__ = ["LinearMultitaskRegression", "LinearRepresentation", "Sweepable", "SweepableMixin"]
