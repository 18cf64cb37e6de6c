"""Cross-over between two models' sweeps: the damage level where model B starts to beat model A.

Each side is one sweep table, or several: the same config trained under several ``seed_everything``
values (training replicates), each swept over the same grid. At each level a side's value is the
mean over its tables of the mean over trials; the *advantage* of B is ``A − B`` (lower-is-better
metrics such as perplexity, bits per byte, MSE) or ``B − A`` (higher-is-better metrics such as
accuracy, F1, MCC). The cross-over is the first level where the advantage turns positive after
having been ≤ 0, located by linear interpolation between the two grid levels around the sign change.

The interval is a percentile bootstrap. With several tables per side it is *two-level*: every
replicate resamples each side's training seeds (tables) with replacement — one draw shared by all
levels, since a seed is a whole curve — then, at each level, the trials within each resampled
table, so it covers the variance between training runs as well as the perturbation's. When every
table of both sides used the same seed for the same (level, trial) — same-shape models share
perturbation masks — the trials are *paired*: one resampled trial index takes every table's value
at that trial (both sides, every seed); otherwise the trials of each resampled table are drawn
afresh. With one table per side this is the plain bootstrap over trials (paired or not). Replicates
without a cross-over in the grid count as +inf (B never overtakes) or −inf (B better from the first
level), so the interval can be open on either side. A percentile bootstrap over few seeds is too
narrow (about 92% coverage for a nominal 95% with 10 seeds per side, less with fewer).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from cognitive_reserve.errors import ConfigError
from cognitive_reserve.metrics import Direction, metric_direction
from cognitive_reserve.sweep import SweepRow

Status = Literal["crossing", "none", "b_better_from_start"]

#: ``{level: {trial: (seed, value)}}``: one table's trials of one perturbation and metric.
TrialTable = dict[float, dict[int, tuple[int, float]]]


@dataclass(frozen=True)
class CrossOver:
    """Where B overtakes A for one (perturbation, metric), with a bootstrap interval.

    ``status``: ``crossing`` (``level`` is set), ``none`` (B never becomes better in the grid) or
    ``b_better_from_start`` (B is already better at the first level). ``ci_low``/``ci_high`` may be
    ±inf (the interval reaches past the grid); ``fraction_crossing`` is the share of bootstrap
    replicates with a cross-over inside the grid. ``n_seeds_a``/``n_seeds_b``: training replicates
    (tables) per side; above 1 the interval covers training-seed variance too.
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
    fraction_crossing: float
    paired: bool
    n_boot: int
    levels: tuple[float, ...]
    advantage: tuple[float, ...]
    n_seeds_a: int = 1
    n_seeds_b: int = 1

    @property
    def replicated(self) -> bool:
        """Whether either side has several training seeds (a two-level bootstrap)."""
        return self.n_seeds_a > 1 or self.n_seeds_b > 1

    def describe(self) -> str:
        """One line for people, e.g. ``random_deletion / bits_per_byte_en: B overtakes A at 0.213 [0.18, 0.25]``."""
        head = f"{self.perturbation} / {self.metric}: "
        seeds = f"; {self.n_seeds_a} + {self.n_seeds_b} training seeds" if self.replicated else ""
        if self.status == "none":
            return head + (
                f"none in the grid ({self.model_b} never better than {self.model_a} up to {self.levels[-1]:g}{seeds})"
            )
        if self.status == "b_better_from_start":
            return head + (
                f"{self.model_b} already better than {self.model_a} at {self.levels[0]:g} (no cross-over{seeds})"
            )
        method = f"{'paired' if self.paired else 'unpaired'} bootstrap, {self.n_boot} replicates"
        if self.replicated:
            method = f"two-level {method} over {self.n_seeds_a} + {self.n_seeds_b} training seeds"
        return head + (
            f"{self.model_b} overtakes {self.model_a} at {self.level:.4g} "
            f"[{_bound(self.ci_low, self.levels)}, {_bound(self.ci_high, self.levels)}] ({method})"
        )


