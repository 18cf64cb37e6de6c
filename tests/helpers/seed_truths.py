"""Studies over training seeds with known truths: the coverage of the seed-level intervals.

A simulated study is two sides (A, B), each S training seeds swept over one grid (5 levels, the undamaged
level one trial, the others 20), in the shape of ``run_reports.compare``'s input. Every scenario's truths
are closed forms: the population mean curves (over training seeds and perturbation draws) that the seed
intervals must cover, and each simulated table's own expected curve (over perturbation draws only), which
the trials-only intervals of one table per side must cover. ``coverage`` runs the toolkit's own
``cognitive_reserve.contrasts`` on many studies at once and counts.

``bench/coverage_seeds.py`` prints the table and writes it into ``docs/intervals.md``; a test recomputes it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cognitive_reserve.contrasts import SideLevel, contrast_moments, crossover_interval
from cognitive_reserve.crossover import crossover_level

LEVELS = np.array([0.0, 0.1, 0.2, 0.3, 0.4])
TRIALS = 20
SEEDS = (1, 2, 3, 5, 10)
CONFIDENCE = 0.95
#: Studies per cell of the table: ±2 SE of a 95 % coverage is ±1.4 points.
STUDIES = 1000
#: Planning: seeds per side and the advantage at the grid's ends in seed standard deviations.
PLANNING_SEEDS = (2, 3, 4, 5, 6, 8, 10)
PLANNING_EFFECTS = (1.0, 2.0, 3.0, 4.0)
#: Where each table goes in ``docs/intervals.md``.
MARKERS = {
    "coverage": ("<!-- coverage-seeds -->", "<!-- end coverage-seeds -->"),
    "planning": ("<!-- seeds-planning -->", "<!-- end seeds-planning -->"),
}

Draw = Callable[[np.random.Generator, int, int], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Scenario:
    """A known truth: ``draw(rng, studies, seeds)`` gives the trial values of both sides ``(R, S, L, n)`` (the
    undamaged level's first trial only counts) and each table's own expected curve ``(R, S, L)``."""

    name: str
    what: str
    direction: str  # which way the metric is better
    shared_masks: bool  # every table draws the same trials (the sweeps' default)
    truth_a: np.ndarray
    truth_b: np.ndarray
    draw: Draw


def _seed_shape(rng: np.random.Generator, studies: int, seeds: int, offset: np.ndarray) -> np.ndarray:
    """A seed's own deviation at every level: a random offset (``offset`` draws) plus a random slope."""
    slope = 0.1 * rng.standard_normal((studies, seeds, 1)) * LEVELS / LEVELS[-1]
    return offset[..., None] + slope


def _additive(
    mean_a: np.ndarray, mean_b: np.ndarray, seed_offsets: Callable, shared: Callable | None, own_sd: float
) -> Draw:
    """Values = mean curve + the seed's deviation + the mask's shared effect (``shared``, alike for every table)
    + the table's own trial noise (sd ``own_sd`` at the last level, growing with the level)."""

    def draw(rng: np.random.Generator, studies: int, seeds: int):
        scale = (LEVELS / LEVELS[-1])[None, None, :, None]
        sides, own = [], []
        common = None if shared is None else shared(rng, (studies, 1, len(LEVELS), TRIALS)) * scale
        for mean in (mean_a, mean_b):
            curve = mean[None, None, :] + _seed_shape(rng, studies, seeds, seed_offsets(rng, (studies, seeds)))
            noise = own_sd * scale * rng.standard_normal((studies, seeds, len(LEVELS), TRIALS))
            sides.append(curve[..., None] + noise + (0.0 if common is None else common))
            own.append(curve)
        return sides[0], sides[1], own[0], own[1]

    return draw


def _accuracy(error_a: np.ndarray, error_b: np.ndarray) -> Draw:
    """Accuracy on 100 items near 1: a seed's error rate is the curve's times a lognormal factor of mean 1; a
    trial's errors are binomial at that rate times the mask's factor (gamma, mean 1, alike for every table)."""

    def draw(rng: np.random.Generator, studies: int, seeds: int):
        mask = rng.gamma(4.0, 0.25, (studies, 1, len(LEVELS), TRIALS))
        mask[:, :, 0] = 1.0  # the undamaged model is scored once, without a mask
        sides, own = [], []
        for error in (error_a, error_b):
            factor = np.exp(0.3 * rng.standard_normal((studies, seeds, 1)) - 0.045)
            rate = error[None, None, :] * factor
            errors = rng.binomial(100, np.minimum(rate[..., None] * mask, 1.0)) / 100
            errors[:, :, 0] = rate[:, :, 0, None]  # the undamaged error is the model's own
            sides.append(1.0 - errors)
            own.append(1.0 - rate)
        return sides[0], sides[1], own[0], own[1]

    return draw


def _centred_exponential(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.exponential(1.0, shape) - 1.0


def _centred_chi_square(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return (rng.chisquare(1, shape) - 1.0) / math.sqrt(2)


MONO, BI = 1.0 + 4.0 * LEVELS, 1.3 + 2.0 * LEVELS  # lower is better; the curves cross at 0.15
SCENARIOS = (
    Scenario(
        "normal", "normal seed offsets (sd 0.1) and slopes; every table its own masks, normal trial noise",
        "lower", False, MONO, BI,
        _additive(MONO, BI, lambda rng, shape: 0.1 * rng.standard_normal(shape), None, 0.1),
    ),
    Scenario(
        "skewed, shared masks", "skewed seed offsets (centred exponential, sd 0.1); the same masks for every "
        "table, their effect skewed (centred χ²₁, sd 0.15), plus normal noise (sd 0.05)",
        "lower", True, MONO, BI,
        _additive(MONO, BI, lambda rng, shape: 0.1 * _centred_exponential(rng, shape),
                  lambda rng, shape: 0.15 * _centred_chi_square(rng, shape), 0.05),
    ),
    Scenario(
        "heavy-tailed seeds", "seed offsets Student t with 3 degrees of freedom (scale 0.06: outlier seeds); "
        "shared normal mask effects (sd 0.1), normal noise (sd 0.05)",
        "lower", True, MONO, BI,
        _additive(MONO, BI, lambda rng, shape: 0.06 * rng.standard_t(3, shape),
                  lambda rng, shape: 0.1 * rng.standard_normal(shape), 0.05),
    ),
    Scenario(
        "accuracy near 1", "accuracy on 100 items (error 0.4 % to 8.4 %; at 0.1 about 40 % of trials score "
        "1.0), binomial trials, shared masks, lognormal seed factors",
        "higher", True, 1.0 - (0.004 + 0.5 * LEVELS**2), 1.0 - (0.02 + 0.1 * LEVELS),
        _accuracy(0.004 + 0.5 * LEVELS**2, 0.02 + 0.1 * LEVELS),
    ),
)  # fmt: skip


@dataclass(frozen=True)
class Cell:
    """Coverage of one scenario at one number of seeds per side (one table per side: the trials only)."""

    scenario: str
    seeds: int
    band: float | None  # B's mean curve, every damaged level (None: one table, its band is the sweep summary's)
    difference: float  # B − A, every damaged level
    crossover: float
    bounded: float  # share of cross-over intervals with both ends inside the grid
    not_identified: float  # open at both ends


def coverage(scenario: Scenario, seeds: int, studies: int = STUDIES, seed: int = 0) -> Cell:
    """Run the toolkit's intervals on ``studies`` simulated studies of ``seeds`` seeds per side."""
    rng = np.random.default_rng([seed, seeds, SCENARIOS.index(scenario)])
    values_a, values_b, own_a, own_b = scenario.draw(rng, studies, seeds)
    if seeds == 1:  # one table per side: the truth is that table's own curve
        truth_a, truth_b = own_a[:, 0], own_b[:, 0]
    else:
        truth_a, truth_b = np.broadcast_to(scenario.truth_a, (studies, len(LEVELS))), scenario.truth_b
    side_a, side_b = _side(values_a), _side(values_b)
    paired = [scenario.shared_masks or level == 0 for level in range(len(LEVELS))]
    damaged = slice(1, None)

    band = None
    if seeds > 1:
        _, low, high = contrast_moments([(1.0, side_b)], paired).level_intervals(CONFIDENCE)
        band = _share(low, high, np.broadcast_to(truth_b, low.shape), damaged)
    _, low, high = contrast_moments([(-1.0, side_a), (1.0, side_b)], paired).level_intervals(CONFIDENCE)
    difference = _share(low, high, truth_b - truth_a, damaged)

    sign = 1.0 if scenario.direction == "lower" else -1.0
    moments = contrast_moments([(sign, side_a), (-sign, side_b)], paired)
    low, high = crossover_interval(moments, LEVELS, CONFIDENCE)
    advantage = np.broadcast_to(sign * (truth_a - truth_b), (studies, len(LEVELS)))
    covered = [_covers(lo, hi, *crossover_level(LEVELS, row)) for lo, hi, row in zip(low, high, advantage, strict=True)]
    bounded = float(np.mean(np.isfinite(low) & np.isfinite(high)))
    not_identified = float(np.mean((low == -math.inf) & (high == math.inf)))
    return Cell(scenario.name, seeds, band, difference, float(np.mean(covered)), bounded, not_identified)


def _side(values: np.ndarray) -> list[SideLevel]:
    """Each level's cell: the undamaged level's first trial only."""
    cells = []
    for level in range(len(LEVELS)):
        trials = values[:, :, level, :1] if level == 0 else values[:, :, level]
        cells.append(SideLevel(trials.mean(axis=-1), trials))
    return cells


def _share(low: np.ndarray, high: np.ndarray, truth: np.ndarray, levels: slice) -> float:
    return float(np.mean((low[:, levels] <= truth[:, levels]) & (truth[:, levels] <= high[:, levels])))


def _covers(low: float, high: float, status: str, level: float | None) -> bool:
    if status == "crossing":
        return low <= level <= high  # type: ignore[operator]
    return high == math.inf if status == "none" else low == -math.inf


def coverage_table(studies: int = STUDIES) -> list[Cell]:
    return [coverage(scenario, seeds, studies) for scenario in SCENARIOS for seeds in SEEDS]


def bounded_share(seeds: int, effect: float, studies: int = STUDIES) -> float:
    """Share of studies whose cross-over interval has both ends in the grid, when the advantage runs linearly
    from ``-effect`` to ``+effect`` seed standard deviations across the grid (the curves cross at its middle),
    each seed's curve shifted by a normal offset, the perturbation deterministic (one trial per level)."""
    rng = np.random.default_rng([seeds, int(10 * effect)])
    advantage = np.linspace(-effect, effect, len(LEVELS))
    side_a = rng.standard_normal((studies, seeds, 1)) + np.zeros(len(LEVELS))
    side_b = rng.standard_normal((studies, seeds, 1)) - advantage
    cells = [[SideLevel(side[:, :, level], side[:, :, level, None]) for level in range(len(LEVELS))]
             for side in (side_a, side_b)]  # fmt: skip
    moments = contrast_moments([(1.0, cells[0]), (-1.0, cells[1])], [True] * len(LEVELS))
    low, high = crossover_interval(moments, LEVELS, CONFIDENCE)
    return float(np.mean(np.isfinite(low) & np.isfinite(high)))


def markdown(cells: list[Cell]) -> str:
    """The coverage table of ``docs/intervals.md``."""
    lines = [
        "| scenario | seeds per side | mean curve | B − A at a level | cross-over | cross-over bounded "
        "| not identified |",
        "|---|---|---|---|---|---|---|",
    ]
    for cell in cells:
        seeds = "1 (trials only)" if cell.seeds == 1 else str(cell.seeds)
        figures = (cell.band, cell.difference, cell.crossover, cell.bounded, cell.not_identified)
        shown = ["—" if f is None else f"{100 * f:.1f} %" for f in figures]
        lines.append(f"| {cell.scenario} | {seeds} | " + " | ".join(shown) + " |")
    return "\n".join(lines)


def planning_markdown() -> str:
    """The planning table of ``docs/intervals.md``: bounded cross-over intervals by seeds and effect."""
    head = " | ".join(f"±{effect:g} sd" for effect in PLANNING_EFFECTS)
    lines = [f"| seeds per side | {head} |", "|---|" + "---|" * len(PLANNING_EFFECTS)]
    for seeds in PLANNING_SEEDS:
        shares = " | ".join(f"{100 * bounded_share(seeds, effect):.0f} %" for effect in PLANNING_EFFECTS)
        lines.append(f"| {seeds} | {shares} |")
    return "\n".join(lines)


def replace_table(page: str, which: str, table: str) -> str:
    """``page`` with the text between the ``MARKERS`` of ``which`` replaced by ``table``."""
    start, end = MARKERS[which]
    head, rest = page.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{table}\n{end}{tail}"
