"""The 95 % interval of a level's mean over its trials (one trained model): method, flags, seeds.

A level's trials are independent draws of the damage (masks, noise) applied to one trained model; the
interval covers the mean over such draws, nothing else (not another training run). Damage metrics are
skewed (a squared error under weight noise is χ²-like) or sit at a bound (an accuracy of 1.0 in most
trials), where Student t undercovers, on the side that understates the damage. What this module reports,
checked against known truths by ``bench/coverage.py`` (table in ``docs/intervals.md``):

- ``bootstrap-t``: the studentized bootstrap, ``REPLICATES`` resamples of the trials, clipped to the
  metric's range. A resample whose trials are all equal has no standard error; when its mean differs from
  the level's, its t is ±∞, so a level whose trials are mostly one value gets an unbounded side: the data
  cannot bound it there. Honest from ``HONEST_TRIALS`` trials.
- ``clopper-pearson`` (flag ``all_equal``): every trial gave the same value ``v``. With 95 % confidence at
  most ``q = 1 − 0.05^(1/n)`` of all trials differ from ``v`` (Clopper–Pearson for 0 of n, "rule of three");
  the mean then lies within ``v − q·(v − lowest)`` and ``v + q·(highest − v)`` of the metric's range.
- ``exact``: the one trial of a deterministic level (level 0, magnitude pruning) is the value itself.
- ``none``: no interval (NaN ends), flagged ``few_trials`` (fewer than ``HONEST_TRIALS``), ``rare_events`` (fewer
  than ``trials_needed``), or ``nonfinite`` (a trial gave ±inf: the interval is the mean itself).

``rare_events``: where the level is the per-trial probability ``p`` that a given unit is damaged (random
deletion, say), a unit that matters much is missed by all ``n`` trials with probability ``(1 − p)^n``; the
level's mean then rests on an event its trials never show, and every interval from them sits below the truth.
A level whose trials differ gets no interval while ``(1 − p)^n > MISS_RISK``.

Resampling is seeded from the level's own trial seeds and the metric (``interval_seed``), which the sweep
derives from its base seed and the cell: the same trials give the same interval, bit for bit, in every run.
``intervals`` computes many levels at once (the coverage bench and the tests); ``level_interval`` is one
level, the same code.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from cognitive_reserve.metric_ranges import UNBOUNDED

CONFIDENCE = 0.95
#: Bootstrap resamples per level: the 2.5 % and 97.5 % points are their 25th and 975th t values.
REPLICATES = 999
#: The fewest trials of a level with an honest interval (``docs/intervals.md``: the coverage table).
HONEST_TRIALS = 10
#: The largest chance that every trial of a level misses a given unit for which it still gets an interval
#: (``docs/intervals.md``: the largest at which the coverage table's deletion cases cover 95 %).
MISS_RISK = 0.04

BOOTSTRAP_T, CLOPPER_PEARSON, EXACT, NO_INTERVAL = "bootstrap-t", "clopper-pearson", "exact", "none"
FEW_TRIALS, RARE_EVENTS, ALL_EQUAL, NONFINITE = "few_trials", "rare_events", "all_equal", "nonfinite"
#: Flags whose interval is honest (it covers at the nominal rate, or more).
HONEST_FLAGS = ("", ALL_EQUAL)
#: Bootstrap work per chunk of levels (resamples × trials), to bound the memory of ``intervals``.
_CHUNK = 4_000_000


@dataclass(frozen=True)
class Interval:
    """One level's interval: its ends (NaN when there is none), how it was made and why it is flagged."""

    low: float
    high: float
    method: str
    flag: str
    #: Trials at the level's most common value (``n`` when every trial gave the same value).
    n_tied: int

    @property
    def honest(self) -> bool:
        """Whether the interval earns its confidence (``docs/intervals.md``)."""
        return self.flag in HONEST_FLAGS


@dataclass(frozen=True)
class Intervals:
    """The intervals of many levels with the same number of trials (one entry per row of the values)."""

    low: np.ndarray
    high: np.ndarray
    method: np.ndarray
    flag: np.ndarray
    n_tied: np.ndarray

    def __getitem__(self, row: int) -> Interval:
        low, high, method, flag = self.low[row], self.high[row], self.method[row], self.flag[row]
        return Interval(float(low), float(high), str(method), str(flag), int(self.n_tied[row]))


def interval_seed(metric: str, trial_seeds: Sequence[int]) -> int:
    """The resampling seed of a level: a hash of the metric and the trials' own seeds (in trial order)."""
    key = f"{metric}/{','.join(map(str, trial_seeds))}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1


def trials_needed(hit_probability: float | None, miss_risk: float = MISS_RISK) -> int:
    """The fewest trials of a level with an interval: ``HONEST_TRIALS``, or more where the level damages each unit
    with ``hit_probability`` per trial: enough that all trials miss a given unit with at most ``miss_risk``."""
    if hit_probability is None or not 0 < hit_probability < 1:
        return HONEST_TRIALS
    return max(HONEST_TRIALS, math.ceil(math.log(miss_risk) / math.log1p(-hit_probability)))