@dataclass(frozen=True)
class SeedMeanPoint:
    """One level of a side's curve: mean over training seeds and its two-level bootstrap interval."""

    level: float
    mean: float
    ci_low: float
    ci_high: float
    n_seeds: int


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
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> CrossOver:
    """Cross-over of B over A for one perturbation and metric, one table per side (see the module docstring)."""
    return find_replicated_crossover([rows_a], [rows_b], perturbation, metric, direction, n_boot, confidence, seed)


def find_replicated_crossover(
    tables_a: Sequence[Iterable[SweepRow]],
    tables_b: Sequence[Iterable[SweepRow]],
    perturbation: str,
    metric: str,
    direction: Direction | None = None,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> CrossOver:
    """Cross-over of B over A with one table per training seed on each side (see the module docstring)."""
    direction = direction or known_direction(metric)
    if direction not in ("lower", "higher"):
        raise ConfigError("direction", direction, "must be 'lower' or 'higher'")
    side_a, model_a = _side_tables(tables_a, perturbation, metric, "A")
    side_b, model_b = _side_tables(tables_b, perturbation, metric, "B")
    levels = _shared_levels(perturbation, {"A": side_a, "B": side_b})
    sign = 1.0 if direction == "lower" else -1.0
    paired = all(_seeds(table[level]) == _seeds(side_a[0][level]) for table in side_a + side_b for level in levels)
    rng = np.random.default_rng(seed)
    chosen_a, chosen_b = _seed_draw(rng, len(side_a), n_boot), _seed_draw(rng, len(side_b), n_boot)
    point, replicates = [], []
    for level in levels:
        a, b = _values(side_a, level), _values(side_b, level)
        point.append(sign * (_seed_mean(a) - _seed_mean(b)))
        if paired:
            replicates.append(sign * _paired_difference(rng, a, b, chosen_a, chosen_b))
        else:
            replicates.append(sign * (_resampled_means(rng, a, chosen_a) - _resampled_means(rng, b, chosen_b)))
    status, level = crossover_level(levels, point)
    boot = np.array([_as_position(*crossover_level(levels, column)) for column in np.stack(replicates, axis=1)])
    low, high = percentile_interval(boot, confidence)
    return CrossOver(
        perturbation=perturbation,
        metric=metric,
        model_a=model_a,
        model_b=model_b,
        direction=direction,
        status=status,
        level=level,
        ci_low=low,
        ci_high=high,
        fraction_crossing=float(np.isfinite(boot).mean()),
        paired=paired,
        n_boot=n_boot,
        levels=tuple(levels),
        advantage=tuple(float(v) for v in point),
        n_seeds_a=len(side_a),
        n_seeds_b=len(side_b),
    )


def seed_mean_curve(
    tables: Sequence[Iterable[SweepRow]],
    perturbation: str,
    metric: str,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[SeedMeanPoint]:
    """One side's curve: per level the mean over tables (training seeds) of the trial mean, with the
    two-level bootstrap interval (seeds resampled, then trials within each resampled seed)."""
    side, _ = _side_tables(tables, perturbation, metric, "")
    levels = _shared_levels(perturbation, {"tables": side})
    rng = np.random.default_rng(seed)
    chosen = _seed_draw(rng, len(side), n_boot)
    points = []
    for level in levels:
        values = _values(side, level)
        low, high = percentile_interval(_resampled_means(rng, values, chosen), confidence)
        points.append(SeedMeanPoint(level, _seed_mean(values), low, high, len(values)))
    return points


@dataclass(frozen=True)
class LevelDifference:
    """``B − A`` at one level: the seed means of both sides, their difference and its bootstrap interval."""

    level: float
    mean_a: float
    mean_b: float
    difference: float
    ci_low: float
    ci_high: float
    paired: bool
    n_seeds_a: int
    n_seeds_b: int

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies entirely on one side of 0."""
        return self.ci_low > 0 or self.ci_high < 0


def level_differences(
    tables_a: Sequence[Iterable[SweepRow]],
    tables_b: Sequence[Iterable[SweepRow]],
    perturbation: str,
    metric: str,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[LevelDifference]:
    """``B − A`` of the seed-mean metric at every level, with the cross-over's bootstrap: two-level over
    training seeds (tables) and trials, trials paired when every table used the same seeds."""
    side_a, _ = _side_tables(tables_a, perturbation, metric, "A")
    side_b, _ = _side_tables(tables_b, perturbation, metric, "B")
    levels = _shared_levels(perturbation, {"A": side_a, "B": side_b})
    paired = all(_seeds(table[level]) == _seeds(side_a[0][level]) for table in side_a + side_b for level in levels)
    rng = np.random.default_rng(seed)
    chosen_a, chosen_b = _seed_draw(rng, len(side_a), n_boot), _seed_draw(rng, len(side_b), n_boot)
    differences = []
    for level in levels:
        a, b = _values(side_a, level), _values(side_b, level)
        if paired:
            replicates = -_paired_difference(rng, a, b, chosen_a, chosen_b)
        else:
            replicates = _resampled_means(rng, b, chosen_b) - _resampled_means(rng, a, chosen_a)
        low, high = percentile_interval(replicates, confidence)
        mean_a, mean_b = _seed_mean(a), _seed_mean(b)
        differences.append(
            LevelDifference(level, mean_a, mean_b, mean_b - mean_a, low, high, paired, len(side_a), len(side_b))
        )
    return differences


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """Order-statistic percentile interval (no interpolation, so ±inf replicates are handled)."""
    ordered = np.sort(values)
    tail = (1 - confidence) / 2
    low = ordered[math.floor(tail * len(ordered))]
    high = ordered[max(math.ceil((1 - tail) * len(ordered)) - 1, 0)]
    return float(low), float(high)


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
                field, f"{row.model}/{perturbation}/{row.level:g}/trial {row.trial}",
                "appears twice (two runs appended to one CSV? keep one stage/epoch per file)",
            )  # fmt: skip
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


def _seed_mean(values: Sequence[np.ndarray]) -> float:
    """Mean over tables of the mean over trials (exactly the trial mean for one table)."""
    means = [table.mean() for table in values]
    return means[0] if len(means) == 1 else float(np.mean(means))


def _seed_draw(rng: np.random.Generator, count: int, n_boot: int) -> np.ndarray:
    """``(n_boot, count)`` resampled table indices; no draw for a single table (it is always chosen).

    Drawn once per replicate for every level: a training seed is a whole curve (its offset is shared by
    all levels), while trials are different masks at every level and are resampled per level."""
    if count == 1:
        return np.zeros((n_boot, 1), dtype=np.intp)
    return rng.integers(0, count, size=(n_boot, count))


def _resampled_means(rng: np.random.Generator, values: Sequence[np.ndarray], chosen: np.ndarray) -> np.ndarray:
    """``(n_boot,)`` side means over the ``chosen`` tables, the trials of every chosen table resampled."""
    n_boot, slots = chosen.shape
    means = np.stack([trials[rng.integers(0, len(trials), size=(n_boot, slots, len(trials)))].mean(axis=2)
                      for trials in values])  # fmt: skip
    return np.take_along_axis(means, chosen[None], axis=0)[0].mean(axis=1)


def _paired_difference(
    rng: np.random.Generator,
    a: Sequence[np.ndarray],
    b: Sequence[np.ndarray],
    chosen_a: np.ndarray,
    chosen_b: np.ndarray,
) -> np.ndarray:
    """``(n_boot,)`` mean over resampled trials of (A − B), each side averaged over its chosen tables."""
    per_trial_a = np.stack(a)[chosen_a].mean(axis=1)  # (n_boot, trials)
    per_trial_b = np.stack(b)[chosen_b].mean(axis=1)
    n_boot, trials = per_trial_a.shape
    idx = rng.integers(0, trials, size=(n_boot, trials))
    rows = np.arange(n_boot)[:, None]
    return (per_trial_a[rows, idx] - per_trial_b[rows, idx]).mean(axis=1)


def _seeds(trials: dict[int, tuple[int, float]]) -> dict[int, int]:
    return {trial: seed for trial, (seed, _) in trials.items()}


def _as_position(status: Status, level: float | None) -> float:
    if status == "crossing":
        return float(level)
    return -math.inf if status == "b_better_from_start" else math.inf


def _bound(value: float, levels: Sequence[float]) -> str:
    if value == math.inf:
        return f"> {levels[-1]:g}"
    if value == -math.inf:
        return f"< {levels[0]:g}"
    return f"{value:.4g}"
