"""Cross-over between two models' sweeps: the damage level where model B starts to beat model A.

Each side is one sweep table, or several: the same config trained under several ``seed_everything``
values (training replicates), each swept over the same grid. At each level a side's value is the
mean over its tables of the mean over trials; the *advantage* of B is ``A − B`` (lower-is-better
metrics such as perplexity, bits per byte, MSE) or ``B − A`` (higher-is-better metrics such as
accuracy, F1, MCC). The cross-over is the first level where the advantage turns positive after
having been ≤ 0, located by linear interpolation between the two grid levels around the sign change.

Intervals are Student t (``cognitive_reserve.contrasts``): over training seeds with several tables per
side (the seed means, S − 1 degrees of freedom, Welch for a difference, or paired when the i-th tables
of both sides share a training seed), over trials with one table per side (they then say nothing about
another training run). The cross-over interval inverts the per-level test: it holds every level where
the advantage's interval contains 0, so it covers the true cross-over as often as the per-level interval
covers the advantage. When that set reaches an end of the grid the interval is open there (``±inf``:
the data cannot exclude a cross-over beyond it); open at both ends, the cross-over is *not identified*.

Over trials the per-level rule of the sweep summaries holds (``cognitive_reserve.intervals``): no interval from
fewer than ``trials_needed`` trials (``HONEST_TRIALS``, more at a deletion's small ``p``). When a random level
of either table has fewer, the cross-over is not identified (``flag`` ``few_trials``, ``method`` says so), and
only where the means cross is given. Over training seeds the unit is the seed: t over 2 or more seeds per side,
whatever their trials.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from cognitive_reserve.contrasts import (
    SideLevel,
    bound_text,
    contrast_moments,
    crossover_interval,
    method_name,
)
from cognitive_reserve.errors import ConfigError
from cognitive_reserve.intervals import FEW_TRIALS, trials_needed
from cognitive_reserve.metric_ranges import metric_range
from cognitive_reserve.metrics import Direction, metric_direction
from cognitive_reserve.perturbations import deterministic_level, hit_probability
from cognitive_reserve.sweep import SweepRow

Status = Literal["crossing", "none", "b_better_from_start"]

#: ``{level: {trial: (seed, value)}}``: one table's trials of one perturbation and metric.
TrialTable = dict[float, dict[int, tuple[int, float]]]


@dataclass(frozen=True)
class CrossOver:
    """Where B overtakes A for one (perturbation, metric), with its interval.

    ``status``: ``crossing`` (``level`` is set: the means cross), ``none`` (B's mean never better in the
    grid) or ``b_better_from_start`` (B's mean already better at the first level). ``ci_low``/``ci_high``:
    the levels where the advantage's interval contains 0; ``-inf``/``+inf`` where that set reaches the
    grid's first/last level; both ``+inf``: A better at every level (both ``-inf``: B), beyond chance.
    ``method``: how the per-level intervals were computed; ``n_seeds_a``/``n_seeds_b``: training replicates
    (tables) per side; above 1 the interval covers training-seed variance too. ``flag``: ``few_trials`` when one
    table per side has a random level of fewer trials than its interval needs (``trials_needed``: not identified).
    """

    perturbation: str
    metric: str
    model_a: str
    model_b: str
    direction: Direction
    status: Status
    level: float | None
    ci_low: float
    ci_high: float
    method: str
    paired_trials: bool
    paired_seeds: bool
    confidence: float
    levels: tuple[float, ...]
    advantage: tuple[float, ...]
    n_seeds_a: int = 1
    n_seeds_b: int = 1
    flag: str = ""
    #: The fields that say where B overtakes A and how well the data pin it down: the columns every cross-over
    #: table shares (``crossover.csv``, the W&B table).
    FINDING: ClassVar[tuple[str, ...]] = ("status", "level", "ci_low", "ci_high", "identified", "method")

    @property
    def replicated(self) -> bool:
        """Whether the interval covers training seeds (several tables per side)."""
        return self.n_seeds_a > 1

    @property
    def identified(self) -> bool:
        """Whether the data bound the cross-over: not open at both ends of the grid."""
        return not (self.ci_low == -math.inf and self.ci_high == math.inf)

    def interval_text(self) -> str:
        """``[0.18, 0.25]``, ``[0.18, > 0.4]``, or in words where the interval is no range of the grid."""
        low, high = self.ci_low, self.ci_high
        if low == high == math.inf:
            return f"{self.model_a} better at every level"
        if low == high == -math.inf:
            return f"{self.model_b} better at every level"
        if self.flag == FEW_TRIALS:
            return f"not identified ({self.method})"
        if not self.identified:
            return "not identified (consistent with a cross-over anywhere in the grid or beyond it)"
        return f"[{bound_text(low, self.levels)}, {bound_text(high, self.levels)}]"

    def describe(self) -> str:
        """One line for people, e.g. ``random_deletion / bits_per_byte_en: B overtakes A at 0.213 [0.18, 0.25]
        (95% Welch t over 3 + 3 training seeds)``."""
        head = f"{self.perturbation} / {self.metric}: "
        method = self.method if self.flag else f"{self.confidence:.0%} {self.method}"
        interval = self.interval_text()
        if self.status == "crossing" and self.identified:
            return head + f"{self.model_b} overtakes {self.model_a} at {self.level:.4g} {interval} ({method})"
        if self.status == "crossing" and self.flag:
            return head + f"{self.model_b}'s mean overtakes {self.model_a}'s at {self.level:.4g}; {method}"
        if self.status == "crossing":
            return head + (
                f"{self.model_b}'s mean overtakes {self.model_a}'s at {self.level:.4g}, but the cross-over is "
                f"{interval} ({method})"
            )
        if self.status == "none":
            said = f"none in the grid ({self.model_b} never better than {self.model_a} up to {self.levels[-1]:g})"
        else:
            said = f"no cross-over ({self.model_b} already better than {self.model_a} at {self.levels[0]:g})"
        if self.flag:
            return head + f"{said}; {method}"
        return head + f"{said}; interval: {interval} ({method})"


@dataclass(frozen=True)
class SeedMeanPoint:
    """One level of a side's curve: the mean over training seeds and its t interval."""

    level: float
    mean: float
    ci_low: float
    ci_high: float
    n_seeds: int


@dataclass(frozen=True)
class LevelDifference:
    """``B − A`` at one level: the seed means of both sides, their difference and its t interval."""

    level: float
    mean_a: float
    mean_b: float
    difference: float
    ci_low: float
    ci_high: float
    method: str
    n_seeds_a: int
    n_seeds_b: int

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies entirely on one side of 0."""
        return self.ci_low > 0 or self.ci_high < 0


def known_direction(metric: str) -> Direction:
    """``lower`` or ``higher`` is better, from the metric's name; ``ConfigError`` when it cannot tell."""
    direction = metric_direction(metric)
    if direction is None:
        raise ConfigError("direction", metric, "cannot tell from the metric name whether lower or higher is better")
    return direction


def crossover_level(levels: Sequence[float], advantage: Sequence[float]) -> tuple[Status, float | None]:
    """First level where ``advantage`` (B better when > 0) turns positive after being ≤ 0, interpolated."""
    for i in range(1, len(levels)):
        before, after = advantage[i - 1], advantage[i]
        if before <= 0 < after:
            fraction = -before / (after - before)
            return "crossing", levels[i - 1] + fraction * (levels[i] - levels[i - 1])
    if len(advantage) and advantage[0] > 0:
        return "b_better_from_start", None
    return "none", None


def find_crossover(
    rows_a: Iterable[SweepRow],
    rows_b: Iterable[SweepRow],
    perturbation: str,
    metric: str,
    direction: Direction | None = None,
    confidence: float = 0.95,
) -> CrossOver:
    """Cross-over of B over A for one perturbation and metric, one table per side (an interval over trials)."""
    return find_replicated_crossover([rows_a], [rows_b], perturbation, metric, direction, confidence)


def find_replicated_crossover(
    tables_a: Sequence[Iterable[SweepRow]],
    tables_b: Sequence[Iterable[SweepRow]],
    perturbation: str,
    metric: str,
    direction: Direction | None = None,
    confidence: float = 0.95,
    paired_seeds: bool = False,
) -> CrossOver:
    """Cross-over of B over A with one table per training seed on each side (see the module docstring);
    ``paired_seeds``: the i-th tables of A and B were trained with the same seed."""
    direction = direction or known_direction(metric)
    if direction not in ("lower", "higher"):
        raise ConfigError("direction", direction, "must be 'lower' or 'higher'")
    sign = 1.0 if direction == "lower" else -1.0
    pair = _Pair.of(tables_a, tables_b, perturbation, metric, paired_seeds)
    moments = contrast_moments([(sign, pair.a), (-sign, pair.b)], pair.paired_trials, paired_seeds)
    advantage = [float(v) for v in moments.estimate]
    status, level = crossover_level(pair.levels, advantage)
    low, high = crossover_interval(moments, pair.levels, confidence)
    if pair.few_trials:
        low, high = -math.inf, math.inf
    return CrossOver(
        perturbation=perturbation,
        metric=metric,
        model_a=pair.model_a,
        model_b=pair.model_b,
        direction=direction,
        status=status,
        level=level,
        ci_low=float(low),
        ci_high=float(high),
        method=pair.method_at(),
        paired_trials=all(pair.paired_trials),
        paired_seeds=paired_seeds,
        confidence=confidence,
        levels=tuple(pair.levels),
        advantage=tuple(advantage),
        n_seeds_a=len(tables_a),
        n_seeds_b=len(tables_b),
        flag=FEW_TRIALS if pair.few_trials else "",
    )


def seed_mean_curve(
    tables: Sequence[Iterable[SweepRow]], perturbation: str, metric: str, confidence: float = 0.95
) -> list[SeedMeanPoint]:
    """One side's curve: per level the mean over tables (training seeds) of the trial mean, with its t
    interval over seeds (over trials for one table), clipped to the metric's range as the sweep summary's."""
    side, _ = _side_tables(tables, perturbation, metric, "")
    levels = _shared_levels(perturbation, {"tables": side})
    cells = [SideLevel.of(_values(side, level)) for level in levels]
    paired = [_paired(side, level) for level in levels]
    estimate, low, high = contrast_moments([(1.0, cells)], paired).level_intervals(confidence)
    lowest, highest = metric_range(metric)
    return [
        SeedMeanPoint(level, float(estimate[i]), max(float(low[i]), lowest), min(float(high[i]), highest), len(side))
        for i, level in enumerate(levels)
    ]


def level_differences(
    tables_a: Sequence[Iterable[SweepRow]],
    tables_b: Sequence[Iterable[SweepRow]],
    perturbation: str,
    metric: str,
    confidence: float = 0.95,
    paired_seeds: bool = False,
) -> list[LevelDifference]:
    """``B − A`` of the seed-mean metric at every level, with the cross-over's t interval (over training
    seeds with several tables per side, over trials with one)."""
    pair = _Pair.of(tables_a, tables_b, perturbation, metric, paired_seeds)
    moments = contrast_moments([(-1.0, pair.a), (1.0, pair.b)], pair.paired_trials, paired_seeds)
    difference, low, high = moments.level_intervals(confidence)
    found = []
    for i, (level, a, b) in enumerate(zip(pair.levels, pair.a, pair.b, strict=True)):
        ends = (math.nan, math.nan) if level in pair.short else (float(low[i]), float(high[i]))
        interval = {"difference": float(difference[i]), "ci_low": ends[0], "ci_high": ends[1]}
        means = {"mean_a": float(a.means.mean()), "mean_b": float(b.means.mean())}
        seeds = {"n_seeds_a": len(tables_a), "n_seeds_b": len(tables_b)}
        found.append(LevelDifference(level, **means, **interval, method=pair.method_at(level), **seeds))
    return found


@dataclass(frozen=True)
class _Pair:
    """Both sides of a comparison at every shared level, and how their trials and seeds pair up."""

    levels: list[float]
    a: list[SideLevel]
    b: list[SideLevel]
    paired_trials: list[bool]
    model_a: str
    model_b: str
    method: str
    #: One table per side: ``{level: (trials, trials needed)}`` of the random levels with fewer trials than their
    #: interval needs (``trials_needed``): no interval over trials there, and none for the cross-over.
    short: dict[float, tuple[int, int]]

    @staticmethod
    def of(
        tables_a: Sequence[Iterable[SweepRow]],
        tables_b: Sequence[Iterable[SweepRow]],
        perturbation: str,
        metric: str,
        paired_seeds: bool,
    ) -> _Pair:
        side_a, model_a = _side_tables(tables_a, perturbation, metric, "A")
        side_b, model_b = _side_tables(tables_b, perturbation, metric, "B")
        counts = (len(side_a), len(side_b))
        if 1 in counts and counts != (1, 1):
            raise ConfigError(
                "tables",
                f"{counts[0]} + {counts[1]}",
                "an interval over training seeds needs at least 2 tables (seeds) on each side; one on each "
                "compares trials only",
            )
        if paired_seeds and counts[0] != counts[1]:
            raise ConfigError("paired_seeds", f"{counts[0]} + {counts[1]}", "needs as many tables on A as on B")
        levels = _shared_levels(perturbation, {"A": side_a, "B": side_b})
        paired = [_paired([*side_a, *side_b], level) for level in levels]
        method = method_name(counts[0], counts[1], paired_seeds, all(paired))
        cells_a = [SideLevel.of(_values(side_a, level)) for level in levels]
        cells_b = [SideLevel.of(_values(side_b, level)) for level in levels]
        short = _short_levels(perturbation, levels, [*side_a, *side_b]) if counts == (1, 1) else {}
        return _Pair(levels, cells_a, cells_b, paired, model_a, model_b, method, short)

    @property
    def few_trials(self) -> bool:
        return bool(self.short)

    def method_at(self, level: float | None = None) -> str:
        """How the interval at ``level`` (None: the cross-over's, over every level) was made, or why there is none."""
        short = [at for at in self.short if level is None or at == level]
        if not short:
            return self.method
        trials, needed = self.short[short[0]]
        return f"no interval: {trials} trials at level {short[0]:g}, fewer than the {needed} it needs"


def _side_tables(
    tables: Sequence[Iterable[SweepRow]], perturbation: str, metric: str, label: str
) -> tuple[list[TrialTable], str]:
    """Trial tables of one side and its model name (names of several tables joined with ``+``)."""
    if not tables:
        raise ConfigError(f"table {label}".strip(), [], "no tables")
    side, models = [], []
    for rows in tables:
        table, model = _trial_table(rows, perturbation, metric, label)
        side.append(table)
        models.append(model)
    return side, "+".join(dict.fromkeys(models))


def _trial_table(rows: Iterable[SweepRow], perturbation: str, metric: str, label: str) -> tuple[TrialTable, str]:
    """``{level: {trial: (seed, value)}}`` of one model; errors on several models, then on duplicates."""
    field = f"table {label}".strip()
    table: TrialTable = defaultdict(dict)
    cells = [row for row in rows if row.perturbation == perturbation and row.metric == metric]
    models = {row.model for row in cells}
    if len(models) > 1:
        raise ConfigError(field, sorted(models), "holds several models: choose one (--model-a/--model-b)")
    for row in cells:
        if row.trial in table[row.level]:
            raise ConfigError(
                field,
                f"{row.model}/{perturbation}/{row.level:g}/trial {row.trial}",
                "appears twice (two runs appended to one CSV? keep one stage/epoch per file)",
            )
        table[row.level][row.trial] = (row.seed, row.value)
    if not table:
        raise ConfigError(field, f"{perturbation}/{metric}", "has no rows for this perturbation and metric")
    return dict(table), models.pop()


def _shared_levels(perturbation: str, sides: dict[str, list[TrialTable]]) -> list[float]:
    """The grid every table of every side sweeps; ``ConfigError`` when two tables differ."""
    grids = {label: [sorted(table) for table in side] for label, side in sides.items()}
    if len({tuple(grid) for side in grids.values() for grid in side}) > 1:
        value = {label: side[0] if len(side) == 1 else side for label, side in grids.items()}
        raise ConfigError(f"{perturbation}.levels", value, "the tables sweep different grids")
    return next(iter(grids.values()))[0]


def _values(side: Sequence[TrialTable], level: float) -> list[np.ndarray]:
    """Each table's trial values at ``level``, in trial order."""
    return [np.array([value for _, (_, value) in sorted(table[level].items())]) for table in side]


def _short_levels(
    perturbation: str, levels: Sequence[float], tables: Sequence[TrialTable]
) -> dict[float, tuple[int, int]]:
    """``{level: (trials, trials needed)}`` of the random levels where a table has fewer trials than the per-level
    interval needs (``intervals.trials_needed``: 10, more at a small hit probability)."""
    short = {}
    for level in levels:
        if deterministic_level(perturbation, level):
            continue
        needed = trials_needed(hit_probability(perturbation, level))
        trials = min(len(table[level]) for table in tables)
        if trials < needed:
            short[level] = (trials, needed)
    return short


def _seeds(trials: dict[int, tuple[int, float]]) -> dict[int, int]:
    return {trial: seed for trial, (seed, _) in trials.items()}


def _paired(tables: Sequence[TrialTable], level: float) -> bool:
    """Whether every table drew the same trials (same seeds) at ``level``."""
    return all(_seeds(table[level]) == _seeds(tables[0][level]) for table in tables)
