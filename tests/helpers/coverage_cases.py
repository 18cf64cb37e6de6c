"""Toy models whose mean damage is known, for the coverage of per-level intervals (``bench/coverage.py``, tests).

Each ``Case`` draws the trial values of one level (levels × trials at once, numpy) exactly as a sweep's seeded
trials would measure them on its model, and knows the true mean over trials: a closed form, or a Monte Carlo
mean of ``TRUTH_DRAWS`` trials (its error is under 1 % of a 20-trial interval's half-width).

- ``mse_noise``: squared error of a linear regression under Gaussian noise on its 2 weights, inputs of very
  unequal scale: the trial values are χ²₁-like (skewness 2.8). Closed form.
- ``mse_deletion``: a linear regression with 40 weights of equal size (±1) on inputs of equal scale, deletion at
  p = 0.01: 67 % of the trials delete nothing and sit at the clean value, the others pay about the same per
  deleted weight (skewness 1.6). Closed form.
- ``mse_deletion_uneven``: the same with weights and input scales of very different sizes: the mean rests on
  the few weights that matter, each deleted in 1 % of the trials (skewness 4.3): an event most levels of 20 or
  even 50 trials never see. Closed form.
- ``accuracy_near_1``: a linear classifier that is right on all 100 items, deletion at p = 0.004: 84 % of the
  trials at accuracy 1.0 (the bound). Monte Carlo.
- ``accuracy_near_0``: the same classifier with every label flipped (wrong on every item), noise σ = 0.02 on its
  weights: 52 % of the trials at accuracy 0.0. Monte Carlo.
- ``digits_deletion``, ``digits_noise``: a linear multitask model on scikit-learn's digits like
  ``configs/linear/digits.yaml`` (T = 10 label-pair tasks, k = 4, unit-norm ridge task vectors, the SVD
  solution, MSE against cᵢᵀx on the held-out 30 %), deletion p = 0.1 and noise σ = 0.1 on W; the closed forms
  of ``cognitive_reserve.theory.expected_mse``.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from cognitive_reserve.adaptive import AdaptiveTrials, narrow_enough
from cognitive_reserve.intervals import HONEST_FLAGS, intervals
from cognitive_reserve.perturbations import GaussianNoise, RandomDeletion, hit_probability
from cognitive_reserve.theory import TaskMoments, expected_mse, svd_solution

#: Monte Carlo trials behind a truth that has no closed form.
TRUTH_DRAWS = 200_000
#: Draws of (levels × trials) values: ``draw((levels, trials), generator)``.
Draw = Callable[[tuple[int, ...], np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class Case:
    """One level of one toy model: what it is, the metric (its range bounds the interval), draws and truth, and the
    perturbation and level that draw it."""

    name: str
    what: str
    metric: str
    draw: Draw
    truth: float
    perturbation: str
    level: float

    @property
    def hit_probability(self) -> float | None:
        """The level where it is the per-trial probability that a given weight is damaged (a deletion's p), as a
        sweep's summary tells the intervals (``cognitive_reserve.perturbations.hit_probability``)."""
        return hit_probability(self.perturbation, self.level)


class Regression:
    """``x·w`` against ``y`` on fixed data; MSE as a quadratic form in the (damaged) weights."""

    def __init__(
        self, scales: tuple[float, ...], seed: int, items: int = 300, weight_noise: float = 0.0, equal: bool = False
    ) -> None:
        generator = np.random.default_rng(seed)
        x = generator.standard_normal((items, len(scales))) * np.asarray(scales)
        w = generator.standard_normal(len(scales))
        w = np.sign(w) if equal else w
        y = x @ w + 0.3 * generator.standard_normal(items)
        self.w = w + weight_noise * generator.standard_normal(len(scales))
        self.second = x.T @ x / items
        self.cross = x.T @ y / items
        self.target = float(y @ y / items)

    def mse(self, weights: np.ndarray) -> np.ndarray:
        quadratic = np.einsum("...i,ij,...j->...", weights, self.second, weights)
        return quadratic - 2 * weights @ self.cross + self.target

    def noise(self, sigma: float) -> Draw:
        return lambda shape, g: self.mse(self.w + sigma * g.standard_normal((*shape, len(self.w))))

    def noise_truth(self, sigma: float) -> float:
        return float(self.mse(self.w) + sigma**2 * np.trace(self.second))

    def deletion(self, p: float) -> Draw:
        return lambda shape, g: self.mse(self.w * (g.random((*shape, len(self.w))) >= p))

    def deletion_truth(self, p: float) -> float:
        keep, w = 1 - p, self.w
        spread = p * keep * float(np.sum(w**2 * np.diag(self.second)))
        return float(keep**2 * (w @ self.second @ w) - 2 * keep * (w @ self.cross) + self.target + spread)


class Classifier:
    """``sign(x·w)`` on ``items`` Gaussian points labelled by the clean model itself (or its opposite)."""

    def __init__(self, items: int, dim: int, seed: int, flipped: bool = False) -> None:
        generator = np.random.default_rng(seed)
        self.x = generator.standard_normal((items, dim))
        self.w = generator.standard_normal(dim)
        self.y = np.sign(self.x @ self.w) * (-1 if flipped else 1)

    def accuracy(self, weights: np.ndarray) -> np.ndarray:
        return (np.sign(weights @ self.x.T) == self.y).mean(axis=-1)

    def deletion(self, p: float) -> Draw:
        return lambda shape, g: self.accuracy(self.w * (g.random((*shape, len(self.w))) >= p))

    def noise(self, sigma: float) -> Draw:
        return lambda shape, g: self.accuracy(self.w + sigma * g.standard_normal((*shape, len(self.w))))


def monte_carlo_truth(draw: Draw, seed: int, draws: int = TRUTH_DRAWS, chunk: int = 50_000) -> float:
    generator = np.random.default_rng(seed)
    return float(np.mean(np.concatenate([draw((chunk,), generator) for _ in range(draws // chunk)])))


class Digits:
    """A T-task linear model on the digits (see the module docstring), scored per trial in float64."""

    def __init__(self, num_tasks: int = 10, k: int = 4, ridge: float = 1.0, seed: int = 0) -> None:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        generator = np.random.default_rng(seed)
        test = np.zeros(len(bunch.target), bool)
        for label in range(10):
            members = generator.permutation(np.flatnonzero(bunch.target == label))
            test[members[: round(0.3 * len(members))]] = True
        train_x, test_x = bunch.data[~test], bunch.data[test]
        std = train_x.std(0)
        prepare = lambda x: np.hstack([(x - train_x.mean(0)) / np.where(std > 1e-8, std, 1.0), np.ones((len(x), 1))])  # noqa: E731
        pairs = [tuple(pair) for pair in generator.permutation(list(itertools.combinations(range(10), 2)))[:num_tasks]]
        columns, items = [], []
        for task, (a, b) in enumerate(pairs):
            chosen = np.isin(bunch.target[~test], (a, b))
            x, y = prepare(train_x[chosen]), (bunch.target[~test][chosen] == b).astype(float)
            c = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ y)
            columns.append(c / np.linalg.norm(c))
            items.append((task, prepare(test_x[np.isin(bunch.target[test], (a, b))])))
        self.c = np.stack(columns, axis=1)  # d × T
        w, gamma = svd_solution(torch.from_numpy(self.c), k)
        self.w, self.gamma = w.numpy(), gamma.numpy()
        self.items = [(task, x, x @ self.c[:, task]) for task, x in items]
        self.second = np.stack([x.T @ x / len(x) for _, x, _ in self.items])  # T × d × d
        self.cross = np.stack([x.T @ y / len(x) for _, x, y in self.items])  # T × d
        self.target = np.array([y @ y / len(y) for _, _, y in self.items])

    def mse(self, weights: np.ndarray) -> np.ndarray:
        """Task-averaged MSE for each damaged ``W`` of ``weights`` (… × k × d), from the test items' moments:
        ``MSE_i = uᵢᵀ Sᵢ uᵢ − 2 uᵢᵀ bᵢ + eᵢ`` with ``uᵢ = Wᵀγᵢ``."""
        u = np.swapaxes(self.gamma.T @ weights.reshape(-1, *self.w.shape), 0, 1)  # T × copies × d
        quadratic = ((u @ self.second) * u).sum(axis=2)
        per_task = quadratic - 2 * (u * self.cross[:, None, :]).sum(axis=2) + self.target[:, None]
        return per_task.mean(axis=0).reshape(weights.shape[:-2])

    def deletion(self, p: float) -> Draw:
        return lambda shape, g: self.mse(self.w * (g.random((*shape, *self.w.shape)) >= p))

    def noise(self, sigma: float) -> Draw:
        return lambda shape, g: self.mse(self.w + sigma * g.standard_normal((*shape, *self.w.shape)))

    def truth(self, perturbation: RandomDeletion | GaussianNoise) -> float:
        """The closed-form expected MSE (``cognitive_reserve.theory.expected_mse``) from the test items' moments."""
        clean = [(x, x @ self.w.T @ self.gamma[:, task], y) for task, x, y in self.items]
        mean = lambda values: torch.tensor([float(v.mean()) for v in values], dtype=torch.float64)  # noqa: E731
        moments = TaskMoments(
            sq_norm_x=mean((x**2).sum(1) for x, _, _ in clean),
            sq_x=torch.stack([torch.from_numpy((x**2).mean(0)) for x, _, _ in clean]),
            pred_sq=mean(prediction**2 for _, prediction, _ in clean),
            pred_target=mean(prediction * y for _, prediction, y in clean),
            target_sq=mean(y**2 for _, _, y in clean),
        )
        return expected_mse(perturbation, torch.from_numpy(self.w), torch.from_numpy(self.gamma), moments)


@dataclass(frozen=True)
class Stops:
    """Where the levels of an adaptive rule stopped: the interval there, whether it is honest, and the count."""

    low: np.ndarray
    high: np.ndarray
    honest: np.ndarray
    trials: np.ndarray


def adaptive_stops(
    values: np.ndarray,
    bounds: tuple[float, float],
    rule: AdaptiveTrials,
    generator: np.random.Generator,
    hit_probability: float | None = None,
) -> Stops:
    """``rule`` (relative) applied to many levels at once, as ``AdaptiveTrials.settled`` applies it to one: trial
    t of a level is ``values[:, t]`` (fixed in advance, like its seed); a level stops at the first count from
    ``rule.min`` whose interval is honest and narrow enough, or at ``rule.max``."""
    levels = len(values)
    stops = Stops(np.full(levels, np.nan), np.full(levels, np.nan), np.zeros(levels, bool), np.zeros(levels, int))
    active = np.arange(levels)
    for n in range(rule.min, rule.max + 1):
        trials = values[active, :n]
        found = intervals(trials, bounds, generator, hit_probability=hit_probability)
        honest = np.isin(found.flag, HONEST_FLAGS)
        half_width = rule.ci_half_width * np.abs(trials.mean(axis=1))
        done = narrow_enough(found.low, found.high, honest, half_width) | (n == rule.max)
        rows = active[done]
        stops.low[rows], stops.high[rows], stops.honest[rows] = found.low[done], found.high[done], honest[done]
        stops.trials[rows] = n
        active = active[~done]
    return stops


@functools.cache
def cases() -> tuple[Case, ...]:
    """Every case of the coverage bench, in table order (the Monte Carlo truths are computed once)."""
    skewed = Regression(scales=(4.0, 0.3), seed=0)
    equal = Regression(scales=(1.0,) * 40, seed=1, equal=True)
    uneven = Regression(scales=tuple(0.5 + 2 * np.random.default_rng(1).random(40)), seed=1, weight_noise=0.2)
    right, wrong = Classifier(100, 50, seed=0), Classifier(100, 50, seed=0, flipped=True)
    digits = Digits()
    near_1, near_0 = right.deletion(0.004), wrong.noise(0.02)
    noise, deletion = GaussianNoise.name, RandomDeletion.name
    return (
        Case("mse_noise", "squared error under weight noise (χ²₁-like)", "mse", skewed.noise(0.3),
             skewed.noise_truth(0.3), noise, 0.3),
        Case("mse_deletion", "squared error under deletion at p = 0.01 (67 % of trials at the clean value)", "mse",
             equal.deletion(0.01), equal.deletion_truth(0.01), deletion, 0.01),
        Case("mse_deletion_uneven", "the same, weights of very uneven importance (rare large effects)", "mse",
             uneven.deletion(0.01), uneven.deletion_truth(0.01), deletion, 0.01),
        Case("accuracy_near_1", "accuracy near 1 under deletion at p = 0.004 (84 % of trials at 1.0)", "accuracy",
             near_1, monte_carlo_truth(near_1, seed=1), deletion, 0.004),
        Case("accuracy_near_0", "accuracy near 0 under noise (52 % of trials at 0.0)", "accuracy", near_0,
             monte_carlo_truth(near_0, seed=2), noise, 0.02),
        Case("digits_deletion", "digits, T = 10, deletion p = 0.1", "mse_task_vector", digits.deletion(0.1),
             digits.truth(RandomDeletion(0.1)), deletion, 0.1),
        Case("digits_noise", "digits, T = 10, noise σ = 0.1", "mse_task_vector", digits.noise(0.1),
             digits.truth(GaussianNoise(0.1)), noise, 0.1),
    )  # fmt: skip
