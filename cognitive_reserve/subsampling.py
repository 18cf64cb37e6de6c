"""Subsampled trials with a paired control variate: score a damaged model on a seeded subset of the data.

A grid's ``eval_fraction`` (``1.0``, a number in (0, 1), or ``auto``) lets each trial of a random level
score the damaged model on a subset of the evaluation *units* (the cached batches; under DDP, unit b is
batch b of every process) instead of all ``N`` of them. The clean model's metric state of every unit,
``c_b``, is computed once per sweep; a trial that scores the damaged model on the units ``S`` (``n`` of
them, the first ``n`` of a permutation seeded by the trial's seed, so two models swept with the same
seeds see the same subsets) estimates every state total of its full-data evaluation by

    D̂ = C + N/n · Σ_{b∈S} (d_b − c_b),        C = Σ_b c_b (the clean model on all the data),

the difference estimator, unbiased over the subset draw for every total (summed NLL, token and byte
counts, squared errors, confusion counts). The metric is then computed from the estimated totals:

- additive metrics (a sum, or a mean over a fixed count: ``mse``, ``nll``, ``loss``): unbiased;
- ratio metrics (``bits_per_byte``, ``accuracy``): the ratio of the estimated totals (the ratio
  estimator); their denominators (bytes, items) do not depend on the damage, so the estimate is exact
  for them and the ratio is unbiased;
- ``perplexity`` = exp(NLL / tokens): the exponential of an unbiased ratio, biased upwards by about
  half the subset-noise variance of the log (second order);
- anything else (``mcc``, ``f1``: not linear in the counts) is not estimated: such a subject's trials
  use the whole data (with a warning), as do subjects that cannot score units (``UnitScoring``).

``auto`` chooses ``n`` per level from the trials measured so far (``allocation``); its intervals stay
intervals over trials, whose values now include the subset noise, so they cover it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from cognitive_reserve.allocation import TrialRecord, pilot_trials, plan
from cognitive_reserve.errors import ConfigError, check_number
from cognitive_reserve.seeding import trial_seed

if TYPE_CHECKING:
    from cognitive_reserve.adaptive import AdaptiveTrials

AUTO = "auto"
EvalFraction = float | Literal["auto"]
#: A metric's state: its sum-reduced tensors by name (a sum over units is a state again).
State = dict[str, torch.Tensor]
#: Groups of the delete-a-group jackknife that measures a trial's subset noise (``auto`` levels).
JACKKNIFE_GROUPS = 8
#: Metric name fragments a subsampled trial estimates, with the estimator used (see the module docstring).
ESTIMATORS = {
    "mse": "difference (unbiased)",
    "nll": "difference (unbiased)",
    "loss": "difference (unbiased)",
    "bits_per_byte": "ratio of estimated totals, exact denominator (unbiased)",
    "accuracy": "ratio of estimated totals, exact denominator (unbiased)",
    "perplexity": "exp of an unbiased ratio (second-order bias)",
}


@dataclass(frozen=True)
class UnitScoring:
    """How a subject scores parts of its evaluation data (what a subsampled trial needs).

    ``sizes()``: evaluation examples in each unit, over all processes (called once per sweep, on every
    process at once). ``states(units)``: the metric state of the module as it is now on each unit (this
    process's part; a unit this process lacks gives a zero state). ``values(state)``: the metrics of a
    state, summed over processes first (torchmetrics does it in ``compute``).
    """

    sizes: Callable[[], Sequence[int]]
    states: Callable[[Sequence[int]], list[State]]
    values: Callable[[State], Mapping[str, float]]


def check_eval_fraction(field: str, value: object) -> EvalFraction:
    """``auto`` or a number in (0, 1]."""
    if value == AUTO:
        return AUTO
    if isinstance(value, str):
        raise ConfigError(field, value, "must be 'auto' or a number in (0, 1]")
    return float(check_number(field, value, low=0, high=1, low_open=True))


def check_trial_batch(field: str, trial_batch: int, fractions: Iterable[EvalFraction]) -> None:
    """Stacked scoring (``trial_batch`` > 1) scores the whole data: refuse it next to a subsampled grid."""
    if trial_batch > 1 and any(fraction != 1.0 for fraction in fractions):
        reason = "subsampled trials (eval_fraction other than 1.0) are scored in place; use 1"
        raise ConfigError(field, trial_batch, reason)


def estimator(metric: str) -> str | None:
    """How a subsampled trial estimates ``metric`` (None: it does not)."""
    name = metric.lower()
    return next((how for fragment, how in ESTIMATORS.items() if fragment in name), None)


def add_states(states: Iterable[State]) -> State:
    """The element-wise sum of states (float64)."""
    total: State = {}
    for state in states:
        for name, tensor in state.items():
            total[name] = total[name] + tensor if name in total else tensor.double().clone()
    return total


def difference_estimate(clean_total: State, differences: Sequence[State], total_units: int) -> State:
    """``C + N/n Σ (d − c)`` from the per-unit differences ``d − c`` of ``n`` sampled units."""
    scale = total_units / len(differences)
    summed = add_states(differences)
    return {name: clean_total[name] + scale * summed[name] for name in clean_total}


def subset(seed: int, total_units: int) -> list[int]:
    """The order in which a trial with ``seed`` samples units: its first ``n`` are its subset of size ``n``."""
    generator = torch.Generator().manual_seed(trial_seed(seed, "eval_subset", 0, 0))
    return torch.randperm(total_units, generator=generator).tolist()


@dataclass
class _LevelPlan:
    fraction: EvalFraction
    trials: int | AdaptiveTrials
    records: dict[int, TrialRecord] = field(default_factory=dict)  # by trial index
    least_trials: int = 0  # planned after the pilots (adaptive rules): the level stops no earlier


class Subsampler:
    """The subsampled scoring of one subject in one sweep: the clean pass, subsets, estimates, allocation."""

    def __init__(
        self, scoring: UnitScoring, levels: Mapping[int, _LevelPlan], precision: Callable[[], AbstractContextManager]
    ) -> None:
        self.scoring = scoring
        self.levels = levels
        self.sizes = list(scoring.sizes())
        self.total_units = len(self.sizes)
        with torch.inference_mode(), precision():
            self.clean = [_detached(s) for s in scoring.states(range(self.total_units))]
            self.clean_total = add_states(self.clean)
            self.metrics = list(scoring.values(self.clean_total))
        self.examples: dict[tuple[int, int], int] = {}

    @classmethod
    def open(
        cls,
        name: str,
        scoring: UnitScoring | None,
        levels: Iterable[tuple[int, bool, EvalFraction, int | AdaptiveTrials]],
        precision: Callable[[], AbstractContextManager],
    ) -> Subsampler | None:
        """A subsampler for the random levels ``(index, deterministic, eval_fraction, trials)`` whose fraction is
        not 1.0; None when there are none, or (with a warning) when the subject cannot be subsampled."""
        plans = {i: _LevelPlan(f, t) for i, deterministic, f, t in levels if f != 1.0 and not deterministic}
        if not plans:
            return None
        if scoring is None:
            warnings.warn(f"model {name} cannot score parts of its data: eval_fraction ignored", stacklevel=3)
            return None
        sampler = cls(scoring, plans, precision)
        unsupported = [metric for metric in sampler.metrics if estimator(metric) is None]
        if unsupported:
            reason = f"metrics {unsupported} are not sums over examples: its trials score the whole data"
            warnings.warn(f"model {name}: {reason} (eval_fraction ignored)", stacklevel=3)
            return None
        return sampler

    def covers(self, level_index: int) -> bool:
        """Whether the trials of this level are subsampled."""
        return level_index in self.levels

    def least_trials(self, level_index: int) -> int:
        """The trials an ``auto`` level with an adaptive rule gets at least: the count its pilots planned
        (two-stage sampling: a level does not stop early on a chance run of close values)."""
        level = self.levels.get(level_index)
        return level.least_trials if level is not None else 0

    def needs_rescore(self, level_index: int, trial: int) -> bool:
        """Whether a resumed trial must be scored again for the allocation (its subset noise is not in the CSV)."""
        level = self.levels.get(level_index)
        return level is not None and level.fraction == AUTO and trial not in level.records

    def evaluator(self, level_index: int, trial: int, seed: int) -> Callable[[], dict[str, float]]:
        """What scores this trial of a subsampled level with the module damaged (in place)."""
        level = self.levels[level_index]

        def evaluate() -> dict[str, float]:
            previous = [level.records[t] for t in sorted(level.records) if t < trial]
            planned = plan(level.fraction, level.trials, previous, self.total_units)
            if level.fraction == AUTO and len(previous) == pilot_trials(level.trials):
                level.least_trials = planned.least_trials
            chosen = subset(seed, self.total_units)[: planned.units]
            values, within = self._estimate(chosen, with_noise=level.fraction == AUTO)
            level.records[trial] = TrialRecord(planned.units, values, within)
            self.examples[(level_index, trial)] = sum(self.sizes[b] for b in chosen)
            return values

        return evaluate

    def _estimate(self, chosen: list[int], with_noise: bool) -> tuple[dict[str, float], dict[str, float]]:
        """The trial's metric estimates from the units ``chosen``, and each one's subset-noise variance."""
        damaged = self.scoring.states(chosen)
        differences = [_difference(d, self.clean[b]) for b, d in zip(chosen, damaged, strict=True)]
        values = dict(self.scoring.values(difference_estimate(self.clean_total, differences, self.total_units)))
        noise = {metric: 0.0 for metric in values}
        if with_noise and 1 < len(chosen) < self.total_units:
            noise = self._jackknife(differences, values)
        return values, noise

    def _jackknife(self, differences: list[State], values: Mapping[str, float]) -> dict[str, float]:
        """Delete-a-group jackknife variance of each metric estimate, with the finite-population correction."""
        count = len(differences)
        groups = np.array_split(np.arange(count), min(count, JACKKNIFE_GROUPS))
        replicates: dict[str, list[float]] = {metric: [] for metric in values}
        for group in groups:
            dropped = set(group.tolist())
            kept = [d for i, d in enumerate(differences) if i not in dropped]
            estimate = difference_estimate(self.clean_total, kept, self.total_units)
            for metric, value in self.scoring.values(estimate).items():
                replicates[metric].append(value)
        spread = (len(groups) - 1) / len(groups) * (1 - count / self.total_units)
        return {metric: spread * float(np.sum((np.array(r) - np.mean(r)) ** 2)) for metric, r in replicates.items()}


def _difference(damaged: State, clean: State) -> State:
    return {name: damaged[name].double() - clean[name].double() for name in clean}


def _detached(state: State) -> State:
    """A plain (not inference-mode) float64 copy, usable outside ``torch.inference_mode``."""
    with torch.inference_mode(False):
        return {name: tensor.double().clone() for name, tensor in state.items()}
