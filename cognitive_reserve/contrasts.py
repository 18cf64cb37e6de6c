"""t intervals for a mean curve, or the difference of two, over training seeds (or over trials).

A *side* is one config trained under S training seeds, each swept over the same grid: at every level,
table s (seed s) holds trial values y_sj. The statistic at a level is a signed sum of side means, each
side mean the mean over seeds of the trial means m_s: B − A for a difference, the side itself for a curve.

**Over training seeds** (S ≥ 2 on every side): the unit of replication is the training seed, so the
interval comes from the seed means m_s with Student t — S − 1 degrees of freedom for one side, Welch's
for a difference of two independent sides, S − 1 again for a difference *paired by seed* (the i-th table
of A and of B trained with the same seed: the unit is then m_B,s − m_A,s). Each m_s already carries its
trials' noise, so this covers training-seed and trial variance together, exactly when the seeds'
trials are drawn independently.

**Shared trials.** When every table of every side drew the same perturbation seeds at a level (the
sweeps' default: same masks, same noise), a mask that hurts every model alike is one draw shared by all
seeds, and the spread of the seed means misses it. Then the seeds × trials table of each side is a
crossed design and the variance is that of a two-way random-effects mean: the seed part (spread of the
seed means over S), plus the shared-trial part (spread of the per-trial values, averaged over seeds,
over n), minus the residual mean square over n·S that both count; degrees of freedom by Satterthwaite,
never more than the seeds' own (a seed part that came out small by chance is not known to be small). With
no shared effect the added terms cancel on average; the estimate never falls below either part.

**Over trials** (one table per side): the interval covers the trials only — a paired t over trial
differences when both tables drew the same trials, else Welch over the two tables' trials.

A level of one trial (the undamaged level, deterministic pruning) has no trial variance. Interpolating
between two levels (the cross-over) combines their seed means per seed, so the covariance of a seed's
values at neighbouring levels is kept; trials of different levels are independent draws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special


@dataclass(frozen=True)
class SideLevel:
    """One side's values at one level: ``means`` ``(..., S)`` of each table's trials, and the trial values
    ``(..., S, n)`` themselves when every table has the same number of trials (else ``None``)."""

    means: np.ndarray
    trials: np.ndarray | None

    @staticmethod
    def of(tables: Sequence[np.ndarray]) -> SideLevel:
        """From each table's trial values at the level (one 1-d array per training seed)."""
        means = np.array([np.mean(values) for values in tables])
        same = len({len(values) for values in tables}) == 1
        return SideLevel(means, np.stack([np.asarray(v, dtype=float) for v in tables]) if same else None)

    @property
    def seeds(self) -> int:
        return self.means.shape[-1]


@dataclass(frozen=True)
class Term:
    """One variance component: per level ``(..., L)``, its degrees of freedom and sign."""

    values: np.ndarray
    df: np.ndarray
    sign: float = 1.0


