"""Mean and 95% confidence interval per level, from the tidy rows of a sweep.

The interval is ``cognitive_reserve.intervals.level_interval`` over the level's trials: a studentized
bootstrap clipped to the metric's range (``metric_range``), seeded by the trials' own seeds; a row says how
it was made (``method``) and, where the trials cannot give an honest 95 % interval, why (``flag``: no
interval below 10 trials, nor where the trials are too few to see a rare damaged unit; a Clopper–Pearson bound
when every trial gave the same value).
``mean_ci`` is the plain Student-t interval, for means over draws that are not a sweep's trials.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from cognitive_reserve.intervals import (
    ALL_EQUAL,
    CONFIDENCE,
    FEW_TRIALS,
    HONEST_TRIALS,
    RARE_EVENTS,
    interval_seed,
    level_interval,
    trials_needed,
)
from cognitive_reserve.metric_ranges import UNBOUNDED, metric_range
from cognitive_reserve.perturbations import deterministic_level, hit_probability
from cognitive_reserve.rows import SweepRow


@dataclass(frozen=True)
class LevelSummary:
    """Statistics of one (model, perturbation, level, metric) cell over its trials.

    Non-finite trial values (a diverged loss, say) are counted in ``n_nonfinite`` and make the
    mean non-finite: they are marked, never dropped. ``ci_low``/``ci_high`` are NaN where the level has no
    honest interval (``flag``); ``method``, ``flag`` and ``n_tied`` are those of ``intervals.Interval``.
    """

    model: str
    num_tasks: int | None
    perturbation: str
    level: float
    metric: str
    n: int
    n_nonfinite: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    expected: float | None
    method: str = ""
    flag: str = ""
    n_tied: int = 1

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> LevelSummary:
        """A summary from its plain values (``dataclasses.asdict``), also one kept before a column of
        ``LATER_SUMMARY_COLUMNS`` existed (a checkpoint's history): that column then reads as its default."""
        return cls(**{name: record.get(name, LATER_SUMMARY_COLUMNS.get(name)) for name in SUMMARY_COLUMNS})


SUMMARY_COLUMNS = tuple(LevelSummary.__dataclass_fields__)
#: Columns appended after the first release, with the value a summary kept before them reads as (the intervals
#: were Student t then; 0: the ties were not counted).
LATER_SUMMARY_COLUMNS = {"method": "student-t", "flag": "", "n_tied": 0}


def mean_ci(
    values: Sequence[float], confidence: float = CONFIDENCE, bounds: tuple[float, float] = UNBOUNDED
) -> tuple[float, float, float, float]:
    """(mean, sample std, CI low, CI high) with a Student-t interval clipped to ``bounds`` (the values'
    range, e.g. (0, 1) for an accuracy); zero width for one value."""
    array = np.asarray(values, dtype=np.float64)
    mean = float(array.mean())
    if array.size < 2 or not np.isfinite(array).all():
        return mean, 0.0 if array.size < 2 else math.nan, mean, mean
    std = float(array.std(ddof=1))
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, df=array.size - 1)) * std / math.sqrt(array.size)
    lowest, highest = bounds
    return mean, std, max(mean - half, lowest), min(mean + half, highest)


def summarize(rows: Iterable[SweepRow], confidence: float = CONFIDENCE) -> list[LevelSummary]:
    """One ``LevelSummary`` per (model, num_tasks, perturbation, level, metric), in first-seen order; the
    interval of each is ``level_interval`` of its trials, in trial order, within its metric's range, knowing
    whether the level is the per-trial probability that a unit is damaged (``hit_probability``)."""
    groups: dict[tuple, list[SweepRow]] = defaultdict(list)
    for row in rows:
        groups[(row.model, row.num_tasks, row.perturbation, row.level, row.metric)].append(row)
    summaries = []
    for (model, num_tasks, perturbation, level, metric), group in groups.items():
        group = sorted(group, key=lambda row: row.trial)
        values = [row.value for row in group]
        interval = level_interval(
            values,
            metric_range(metric),
            interval_seed(metric, [row.seed for row in group]),
            deterministic=deterministic_level(perturbation, level),
            hit_probability=hit_probability(perturbation, level),
            confidence=confidence,
        )
        summaries.append(
            LevelSummary(
                model=model,
                num_tasks=num_tasks,
                perturbation=perturbation,
                level=level,
                metric=metric,
                n=len(values),
                n_nonfinite=sum(not math.isfinite(v) for v in values),
                mean=float(np.mean(values)),
                std=_std(values),
                ci_low=interval.low,
                ci_high=interval.high,
                expected=group[0].expected,
                method=interval.method,
                flag=interval.flag,
                n_tied=interval.n_tied,
            )
        )
    return summaries


def _std(values: Sequence[float]) -> float:
    """The sample standard deviation: 0 for one value, NaN when a value is not finite."""
    if len(values) < 2:
        return 0.0
    return float(np.std(values, ddof=1)) if all(map(math.isfinite, values)) else math.nan


def more_trials_needed(summaries: Iterable[LevelSummary]) -> str | None:
    """The one warning of a sweep whose levels need more trials for an honest interval (None: none does). It
    names the reasons and the trials a rare-events level needs, which depend on the grid only, so a per-epoch
    sweep in the same state does not repeat it."""
    summaries = list(summaries)
    rare = sorted({(s.perturbation, s.level) for s in summaries if s.flag == RARE_EVENTS})
    needs = ", ".join(f"{name} p={level:g} needs ≥ {trials_needed(level)} trials" for name, level in rare)
    reasons = {
        FEW_TRIALS: f"fewer than {HONEST_TRIALS} trials: no interval",
        RARE_EVENTS: f"too few trials to see a rare damaged unit, no interval: {needs}",
        ALL_EQUAL: "the same value in every trial: a Clopper–Pearson bound, as wide as the trial count allows",
    }
    found = [reason for flag, reason in reasons.items() if any(s.flag == flag for s in summaries)]
    if not found:
        return None
    return (
        f"levels of this sweep need more trials for an honest 95% interval ({'; '.join(found)}); "
        "their flag column of the summary CSV says which (docs/intervals.md)"
    )


Curve = tuple[str, str, str]  # (model, perturbation, metric)


def curves(summaries: Iterable[LevelSummary]) -> dict[Curve, list[LevelSummary]]:
    """``{(model, perturbation, metric): summaries sorted by level}`` in first-seen order."""
    grouped: dict[Curve, list[LevelSummary]] = defaultdict(list)
    for s in summaries:
        grouped[(s.model, s.perturbation, s.metric)].append(s)
    return {curve: sorted(points, key=lambda s: s.level) for curve, points in grouped.items()}


def area_under_curve(points: Sequence[LevelSummary]) -> float:
    """Trapezoid area of the mean curve divided by the level range (a level-averaged metric)."""
    points = sorted(points, key=lambda s: s.level)
    if len(points) < 2:
        return points[0].mean
    area = sum((b.level - a.level) * (a.mean + b.mean) / 2 for a, b in itertools.pairwise(points))
    span = points[-1].level - points[0].level
    return area / span if span > 0 and math.isfinite(area) else math.inf


def clean_value(points: Sequence[LevelSummary]) -> float | None:
    """Mean metric of the undamaged model (the level-0 cell of a curve), None when the grid has no 0."""
    return next((s.mean for s in points if s.level == 0), None)
