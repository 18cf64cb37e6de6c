"""Cross-over between two sweep tables: the damage level where model B starts to beat model A.

Both tables must sweep the same perturbation over the same levels. At each level the *advantage*
of B is the mean over trials of ``A − B`` (lower-is-better metrics such as perplexity, bits per
byte, MSE) or ``B − A`` (higher-is-better metrics such as accuracy, F1, MCC). The cross-over is
the first level where the advantage turns positive after having been ≤ 0, located by linear
interpolation between the two grid levels around the sign change.

The interval comes from a bootstrap over trials. When both tables used the same seed for the
same (level, trial) — same-shape models share perturbation masks — the bootstrap is *paired*
(a resampled trial index takes both models' values); otherwise A and B are resampled
independently. Replicates without a cross-over in the grid count as +inf (B never overtakes)
or −inf (B better from the first level), so the interval can be open on either side.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from robustness.errors import ConfigError
from robustness.metrics import Direction, metric_direction
from robustness.sweep import SweepRow

Status = Literal["crossing", "none", "b_better_from_start"]


@dataclass(frozen=True)
class CrossOver:
    """Where B overtakes A for one (perturbation, metric), with a bootstrap interval.

    ``status``: ``crossing`` (``level`` is set), ``none`` (B never becomes better in the grid) or
    ``b_better_from_start`` (B is already better at the first level). ``ci_low``/``ci_high`` may be
    ±inf (the interval reaches past the grid); ``fraction_crossing`` is the share of bootstrap
    replicates with a cross-over inside the grid.
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

    def describe(self) -> str:
        """One line for people, e.g. ``random_deletion / bits_per_byte_en: B overtakes A at 0.213 [0.18, 0.25]``."""
        head = f"{self.perturbation} / {self.metric}: "
        if self.status == "none":
            return (
                head + f"none in the grid ({self.model_b} never better than {self.model_a} up to {self.levels[-1]:g})"
            )
        if self.status == "b_better_from_start":
            return head + f"{self.model_b} already better than {self.model_a} at {self.levels[0]:g} (no cross-over)"
        return head + (
            f"{self.model_b} overtakes {self.model_a} at {self.level:.4g} "
            f"[{_bound(self.ci_low, self.levels)}, {_bound(self.ci_high, self.levels)}] "
            f"({'paired' if self.paired else 'unpaired'} bootstrap, {self.n_boot} replicates)"
        )


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
    """Cross-over of B over A for one perturbation and metric (see the module docstring)."""
    direction = direction or known_direction(metric)
    if direction not in ("lower", "higher"):
        raise ConfigError("direction", direction, "must be 'lower' or 'higher'")
    table_a, model_a = _trial_table(rows_a, perturbation, metric, "A")
    table_b, model_b = _trial_table(rows_b, perturbation, metric, "B")
    if sorted(table_a) != sorted(table_b):
        raise ConfigError(
            f"{perturbation}.levels",
            {"A": sorted(table_a), "B": sorted(table_b)},
            "the two tables sweep different grids",
        )
    levels = sorted(table_a)
    sign = 1.0 if direction == "lower" else -1.0
    paired = all(_seeds(table_a[level]) == _seeds(table_b[level]) for level in levels)
    rng = np.random.default_rng(seed)
    point, replicates = [], []
    for level in levels:
        a = np.array([value for _, (_, value) in sorted(table_a[level].items())])
        b = np.array([value for _, (_, value) in sorted(table_b[level].items())])
        point.append(sign * (a.mean() - b.mean()))
        if paired:
            idx = rng.integers(0, len(a), size=(n_boot, len(a)))
            replicates.append(sign * (a[idx] - b[idx]).mean(axis=1))
        else:
            idx_a = rng.integers(0, len(a), size=(n_boot, len(a)))
            idx_b = rng.integers(0, len(b), size=(n_boot, len(b)))
            replicates.append(sign * (a[idx_a].mean(axis=1) - b[idx_b].mean(axis=1)))
    status, level = crossover_level(levels, point)
    boot = np.array([_as_position(*crossover_level(levels, column)) for column in np.stack(replicates, axis=1)])
    low, high = _percentile_interval(boot, confidence)
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
    )


def _trial_table(
    rows: Iterable[SweepRow], perturbation: str, metric: str, label: str
) -> tuple[dict[float, dict[int, tuple[int, float]]], str]:
    """``{level: {trial: (seed, value)}}`` of one model; errors on duplicates or several models."""
    table: dict[float, dict[int, tuple[int, float]]] = defaultdict(dict)
    models = set()
    for row in rows:
        if row.perturbation != perturbation or row.metric != metric:
            continue
        models.add(row.model)
        if row.trial in table[row.level]:
            raise ConfigError(
                f"table {label}", f"{row.model}/{perturbation}/{row.level:g}/trial {row.trial}",
                "appears twice (two runs appended to one CSV? keep one stage/epoch per file)",
            )  # fmt: skip
        table[row.level][row.trial] = (row.seed, row.value)
    if not table:
        raise ConfigError(f"table {label}", f"{perturbation}/{metric}", "has no rows for this perturbation and metric")
    if len(models) > 1:
        raise ConfigError(f"table {label}", sorted(models), "holds several models: choose one (--model-a/--model-b)")
    return dict(table), models.pop()


def _seeds(trials: dict[int, tuple[int, float]]) -> dict[int, int]:
    return {trial: seed for trial, (seed, _) in trials.items()}


def _as_position(status: Status, level: float | None) -> float:
    if status == "crossing":
        return float(level)
    return -math.inf if status == "b_better_from_start" else math.inf


def _percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """Order-statistic percentile interval (no interpolation, so ±inf replicates are handled)."""
    ordered = np.sort(values)
    tail = (1 - confidence) / 2
    low = ordered[math.floor(tail * len(ordered))]
    high = ordered[max(math.ceil((1 - tail) * len(ordered)) - 1, 0)]
    return float(low), float(high)


def _bound(value: float, levels: Sequence[float]) -> str:
    if value == math.inf:
        return f"> {levels[-1]:g}"
    if value == -math.inf:
        return f"< {levels[0]:g}"
    return f"{value:.4g}"