def level_interval(
    values: Sequence[float],
    bounds: tuple[float, float] = UNBOUNDED,
    seed: int = 0,
    *,
    deterministic: bool = False,
    hit_probability: float | None = None,
    confidence: float = CONFIDENCE,
) -> Interval:
    """The interval of the mean of one level's trial ``values`` (see the module docstring), within ``bounds``
    (the metric's range); ``seed`` seeds the resampling; ``deterministic``: the level has no randomness;
    ``hit_probability``: the per-trial probability that the level damages a given unit, where it is one."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 1 and deterministic and math.isfinite(array[0]):
        return Interval(float(array[0]), float(array[0]), EXACT, "", 1)
    generator = np.random.default_rng(seed)
    return intervals(array[None, :], bounds, generator, hit_probability=hit_probability, confidence=confidence)[0]


def intervals(
    values: ArrayLike,
    bounds: tuple[float, float] = UNBOUNDED,
    generator: np.random.Generator | None = None,
    *,
    hit_probability: float | None = None,
    confidence: float = CONFIDENCE,
    replicates: int = REPLICATES,
) -> Intervals:
    """The intervals of many levels at once: ``values`` is levels × trials, all levels of one ``hit_probability``."""
    x = np.atleast_2d(np.asarray(values, dtype=np.float64))
    levels, n = x.shape
    generator = generator if generator is not None else np.random.default_rng(0)
    ties = tied_counts(x)
    finite = np.isfinite(x).all(axis=1)
    flag = np.full(levels, "", dtype=object)
    flag[n < HONEST_TRIALS] = FEW_TRIALS
    needed = trials_needed(hit_probability)
    flag[(n < needed) & (needed > HONEST_TRIALS) & (ties < n)] = RARE_EVENTS
    flag[(ties == n) & (n > 1)] = ALL_EQUAL
    flag[~finite] = NONFINITE
    method = np.full(levels, NO_INTERVAL, dtype=object)
    low, high = np.full(levels, math.nan), np.full(levels, math.nan)
    mean = x.mean(axis=1)
    low[~finite], high[~finite] = mean[~finite], mean[~finite]
    equal = flag == ALL_EQUAL
    low[equal], high[equal] = all_equal_bounds(x[equal, 0], n, bounds, confidence)
    method[equal] = CLOPPER_PEARSON
    spread = flag == ""
    if spread.any():
        low[spread], high[spread] = bootstrap_t(x[spread], generator, confidence, replicates)
        method[spread] = BOOTSTRAP_T
    lowest, highest = bounds
    with np.errstate(invalid="ignore"):
        low, high = np.where(finite, np.maximum(low, lowest), low), np.where(finite, np.minimum(high, highest), high)
    return Intervals(low, high, method, flag, ties)


def tied_counts(values: np.ndarray) -> np.ndarray:
    """Per row, how many values equal the row's most common value."""
    return (values[:, :, None] == values[:, None, :]).sum(axis=2).max(axis=1)


def all_equal_bounds(
    value: np.ndarray, n: int, bounds: tuple[float, float], confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray]:
    """The interval of a mean whose ``n`` trials all gave ``value``: at most ``q = 1 − (1 − confidence)^(1/n)``
    of trials differ (Clopper–Pearson upper limit for 0 of n, about 3/n), and they lie within ``bounds``."""
    share = 1.0 - (1.0 - confidence) ** (1.0 / n)
    lowest, highest = bounds
    with np.errstate(invalid="ignore"):
        low = np.where(value <= lowest, value, value - share * (value - lowest))
        high = np.where(value >= highest, value, value + share * (highest - value))
    return low, high


def bootstrap_t(
    values: np.ndarray, generator: np.random.Generator, confidence: float = CONFIDENCE, replicates: int = REPLICATES
) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed studentized bootstrap intervals of the row means of ``values`` (levels × trials, n ≥ 2).

    Each level gets ``replicates`` resamples of its trials; ``t* = (mean* − mean) / se*``; a resample with no
    spread has ``t* = ±∞`` (0 when its mean is the level's). The interval is ``mean − t*₍ᵤ₎·se`` to
    ``mean − t*₍ₗ₎·se`` with the ``(replicates + 1)·α/2``-th smallest and largest ``t*``.
    """
    levels, n = values.shape
    mean = values.mean(axis=1)
    se = values.std(axis=1, ddof=1) / math.sqrt(n)
    tail = round((replicates + 1) * (1 - confidence) / 2)
    lower_t, upper_t = np.empty(levels), np.empty(levels)
    chunk = max(1, _CHUNK // (replicates * n))
    for start in range(0, levels, chunk):
        rows = slice(start, start + chunk)
        part = values[rows]
        picks = generator.integers(0, n, size=(len(part), replicates, n), dtype=np.int16 if n < 2**15 else np.int64)
        resampled = np.take_along_axis(part[:, None, :], picks, axis=2)
        shift = resampled.mean(axis=2) - mean[rows, None]
        spread = resampled.std(axis=2, ddof=1) / math.sqrt(n)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(spread > 0, shift / spread, np.sign(shift) * np.inf)
        t = np.where((spread > 0) | (shift != 0), t, 0.0)
        t.sort(axis=1)
        lower_t[rows], upper_t[rows] = t[:, tail - 1], t[:, replicates - tail]
    with np.errstate(invalid="ignore"):
        return mean - upper_t * se, mean - lower_t * se
