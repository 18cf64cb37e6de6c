"""Coverage of the per-level 95 % intervals against known truths (issue #27), and the table of ``docs/intervals.md``.

    python bench/coverage.py [--replicates 2000] [--studies 300]   # measure; prints ``name: value`` lines
    python bench/record.py coverage                                   # the same, kept in bench/results/coverage.txt
    python bench/coverage_table.py                                    # the tables of docs/intervals.md from it

Three parts, every interval made by the toolkit's own code (``cognitive_reserve.intervals``):

- fixed counts: for each toy case of ``tests/helpers/coverage_cases.py`` (closed-form or Monte Carlo truths)
  and 3, 5, 10, 20 and 50 trials, ``--replicates`` levels of seeded trials; per case and count the share of
  levels with an interval (not flagged), the share of those covering the truth and with the truth above them,
  what the bootstrap-t would have covered where a flag withholds it, and what the Student-t interval the
  toolkit printed before would have covered;
- the miss risk: for each deletion case (its level the per-trial probability ``p`` that a weight is deleted) and
  each candidate ``MISS_RISKS``, the count ``trials_needed(p, risk)`` and the bootstrap-t's coverage there: the
  measurement behind ``intervals.MISS_RISK``;
- the adaptive rule (``AdaptiveTrials`` with its defaults, ``max`` 50), at a relative target that a 20-trial
  interval reaches on average, against the rule before (``min`` 3, Student t);
- ``eval_fraction``: ``--studies`` sweeps (``run_sweep``) of the subsampled toy of
  ``tests/helpers/unit_regression.py`` (MSE under weight noise, σ = 0.1, 0.3, 1.0; a closed form), with 10
  trials or the adaptive rule and ``eval_fraction`` 1.0, 0.2 and ``auto``.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from common import figure
from scipy import stats

from cognitive_reserve import SweepGrid, run_sweep, summarize
from cognitive_reserve.adaptive import DEFAULT_MIN, AdaptiveTrials
from cognitive_reserve.intervals import HONEST_FLAGS, NO_INTERVAL, bootstrap_t, intervals, trials_needed
from cognitive_reserve.metric_ranges import metric_range
from tests.helpers.coverage_cases import Case, adaptive_stops, cases
from tests.helpers.unit_regression import ITEMS, Regression

COUNTS = (3, 5, 10, 20, 50)
#: Candidate chances that every trial of a level misses a given weight (``intervals.MISS_RISK`` is one of them).
MISS_RISKS = (0.05, 0.04, 0.02, 0.01)
#: The adaptive rule's target: the relative half-width an interval of this many trials has on average.
TARGET_TRIALS = 20
MAX_TRIALS = 50
#: The rule's ``min``: the default, and the smaller one it replaced.
ADAPTIVE_MINS = (DEFAULT_MIN, 10)
FRACTION_LEVELS = [0.1, 0.3, 1.0]
FRACTION_RULES = {"10": 10, "adaptive": {"ci_half_width": 0.3, "relative": True, "max": MAX_TRIALS}}


def student_t(values: np.ndarray, bounds: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The interval the toolkit printed before: Student t over the trials, clipped to the metric's range."""
    n = values.shape[1]
    half = stats.t.ppf(0.975, n - 1) * values.std(axis=1, ddof=1) / np.sqrt(n)
    mean = values.mean(axis=1)
    return np.maximum(mean - half, bounds[0]), np.minimum(mean + half, bounds[1])


def shares(truth: float, low: np.ndarray, high: np.ndarray, reported: np.ndarray) -> tuple[float, float, float]:
    """(share reported, share of those covering the truth, share of those with the truth above them)."""
    count = int(reported.sum())
    if count == 0:
        return 0.0, float("nan"), float("nan")
    low, high = low[reported], high[reported]
    return count / len(reported), float(np.mean((low <= truth) & (truth <= high))), float(np.mean(high < truth))


def fixed_counts(case: Case, replicates: int, generator: np.random.Generator) -> None:
    bounds = metric_range(case.metric)
    for n in COUNTS:
        values = case.draw((replicates, n), generator)
        found = intervals(values, bounds, generator, hit_probability=case.hit_probability)
        reported, covered, above = shares(case.truth, found.low, found.high, np.isin(found.flag, HONEST_FLAGS))
        before = shares(case.truth, *student_t(values, bounds), np.ones(replicates, bool))[1]
        withheld = (found.method == NO_INTERVAL) & np.isfinite(values).all(axis=1)
        if withheld.any():  # what the bootstrap-t would have covered where the flags withhold it
            low, high = bootstrap_t(values[withheld], generator)
            low, high = np.maximum(low, bounds[0]), np.minimum(high, bounds[1])
            figure(f"{case.name}_{n}_withheld_coverage", shares(case.truth, low, high, np.ones(len(low), bool))[1])
        figure(f"{case.name}_{n}_reported", reported, ".3f")
        figure(f"{case.name}_{n}_coverage", covered, ".3f")
        figure(f"{case.name}_{n}_above", above, ".3f")
        figure(f"{case.name}_{n}_student_t", before, ".3f")


