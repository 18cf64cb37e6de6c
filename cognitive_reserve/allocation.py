"""How many evaluation units a subsampled trial scores: fixed, or chosen per level from its trials so far.

A trial's estimate is its full-data value plus subset noise. Over the trials of a level its variance is

    σ²(n) = σ_B² + K · (1/n − 1/N)

with ``σ_B²`` the variance between trials (which mask, which noise) and ``K (1/n − 1/N)`` the variance
of the subset noise with ``n`` of the ``N`` units (two-stage sampling). Each ``auto`` trial measures its
own subset noise (a jackknife); the trials so far give ``K`` (the mean of noise / (1/n − 1/N)) and
``σ_B²`` (the variance of the values minus the mean noise, at least 0). Then, per metric:

- adaptive ``trials`` (a target half-width h): the level needs ``T(n) = σ²(n) / (h / t)²`` trials
  (``t``: the 95 % Student quantile at ``plan`` trials, ``plan = max(min, max // 2)``, which leaves half
  the trial budget for misestimates). ``n`` is the one with the fewest evaluated units ``max(T(n), min) · n``
  among those with ``T(n) ≤ plan`` (all data when none);
- a fixed trial count: the smallest ``n`` whose subset noise adds at most ``NOISE_SHARE`` of ``σ_B²``
  (the interval then is at most about 5 % wider than with all the data).

The level takes the largest ``n`` over its metrics. Its first trials (``min`` of an adaptive rule, else
``PILOT_TRIALS``) are pilots of ``PILOT_UNITS`` units. A decision depends only on the measured values,
so a resumed sweep and every DDP process take the same ones.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as scipy_stats

from cognitive_reserve.adaptive import AdaptiveTrials
from cognitive_reserve.stats import CONFIDENCE

#: Units of an ``auto`` level's pilot trials (enough for a jackknife with 7 degrees of freedom).
PILOT_UNITS = 8
#: Pilot trials of an ``auto`` level with a fixed trial count.
PILOT_TRIALS = 3
#: The fewest units of an ``auto`` trial (its subset noise needs two to be measured).
MIN_UNITS = 2
#: ``auto`` with a fixed trial count: subset noise may add this share of the between-trial variance.
NOISE_SHARE = 0.1


@dataclass(frozen=True)
class TrialRecord:
    """What one subsampled trial measured: its units, metric estimates and their subset-noise variances."""

    units: int
    values: Mapping[str, float]
    noise: Mapping[str, float]


@dataclass(frozen=True)
class Plan:
    """The units of a level's next trial and, for an adaptive rule, the trials the level should get at least."""

    units: int
    least_trials: int = 0


def pilot_trials(trials: int | AdaptiveTrials) -> int:
    """How many first trials of an ``auto`` level are pilots."""
    return trials.min if isinstance(trials, AdaptiveTrials) else PILOT_TRIALS


def plan(
    fraction: float | Literal["auto"],
    trials: int | AdaptiveTrials,
    previous: Sequence[TrialRecord],
    total_units: int,
) -> Plan:
    """The plan of the level's next trial, given the records of its earlier trials (in trial order)."""
    if fraction != "auto":
        return Plan(min(total_units, max(1, math.ceil(fraction * total_units))))
    if len(previous) < pilot_trials(trials) or total_units <= MIN_UNITS:
        return Plan(min(total_units, PILOT_UNITS))
    metrics = previous[0].values if not isinstance(trials, AdaptiveTrials) or trials.metric is None else [trials.metric]
    plans = [_plan_for(metric, trials, previous, total_units) for metric in metrics]
    return Plan(max(p.units for p in plans), max(p.least_trials for p in plans))


def variance_parts(metric: str, previous: Sequence[TrialRecord], total_units: int) -> tuple[float, float] | None:
    """``(σ_B², K)`` of a metric from its trials (None while they do not tell: fewer than two finite values)."""
    pairs = [(r.values[metric], r.noise[metric], r.units) for r in previous if metric in r.values]
    pairs = [(v, noise, n) for v, noise, n in pairs if math.isfinite(v) and math.isfinite(noise)]
    if len(pairs) < 2:
        return None
    values = np.array([v for v, _, _ in pairs])
    noises = np.array([noise for _, noise, _ in pairs])
    scaled = [noise / (1 / n - 1 / total_units) for _, noise, n in pairs if n < total_units]
    between = max(0.0, float(values.var(ddof=1)) - float(noises.mean()))
    return between, float(np.mean(scaled)) if scaled else 0.0


@functools.cache
def _quantile(degrees_of_freedom: int) -> float:
    return float(scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, df=degrees_of_freedom))


def _plan_for(metric: str, trials: int | AdaptiveTrials, previous: Sequence[TrialRecord], total_units: int) -> Plan:
    parts = variance_parts(metric, previous, total_units)
    if parts is None:
        return Plan(total_units)
    between, k = parts
    sizes = np.arange(MIN_UNITS, total_units + 1)
    noise = k * (1 / sizes - 1 / total_units)
    if not isinstance(trials, AdaptiveTrials):
        enough = sizes[noise <= NOISE_SHARE * between]
        return Plan(int(enough[0]) if len(enough) else total_units)
    finite = [r.values[metric] for r in previous if math.isfinite(r.values.get(metric, math.nan))]
    scale = abs(float(np.mean(finite))) if trials.relative else 1.0
    most = max(trials.min, trials.max // 2)
    target = (trials.ci_half_width * scale / _quantile(most - 1)) ** 2
    if target <= 0:
        return Plan(total_units)
    needed = (between + noise) / target
    cost = np.maximum(needed, trials.min) * sizes
    feasible = needed <= most
    if not feasible.any():
        return Plan(total_units)
    best = np.argmin(cost[feasible])
    return Plan(int(sizes[feasible][best]), math.ceil(needed[feasible][best]))
