"""Framework-free core: perturb weights in place, sweep seeded trials, summarise, compare, theory.

Depends on torch, numpy, scipy and matplotlib only — never on Lightning.
"""

from cognitive_reserve.adaptive import AdaptiveTrials
from cognitive_reserve.errors import ConfigError
from cognitive_reserve.io import SweepCsvWriter, read_sweep_csv, write_summary_csv
from cognitive_reserve.perturbations import (
    PERTURBATIONS,
    GaussianNoise,
    MagnitudePruning,
    Perturbation,
    RandomDeletion,
    make_perturbation,
)
from cognitive_reserve.restore import ParameterSnapshot, perturbed
from cognitive_reserve.seeding import make_generator, trial_seed
from cognitive_reserve.stats import LevelSummary, mean_ci, summarize
from cognitive_reserve.subject import SweepSubject
from cognitive_reserve.sweep import CSV_COLUMNS, SweepGrid, SweepRow, run_sweep
from cognitive_reserve.targets import TargetSpec, select_targets

__all__ = [
    "CSV_COLUMNS",
    "PERTURBATIONS",
    "AdaptiveTrials",
    "ConfigError",
    "GaussianNoise",
    "LevelSummary",
    "MagnitudePruning",
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
    "run_sweep",
    "select_targets",
    "summarize",
    "trial_seed",
    "write_summary_csv",
]
