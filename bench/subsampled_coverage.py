"""Honest intervals of subsampled trials: coverage of the 95 % interval over many studies with a known truth.

    python bench/subsampled_coverage.py [--studies 300]

The subject is the toy of ``tests/helpers/unit_regression.py``: a linear model scored by MSE on 60 units of 5
items of unequal scale, damaged by Gaussian noise on its weights (levels 0.1, 0.3, 1.0), whose expected
full-data MSE has a closed form. Each study is one sweep with its own base seed; a level's interval covers
when the truth lies inside it. Modes: a fixed 10 trials, and the adaptive rule ``{ci_half_width: 0.3,
relative: true, min: 3, max: 50}``, each with ``eval_fraction`` 1.0 (all the data), 0.2 and ``auto``.

Figures per mode: ``coverage_<trials>_<fraction>`` (share of covering intervals over levels and studies),
``coverage_low_<...>`` (the truth above the interval: the mean underestimated), ``trials_<...>`` (mean trials
per level) and ``examples_per_trial_<...>`` (mean examples a trial scored; all the data: 300).
"""

from __future__ import annotations

import argparse
import statistics

from common import figure

from cognitive_reserve import SweepGrid, run_sweep, summarize
from tests.helpers.unit_regression import ITEMS, Regression

LEVELS = [0.1, 0.3, 1.0]
RULES = {"10": 10, "adaptive": {"ci_half_width": 0.3, "relative": True, "min": 3, "max": 50}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=300)
    args = parser.parse_args()
    model = Regression()
    figure("studies", args.studies, "d")
    for rule_name, trials in RULES.items():
        for fraction in (1.0, 0.2, "auto"):
            grid = SweepGrid("gaussian_noise", LEVELS, trials, eval_fraction=fraction)
            covered, below, counts, examples = 0, 0, [], []
            for study in range(args.studies):
                rows = run_sweep(model.subject(), [grid], seed=study)
                for summary in summarize(rows):
                    truth = model.truth(summary.level)
                    covered += summary.ci_low <= truth <= summary.ci_high
                    below += summary.ci_high < truth
                    counts.append(summary.n)
                trials_rows = {(r.level, r.trial): r for r in rows}.values()
                examples += [r.eval_examples or ITEMS * len(model.x) for r in trials_rows]
            name = f"{rule_name}_{fraction}"
            figure(f"coverage_{name}", covered / len(counts), ".3f")
            figure(f"coverage_low_{name}", below / len(counts), ".3f")
            figure(f"trials_{name}", statistics.mean(counts), ".1f")
            figure(f"examples_per_trial_{name}", statistics.mean(examples), ".1f")


if __name__ == "__main__":
    main()
