"""``PerturbationSweep`` takes an adaptive ``trials`` rule from its config with no callback code of its own."""

from __future__ import annotations

import pytest

from callbacks.perturbation_sweep import parse_grids
from cognitive_reserve.adaptive import AdaptiveTrials
from cognitive_reserve.errors import ConfigError


def test_perturbation_sweep_config_accepts_an_adaptive_rule():
    (grid,) = parse_grids(
        "PerturbationSweep.perturbations",
        {"gaussian_noise": {"levels": [0.1], "trials": {"ci_half_width": 0.5, "max": 30}}},
    )
    assert grid.trials == AdaptiveTrials(ci_half_width=0.5, relative=False, min=20, max=30)  # min: the default


def test_perturbation_sweep_config_errors_name_the_rule_field():
    with pytest.raises(ConfigError) as caught:
        parse_grids(
            "PerturbationSweep.perturbations",
            {"random_deletion": {"levels": [0.1], "trials": {"ci_half_width": 0.5, "min": 0}}},
        )
    assert str(caught.value) == "PerturbationSweep.perturbations.random_deletion.trials.min=0: must be an integer >= 2"
