"""Lightning callbacks: thin adapters over the ``robustness`` core."""

from callbacks.perturbation_sweep import PerturbationSweep
from callbacks.robustness_slope import RobustnessSlopeReport

__all__ = ["PerturbationSweep", "RobustnessSlopeReport"]
