"""Framework-free core: perturb weights in place, sweep seeded trials, summarise, compare, theory.

Depends on torch, numpy, scipy and matplotlib only — never on Lightning.
"""

from robustness.adaptive import AdaptiveTrials
from robustness.errors import ConfigError
from robustness.io import SweepCsvWriter, read_sweep_csv, write_summary_csv
from robustness.perturbations import (
    PERTURBATIONS,
    GaussianNoise,
    MagnitudePruning,
    Perturbation,
    RandomDeletion,
    make_perturbation,
)
from robustness.restore import ParameterSnapshot, perturbed
from robustness.seeding import make_generator, trial_seed
from robustness.stats import LevelSummary, mean_ci, summarize
from robustness.sweep import CSV_COLUMNS, SweepGrid, SweepRow, SweepSubject, run_sweep
from robustness.targets import TargetSpec, select_targets

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