def miss_risks(case: Case, replicates: int, generator: np.random.Generator) -> None:
    """For a case whose level is a hit probability: the coverage of its intervals at the count each candidate miss
    risk asks for, were that risk the toolkit's (``intervals`` not told the hit probability: no rare-events flag)."""
    for risk in MISS_RISKS:
        n = trials_needed(case.hit_probability, risk)
        values = case.draw((replicates, n), generator)
        found = intervals(values, metric_range(case.metric), generator)
        reported, covered, _ = shares(case.truth, found.low, found.high, np.isin(found.flag, HONEST_FLAGS))
        figure(f"miss_{case.name}_{risk}_trials", n, "d")
        figure(f"miss_{case.name}_{risk}_reported", reported, ".3f")
        figure(f"miss_{case.name}_{risk}_coverage", covered, ".4f")


def adaptive_target(case: Case, generator: np.random.Generator) -> float:
    """The relative half-width a ``TARGET_TRIALS``-trial interval has on average (from the true spread)."""
    spread = float(np.std(case.draw((20_000,), generator), ddof=1))
    return float(stats.t.ppf(0.975, TARGET_TRIALS - 1) * spread / np.sqrt(TARGET_TRIALS) / abs(case.truth))


def adaptive(case: Case, replicates: int, generator: np.random.Generator) -> None:
    """The rule as ``AdaptiveTrials`` applies it (``adaptive_stops``), with the default ``min`` and a smaller one."""
    target = adaptive_target(case, generator)
    bounds = metric_range(case.metric)
    values = case.draw((replicates, MAX_TRIALS), generator)
    figure(f"adaptive_{case.name}_target", target, ".3g")
    for least in ADAPTIVE_MINS:
        rule = AdaptiveTrials(ci_half_width=target, relative=True, min=least, max=MAX_TRIALS)
        stops = adaptive_stops(values, bounds, rule, generator, case.hit_probability)
        reported, covered, above = shares(case.truth, stops.low, stops.high, stops.honest)
        name = f"adaptive_{case.name}_min{least}"
        figure(f"{name}_reported", reported, ".3f")
        figure(f"{name}_coverage", covered, ".3f")
        figure(f"{name}_above", above, ".3f")
        figure(f"{name}_trials", stops.trials.mean(), ".1f")
        figure(f"{name}_at_max", np.mean(stops.trials == rule.max), ".3f")
    old_covered, old_trials = adaptive_before(case.truth, values, target, bounds)
    figure(f"adaptive_{case.name}_before_coverage", old_covered, ".3f")
    figure(f"adaptive_{case.name}_before_trials", old_trials, ".1f")


def adaptive_before(
    truth: float, values: np.ndarray, target: float, bounds: tuple[float, float], least: int = 3
) -> tuple[float, float]:
    """The rule before: from 3 trials, stop at the first Student-t interval within the target (same trials)."""
    replicates, most = values.shape
    covered, stop = np.zeros(replicates, bool), np.full(replicates, most)
    active = np.ones(replicates, bool)
    for n in range(least, most + 1):
        low, high = student_t(values[:, :n], bounds)
        done = active & (((high - low) / 2 <= target * np.abs(values[:, :n].mean(axis=1))) | (n == most))
        covered[done], stop[done] = (low[done] <= truth) & (truth <= high[done]), n
        active &= ~done
    return float(covered.mean()), float(stop.mean())


def subsampled(studies: int) -> None:
    """Coverage of ``eval_fraction`` sweeps of the unit toy, each study one sweep with its own base seed."""
    model = Regression()
    for rule_name, trials in FRACTION_RULES.items():
        for fraction in (1.0, 0.2, "auto"):
            grid = SweepGrid("gaussian_noise", FRACTION_LEVELS, trials, eval_fraction=fraction)
            truths, low, high, honest, counts, examples = [], [], [], [], [], []
            for study in range(studies):
                rows = run_sweep(model.subject(), [grid], seed=study)
                for s in summarize(rows):
                    truths.append(model.truth(s.level))
                    low.append(s.ci_low)
                    high.append(s.ci_high)
                    honest.append(s.flag in HONEST_FLAGS)
                    counts.append(s.n)
                scored = {(r.level, r.trial): r for r in rows}.values()
                examples += [r.eval_examples or ITEMS * len(model.x) for r in scored]
            truth, lows, highs, kept = np.array(truths), np.array(low), np.array(high), np.array(honest)
            name = f"fraction_{rule_name}_{fraction}"
            figure(f"{name}_reported", kept.mean(), ".3f")
            figure(f"{name}_coverage", np.mean(((lows <= truth) & (truth <= highs))[kept]), ".3f")
            figure(f"{name}_above", np.mean((highs < truth)[kept]), ".3f")
            figure(f"{name}_trials", statistics.mean(counts), ".1f")
            figure(f"{name}_examples_per_trial", statistics.mean(examples), ".1f")


def measure(replicates: int, studies: int) -> None:
    figure("replicates", replicates, "d")
    figure("studies", studies, "d")
    for index, case in enumerate(cases()):
        generator = np.random.default_rng(index)
        figure(f"{case.name}_what", case.what)
        figure(f"{case.name}_truth", case.truth, ".6g")
        fixed_counts(case, replicates, generator)
        adaptive(case, replicates, generator)
        if case.hit_probability is not None:
            figure(f"{case.name}_hit_probability", case.hit_probability, "g")
            miss_risks(case, replicates, generator)
    subsampled(studies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=2000, help="levels per case and trial count")
    parser.add_argument("--studies", type=int, default=300, help="sweeps per eval_fraction mode (3 levels each)")
    args = parser.parse_args()
    measure(args.replicates, args.studies)


if __name__ == "__main__":
    main()
