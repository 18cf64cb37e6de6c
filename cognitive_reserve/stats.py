"""Mean and 95% confidence interval per level, from the tidy rows of a sweep.

The interval is Student t over the trials, clipped to the metric's range (``metric_range``): the mean of
a bounded metric lies in its range, so clipping removes only values it cannot take and the coverage of
the Student-t interval is unchanged (an accuracy band never reaches 1.4 when 3 trials are far apart).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from cognitive_reserve.metric_ranges import UNBOUNDED, metric_range
from cognitive_reserve.rows import SweepRow

CONFIDENCE = 0.95


@dataclass(frozen=True)
class LevelSummary:
    """Statistics of one (model, perturbation, level, metric) cell over its trials.

    Non-finite trial values (a diverged loss, say) are counted in ``n_nonfinite`` and make the
    mean non-finite: they are marked, never dropped.
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


SUMMARY_COLUMNS = tuple(LevelSummary.__dataclass_fields__)


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
    interval of each is clipped to its metric's range."""
    groups: dict[tuple, list[SweepRow]] = defaultdict(list)
    for row in rows:
        groups[(row.model, row.num_tasks, row.perturbation, row.level, row.metric)].append(row)
    summaries = []
    for (model, num_tasks, perturbation, level, metric), group in groups.items():
        values = [row.value for row in group]
        mean, std, low, high = mean_ci(values, confidence, metric_range(metric))
        summaries.append(
            LevelSummary(
                model=model,
                num_tasks=num_tasks,
                perturbation=perturbation,
                level=level,
                metric=metric,
                n=len(values),
                n_nonfinite=sum(not math.isfinite(v) for v in values),
                mean=mean,
                std=std,
                ci_low=low,
                ci_high=high,
                expected=group[0].expected,
            )
        )
    return summaries


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
