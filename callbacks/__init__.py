"""Lightning callbacks: thin adapters over the ``cognitive_reserve`` core."""

from callbacks.finite_training import FiniteTraining, TrainingDiverged
from callbacks.perturbation_sweep import PerturbationSweep
from callbacks.progress import RunProgressBar
from callbacks.robustness_slope import RobustnessSlopeReport
from callbacks.spectral_monitor import SpectralMonitor
from callbacks.weight_norms import WeightNorms

__all__ = [
    "FiniteTraining",
    "PerturbationSweep",
    "RobustnessSlopeReport",
    "RunProgressBar",
    "SpectralMonitor",
    "TrainingDiverged",
    "WeightNorms",
]
