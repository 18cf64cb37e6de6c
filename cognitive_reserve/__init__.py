"""Framework-free core: perturb weights in place, sweep seeded trials, summarise, compare, theory.

Importing it registers every built-in perturbation (``PERTURBATIONS``), the structural ones included.

Depends on torch, numpy, scipy and matplotlib only — never on Lightning.
"""

from cognitive_reserve.activation_faults import ActivationFault
from cognitive_reserve.adaptive import AdaptiveTrials
from cognitive_reserve.bit_flip import BitFlip
from cognitive_reserve.errors import ConfigError
from cognitive_reserve.io import SweepCsvWriter, read_sweep_csv, write_summary_csv
from cognitive_reserve.layout import ModelLayout
from cognitive_reserve.perturbations import (
    PERTURBATIONS,
    GaussianNoise,
    MagnitudePruning,
    Perturbation,
    RandomDeletion,
    make_perturbation,
    register,
)
from cognitive_reserve.restore import ParameterSnapshot, perturbed
from cognitive_reserve.seeding import make_generator, trial_seed
from cognitive_reserve.stats import LevelSummary, mean_ci, summarize
from cognitive_reserve.subject import SweepSubject
from cognitive_reserve.sweep import CSV_COLUMNS, SweepGrid, SweepRow, run_sweep
from cognitive_reserve.targets import TargetSpec, select_targets
from cognitive_reserve.unit_deletion import HeadDeletion, NeuronDeletion

__all__ = [
    "CSV_COLUMNS",
    "PERTURBATIONS",
    "ActivationFault",
    "AdaptiveTrials",
    "BitFlip",
    "ConfigError",
    "GaussianNoise",
    "HeadDeletion",
    "LevelSummary",
    "MagnitudePruning",
    "ModelLayout",
    "NeuronDeletion",
    "ParameterSnapshot",
    "Perturbation",
    "RandomDeletion",
    "SweepCsvWriter",
    "SweepGrid",
    "SweepRow",
    "SweepSubject",
    "TargetSpec",
    "make_generator",
    "make_perturbation",
    "mean_ci",
    "perturbed",
    "read_sweep_csv",
    "register",
    "run_sweep",
    "select_targets",
    "summarize",
    "trial_seed",
    "write_summary_csv",
]