@dataclass(frozen=True)
class Moments:
    """What the intervals of any weighted sum of a contrast's levels are computed from: the estimate per
    level, the seed part (one covariance across levels per group of exchangeable seeds) and trial terms."""

    estimate: np.ndarray  # (..., L)
    seed_covariances: tuple[tuple[np.ndarray, int], ...]  # ((..., L, L) covariance of the mean, df)
    trial_terms: tuple[Term, ...]

    def variances(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For each row of ``weights`` ``(W, L)``: the seed part, the positive trial part and the total of the
        variance of ``weights @ levels``, and Satterthwaite's degrees of freedom, each ``(..., W)``."""
        seed = [(np.einsum("...ij,wi,wj->...w", cov, weights, weights), df) for cov, df in self.seed_covariances]
        squared = weights.T**2  # (L, W)
        trials = [(term.values @ squared, term) for term in self.trial_terms]
        zero = np.zeros((*self.estimate.shape[:-1], weights.shape[0]))
        seed_part = sum((part for part, _ in seed), zero)
        trial_part = sum((part for part, term in trials if term.sign > 0), zero)
        total = seed_part + sum((term.sign * part for part, term in trials), zero)
        variance = np.maximum(total, np.maximum(seed_part, trial_part))
        # Satterthwaite: each seed group is one component, each level's trial term another
        denominator = sum((part**2 / df for part, df in seed), zero)
        for _, term in trials:
            per_level = (term.values[..., :, None] * squared) ** 2 / term.df[:, None]
            denominator = denominator + per_level.sum(axis=-2)
        with np.errstate(divide="ignore", invalid="ignore"):
            df = np.where(denominator > 0, variance**2 / denominator, np.inf)
        if seed:  # never more than the seeds give: a seed part estimated small by chance is not known to be small
            df = np.minimum(df, sum(df_seed for _, df_seed in seed))
        return seed_part, trial_part, total, df

    def intervals(self, weights: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(estimate, low, high)`` of ``weights @ levels`` for each row of ``weights`` ``(W, L)``: ``(..., W)``;
        the variance never below its seed part or its positive trial part (each a lower bound on average)."""
        estimate = self.estimate @ weights.T
        seed_part, trial_part, total, df = self.variances(weights)
        variance = np.maximum(total, np.maximum(seed_part, trial_part))
        half = np.where(variance > 0, t_quantile(df, confidence) * np.sqrt(variance), 0.0)
        return estimate, estimate - half, estimate + half

    def level_intervals(self, confidence: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(estimate, low, high)`` at every level, ``(..., L)``."""
        return self.intervals(np.eye(self.estimate.shape[-1]), confidence)


def t_quantile(df: np.ndarray, confidence: float) -> np.ndarray:
    """Student t's two-sided quantile (at least 1 degree of freedom)."""
    return special.stdtrit(np.maximum(df, 1.0), 0.5 + confidence / 2)


def contrast_moments(
    sides: Sequence[tuple[float, Sequence[SideLevel]]], paired_trials: Sequence[bool], paired_seeds: bool = False
) -> Moments:
    """Moments of ``Σ sign · side mean`` at every level (see the module docstring).

    ``sides``: ``(sign, [SideLevel per level])``, e.g. ``[(-1, a), (+1, b)]`` for B − A or ``[(+1, a)]`` for a
    curve. ``paired_trials[l]``: every table of every side drew the same trials at level ``l``.
    ``paired_seeds``: the i-th tables of the two sides share a training seed (equal seed counts)."""
    signs = [sign for sign, _ in sides]
    per_level = list(zip(*(levels for _, levels in sides), strict=True))  # [(SideLevel of each side)] per level
    estimate = np.stack(
        [sum(s * c.means.mean(axis=-1) for s, c in zip(signs, cells, strict=True)) for cells in per_level], axis=-1
    )
    counts = {cell.seeds for cells in per_level for cell in cells}
    if counts == {1}:
        return Moments(estimate, (), _trials_only(signs, per_level, paired_trials))
    if 1 in counts:
        raise ValueError("an interval over training seeds needs at least 2 tables on every side")
    groups = _seed_groups(signs, per_level, paired_seeds)
    covariances = tuple((_covariance_of_mean(np.stack(means, axis=-1)), means[0].shape[-1] - 1) for means, _ in groups)
    return Moments(estimate, covariances, _shared_trials(signs, per_level, paired_trials, groups))


def crossover_interval(moments: Moments, levels: Sequence[float], confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """The cross-over set by inverting the per-level test: every level x (grid levels and linear
    interpolation between them) whose interval of the advantage at x contains 0; ``(low, high)`` of its
    hull, ``(...,)`` each. ``-inf`` / ``+inf``: the set reaches the first / last level (the data cannot
    exclude a cross-over beyond the grid); both ``-inf``: the advantage excludes 0 and is positive at every
    level (B better from the start), both ``+inf``: negative at every level (no cross-over in the grid).

    Between two levels the advantage is linear and each variance part quadratic in the position, so the set
    is solved exactly there (a Fieller-type quadratic inequality), with the stretch's t quantile taken as its
    largest at five points. Covers the true cross-over at ``confidence`` whenever the per-level interval
    covers (at the true cross-over the advantage is 0)."""
    count = len(levels)
    beyond = np.where(moments.estimate[..., 0] > 0, -np.inf, np.inf)  # nothing plausible: one sign everywhere
    if count < 2:  # no stretch to solve in: the one level either excludes 0 or leaves the cross-over open
        _, low, high = moments.level_intervals(confidence)
        open_ = (low[..., 0] <= 0) & (high[..., 0] >= 0)
        return np.where(open_, -np.inf, beyond), np.where(open_, np.inf, beyond)
    probes = np.linspace(0.0, 1.0, 5)
    weights = np.zeros((count - 1, probes.size, count))
    stretch = np.arange(count - 1)
    weights[stretch, :, stretch] = 1 - probes
    weights[stretch, :, stretch + 1] = probes
    *_, df = moments.variances(weights.reshape(-1, count))
    quantile = t_quantile(df, confidence).reshape(*df.shape[:-1], count - 1, probes.size).max(axis=-1)
    # each variance version at f = 0, 1/2, 1 of every stretch gives its quadratic's coefficients
    ends = np.zeros((count - 1, 3, count))
    ends[stretch, 0, stretch], ends[stretch, 2, stretch + 1] = 1.0, 1.0
    ends[stretch, 1, stretch], ends[stretch, 1, stretch + 1] = 0.5, 0.5
    seed_part, trial_part, total, _ = moments.variances(ends.reshape(-1, count))
    estimate = moments.estimate
    start, step = estimate[..., :-1], np.diff(estimate, axis=-1)
    first, last = np.full(start.shape, np.nan), np.full(start.shape, np.nan)
    for part in (seed_part, trial_part, total):
        at = part.reshape(*part.shape[:-1], count - 1, 3)
        v0, v_half, v1 = at[..., 0], at[..., 1], at[..., 2]
        v_square = 2 * v0 + 2 * v1 - 4 * v_half  # V(f) = v0 + v_linear f + v_square f²
        v_linear = v1 - v0 - v_square
        q2 = quantile**2
        low, high = _quadratic_hull(step**2 - q2 * v_square, 2 * start * step - q2 * v_linear, start**2 - q2 * v0)
        first, last = np.fmin(first, low), np.fmax(last, high)
    # where the estimate itself is 0 the interval contains 0 whatever its width: kept when rounding loses a
    # degenerate quadratic's one root (trials without spread)
    with np.errstate(divide="ignore", invalid="ignore"):
        zero = np.where((start * (start + step) <= 0) & (step != 0), -start / step, np.nan)
    first, last = np.fmin(first, zero), np.fmax(last, zero)
    unknown = ~np.isfinite(start + step)  # a non-finite value excludes nothing
    first, last = np.where(unknown, 0.0, first), np.where(unknown, 1.0, last)
    spans = np.diff(np.asarray(levels, dtype=float))
    inside = ~np.isnan(first)
    first_stretch = np.argmax(inside, axis=-1)
    last_stretch = count - 2 - np.argmax(inside[..., ::-1], axis=-1)
    lower_f = np.take_along_axis(first, first_stretch[..., None], axis=-1)[..., 0]
    upper_f = np.take_along_axis(last, last_stretch[..., None], axis=-1)[..., 0]
    lower = np.asarray(levels)[first_stretch] + lower_f * spans[first_stretch]
    upper = np.asarray(levels)[last_stretch] + upper_f * spans[last_stretch]
    lower = np.where((first_stretch == 0) & (lower_f == 0), -np.inf, lower)
    upper = np.where((last_stretch == count - 2) & (upper_f == 1), np.inf, upper)
    found = inside.any(axis=-1)
    return np.where(found, lower, beyond), np.where(found, upper, beyond)


def _quadratic_hull(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest f in [0, 1] with ``a f² + b f + c ≤ 0`` (NaN where there is none): the set's ends
    are among 0, 1 and the roots, so test those."""
    with np.errstate(divide="ignore", invalid="ignore"):
        root = np.sqrt(b**2 - 4 * a * c)
        quadratic = np.abs(a) > 1e-12 * (np.abs(b) + np.abs(c))
        roots = np.where(
            quadratic[..., None],
            np.stack([(-b - root) / (2 * a), (-b + root) / (2 * a)], -1),
            np.stack([-c / b, -c / b], -1),
        )
    candidates = np.concatenate([np.zeros_like(roots[..., :1]), roots, np.ones_like(roots[..., :1])], axis=-1)
    candidates = np.where((candidates >= 0) & (candidates <= 1), candidates, np.nan)
    value = a[..., None] * candidates**2 + b[..., None] * candidates + c[..., None]
    scale = np.abs(a) + np.abs(b) + np.abs(c)
    held = np.where(value <= 1e-9 * scale[..., None], candidates, np.nan)
    with np.errstate(invalid="ignore"):
        return np.fmin.reduce(held, axis=-1), np.fmax.reduce(held, axis=-1)


def method_name(seeds_a: int, seeds_b: int, paired_seeds: bool, paired_trials: bool) -> str:
    """How the interval of B − A was computed, e.g. ``Welch t over 3 + 3 training seeds, shared trials``."""
    if seeds_a == seeds_b == 1:
        return "paired t over trials" if paired_trials else "Welch t over trials"
    shared = ", shared trials" if paired_trials else ""
    if paired_seeds:
        return f"paired t over {seeds_a} training seeds{shared}"
    return f"Welch t over {seeds_a} + {seeds_b} training seeds{shared}"


def _trials_only(
    signs: Sequence[float], per_level: list[tuple[SideLevel, ...]], paired: Sequence[bool]
) -> tuple[Term, ...]:
    """One table per side: the variance of the trial mean, of the paired trial differences at levels whose
    trials both tables share (one term), else of each side's trials (one term per side: Welch)."""
    rows = [[c.trials[..., 0, :] for c in cells] for cells in per_level]  # type: ignore[index]
    batch = per_level[0][0].means.shape[:-1]
    if len(signs) == 1:
        return (_level_term([row[0] for row in rows], batch),)
    differences = [
        sum(s * r for s, r in zip(signs, row, strict=True)) if paired[level] else None for level, row in enumerate(rows)
    ]
    sides = [[None if paired[level] else row[side] for level, row in enumerate(rows)] for side in range(len(signs))]
    return tuple(_level_term(values, batch) for values in (differences, *sides))


def _level_term(values: Sequence[np.ndarray | None], batch: tuple[int, ...]) -> Term:
    """``var / n`` of each level's values ``(..., n)`` with ``n − 1`` degrees of freedom; 0 for a level of one
    value or none (``None``)."""
    variances, df = [], []
    for v in values:
        n = 0 if v is None else v.shape[-1]
        variances.append(v.var(axis=-1, ddof=1) / n if v is not None and n > 1 else np.zeros(batch))
        df.append(max(n - 1, 1))
    return Term(np.stack(variances, axis=-1), np.array(df, dtype=float))


def _seed_groups(
    signs: Sequence[float], per_level: list[tuple[SideLevel, ...]], paired_seeds: bool
) -> list[tuple[list[np.ndarray], list[np.ndarray | None]]]:
    """Groups of exchangeable seeds: ``(unit means per level, unit trials per level)``. A group is one side
    (its tables), or with ``paired_seeds`` the pairs ``(sign_b · B_s + sign_a · A_s)``."""
    if paired_seeds:
        if len({c.seeds for cells in per_level for c in cells}) > 1:
            raise ValueError("paired seeds need the same number of tables on both sides")
        means = [sum(s * c.means for s, c in zip(signs, cells, strict=True)) for cells in per_level]
        trials = [_signed_trials(signs, cells) for cells in per_level]
        return [(means, trials)]
    return [
        ([cells[side].means for cells in per_level], [cells[side].trials for cells in per_level])
        for side in range(len(signs))
    ]


def _signed_trials(signs: Sequence[float], cells: Sequence[SideLevel]) -> np.ndarray | None:
    if any(c.trials is None for c in cells) or len({c.trials.shape[-1] for c in cells}) > 1:  # type: ignore[union-attr]
        return None
    return sum(s * c.trials for s, c in zip(signs, cells, strict=True))  # type: ignore[operator]


def _covariance_of_mean(units: np.ndarray) -> np.ndarray:
    """``(..., L, L)``: covariance across levels of the mean of ``units`` ``(..., S, L)`` (ddof 1, over S)."""
    count = units.shape[-2]
    centred = units - units.mean(axis=-2, keepdims=True)
    return np.einsum("...si,...sj->...ij", centred, centred) / ((count - 1) * count)


def _shared_trials(
    signs: Sequence[float],
    per_level: list[tuple[SideLevel, ...]],
    paired: Sequence[bool],
    groups: list[tuple[list[np.ndarray], list[np.ndarray | None]]],
) -> tuple[Term, ...]:
    """The crossed seeds × trials terms at levels whose trials every table shares: ``+ var(z)/n`` of the
    per-trial contrast ``z`` and ``− MS_E/(n·S)`` of each seed group."""
    levels = len(per_level)
    batch = per_level[0][0].means.shape[:-1]
    shared = np.zeros((*batch, levels))
    residuals = [np.zeros((*batch, levels)) for _ in groups]
    shared_df, residual_df = np.ones(levels), [np.ones(levels) for _ in groups]
    for level, cells in enumerate(per_level):
        unit_trials = [trials[level] for _, trials in groups]
        if not paired[level] or any(t is None or t.shape[-1] < 2 for t in unit_trials):
            continue
        n = unit_trials[0].shape[-1]  # type: ignore[union-attr]
        per_trial = sum(s * c.trials.mean(axis=-2) for s, c in zip(signs, cells, strict=True))  # type: ignore[union-attr]
        shared[..., level] = per_trial.var(axis=-1, ddof=1) / n
        shared_df[level] = n - 1
        for index, table in enumerate(unit_trials):
            seeds = table.shape[-2]  # type: ignore[union-attr]
            residual = (  # type: ignore[union-attr]
                table
                - table.mean(axis=-1, keepdims=True)
                - table.mean(axis=-2, keepdims=True)
                + table.mean(axis=(-2, -1), keepdims=True)
            )
            degrees = (seeds - 1) * (n - 1)
            residuals[index][..., level] = (residual**2).sum(axis=(-2, -1)) / degrees / (n * seeds)
            residual_df[index][level] = degrees
    terms = [Term(shared, shared_df)]
    terms += [Term(values, df, -1.0) for values, df in zip(residuals, residual_df, strict=True)]
    return tuple(terms)


def bound_text(value: float, levels: Sequence[float]) -> str:
    """A bound of a cross-over interval for people: ``< 0`` / ``> 0.4`` beyond the grid."""
    if value == math.inf:
        return f"> {levels[-1]:g}"
    if value == -math.inf:
        return f"< {levels[0]:g}"
    return f"{value:.4g}"
