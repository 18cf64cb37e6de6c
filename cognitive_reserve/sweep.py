"""Levels × trials of seeded perturbations on any model, as a tidy table of rows.

The sweep is framework-free: a ``SweepSubject`` bundles the module to damage, which of its
parameters to damage, and an ``evaluate()`` callable returning ``{metric: value}`` on cached
data. The targeted tensors are snapshotted once per sweep (the only extra memory: no model copy),
damaged in place with draws made on their device, and restored with ``copy_`` after every trial.
``evaluate()`` runs under ``torch.inference_mode`` (optionally bf16 autocast), so a sweep costs about
its number of trials times one evaluation pass. A subject may also offer ``evaluate_stack`` (hand-written
for the linear models; built with ``torch.func.vmap`` for every ``SweepableMixin`` model): with
``trial_batch`` > 1 the sweep scores that many damaged copies of the targets in one call
(``cognitive_reserve.scoring``), same rows. A grid's ``trials`` may be an adaptive rule instead of a count
(``cognitive_reserve.adaptive``): each level then gets trials until its 95% interval is narrow enough. A grid's
``eval_fraction`` (not 1.0) scores each random trial on a seeded subset of the evaluation data, with the clean
model as a control variate (``cognitive_reserve.subsampling``); the rows then record ``eval_examples``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from cognitive_reserve.adaptive import AdaptiveTrials
from cognitive_reserve.errors import ConfigError, check_int
from cognitive_reserve.perturbations import PERTURBATIONS, Perturbation, Weights, make_perturbation
from cognitive_reserve.rows import CSV_COLUMNS, SweepRow
from cognitive_reserve.scoring import open_scorer, precision
from cognitive_reserve.seeding import trial_seed
from cognitive_reserve.subject import SweepSubject
from cognitive_reserve.subsampling import EvalFraction, Subsampler, check_eval_fraction
from cognitive_reserve.subsampling import check_trial_batch as check_subsampled_trial_batch
from cognitive_reserve.targets import group_name, select_targets, target_parts

__all__ = [
    "CSV_COLUMNS",
    "SweepGrid",
    "SweepRow",
    "SweepSubject",
    "check_reach",
    "check_stacking",
    "check_trial_batch",
    "reachable_grids",
    "run_sweep",
]


@dataclass(frozen=True)
class SweepGrid:
    """One perturbation family swept over ``levels`` with ``trials`` seeded draws per level.

    ``trials`` is a count, or an adaptive rule (``cognitive_reserve.adaptive``): an ``AdaptiveTrials`` or its
    config mapping ``{ci_half_width: X, relative: false, min: 20, max: 50}``. ``eval_fraction``: 1.0 (every
    trial scores all the data), a number in (0, 1) or ``auto`` (``cognitive_reserve.subsampling``).
    """

    perturbation: str
    levels: Sequence[float]
    trials: int | AdaptiveTrials | Mapping[str, Any] = 20
    options: Mapping[str, Any] = field(default_factory=dict)
    eval_fraction: EvalFraction = 1.0

    def __post_init__(self) -> None:
        if self.perturbation not in PERTURBATIONS:
            raise ConfigError("perturbation", self.perturbation, f"unknown; choose one of {sorted(PERTURBATIONS)}")
        if isinstance(self.levels, str | bytes) or len(self.levels) == 0:
            raise ConfigError(f"{self.perturbation}.levels", self.levels, "give a non-empty list of numbers")
        if isinstance(self.trials, Mapping):
            object.__setattr__(self, "trials", AdaptiveTrials.from_config(f"{self.perturbation}.trials", self.trials))
        elif not isinstance(self.trials, AdaptiveTrials):
            check_int(f"{self.perturbation}.trials", self.trials, minimum=1)
        fraction = check_eval_fraction(f"{self.perturbation}.eval_fraction", self.eval_fraction)
        object.__setattr__(self, "eval_fraction", fraction)
        object.__setattr__(self, "levels", tuple(self.levels))
        self.perturbations()  # validates every level now, before any work starts

    def perturbations(self) -> list[Perturbation]:
        """One perturbation object per level, in grid order."""
        return [make_perturbation(self.perturbation, level, **self.options) for level in self.levels]


def run_sweep(
    subject: SweepSubject,
    grids: Iterable[SweepGrid],
    seed: int = 0,
    *,
    stage: str = "",
    epoch: int | None = None,
    on_trial: Callable[[list[SweepRow]], None] | None = None,
    completed: Iterable[SweepRow] = (),
    progress: bool = False,
    autocast: torch.dtype | None = None,
    trial_batch: int = 1,
) -> list[SweepRow]:
    """Run every grid on ``subject`` and return all rows, in grid order.

    A level with an adaptive ``trials`` rule is measured in rounds (its first ``min`` trials, then one
    more per round while its interval is too wide); the trials of every open level in a round are
    scored together, ``trial_batch`` at a time. ``on_trial`` receives the rows of each newly measured
    trial (one per metric) as soon as they exist. Trials found in ``completed`` (rows of an interrupted
    run of the same sweep) are not measured again: their rows are reused, so a resumed sweep returns
    the uninterrupted table (and an adaptive one takes the same decisions).
    ``trial_batch`` = 1 damages the module's own weights, one trial at a time, and restores them bit
    for bit after every trial, when anything raises, and on SIGINT/SIGTERM. ``trial_batch`` > 1 needs
    ``subject.evaluate_stack``: that many trials at a time are damaged as copies and scored in one call
    (the module is never modified; memory: ``trial_batch`` copies of the targets). The rows are the same.
    Evaluation runs under ``torch.inference_mode()``: tensors it creates (e.g. metric states) are
    inference tensors, so it should reset any state it reuses. ``autocast`` (e.g. ``torch.bfloat16``)
    evaluates under ``torch.autocast`` of that dtype: faster on GPUs, results no longer float32 ones.
    Where ``subject.targets`` is a ``TargetGroup`` (a layer-wise sweep, ``cognitive_reserve.groups``), its
    name fills the rows' ``group`` column, and only rows of that group are reused from ``completed``.
    A grid whose perturbation would damage nothing of the targets (head deletion of MLP weights) is an error.
    """
    grids = list(grids)
    levels = list(_levels(subject, grids, seed))
    check_subsampled_trial_batch("trial_batch", trial_batch, [level.eval_fraction for level in levels])
    check_trial_batch("trial_batch", trial_batch, subject)
    check_stacking("trial_batch", trial_batch, grids)
    check_reach(subject, grids)
    group = group_name(subject.targets)
    done = _completed_trials(completed, subject.name, group)
    device = next(iter(select_targets(subject.module, subject.targets).values())).device
    sampler = Subsampler.open(
        subject.name,
        subject.units,
        [(lv.index, lv.perturbation.deterministic, lv.eval_fraction, lv.trials) for lv in levels],
        lambda: precision(device, autocast),
    )
    measured: list[list[list[SweepRow]]] = [[] for _ in levels]  # rows per level, per trial in trial order
    bar = tqdm(
        total=sum(level.most_trials() for level in levels),
        desc=f"sweep {subject.name}",
        disable=None if progress else True,
        leave=False,
    )
    try:
        with open_scorer(subject, trial_batch, autocast) as score:
            while wanted := [
                trial
                for level, rows in zip(levels, measured, strict=True)
                for trial in level.next(rows, sampler.least_trials(level.index) if sampler else 0)
            ]:
                rows_of = {t.slot: _check_resumed(done[t.key], t.seed) for t in wanted if t.key in done}
                bar.update(len(rows_of))
                todo = [t for t in wanted if t.slot not in rows_of or _rescored(sampler, t)]
                for start in range(0, len(todo), trial_batch):
                    batch = todo[start : start + trial_batch]
                    draws = [(t.perturbation, t.seed) for t in batch]
                    for trial, values in zip(batch, score(draws, _evaluators(sampler, batch)), strict=True):
                        if trial.slot in rows_of:
                            continue  # a resumed trial, scored again only for its subset noise (auto allocation)
                        examples = sampler.examples.get(trial.slot) if sampler else None
                        rows_of[trial.slot] = trial.rows(subject, values, stage, epoch, group, examples)
                        if on_trial is not None:
                            on_trial(rows_of[trial.slot])
                        bar.update()
                for trial in wanted:
                    measured[trial.level_index].append(rows_of[trial.slot])
    finally:
        bar.close()
    return [row for rows in measured for trial_rows in rows for row in trial_rows]


def _evaluators(sampler: Subsampler | None, trials: Sequence[_Trial]) -> list[Callable[[], Any] | None] | None:
    """How each trial is scored when some are subsampled (None: all by ``subject.evaluate``)."""
    if sampler is None:
        return None
    return [sampler.evaluator(*t.slot, t.seed) if sampler.covers(t.level_index) else None for t in trials]


def _rescored(sampler: Subsampler | None, trial: _Trial) -> bool:
    return sampler is not None and sampler.needs_rescore(*trial.slot)


def check_trial_batch(field: str, trial_batch: object, subject: SweepSubject) -> int:
    """``trial_batch`` as an int >= 1 that ``subject`` can score (> 1 needs ``evaluate_stack``)."""
    check_int(field, trial_batch, minimum=1)
    if trial_batch > 1 and subject.evaluate_stack is None:
        reason = f"model {subject.name} scores one trial at a time (no evaluate_stack); use 1"
        raise ConfigError(field, trial_batch, reason)
    return trial_batch


def check_stacking(field: str, trial_batch: int, grids: Iterable[SweepGrid]) -> None:
    """Refuse ``trial_batch`` > 1 when a grid's perturbation cannot damage stacked copies (it hooks the model)."""
    for grid in grids:
        if trial_batch > 1 and not PERTURBATIONS[grid.perturbation].stacks:
            reason = f"{grid.perturbation} hooks the model itself and scores one trial at a time; use 1"
            raise ConfigError(field, trial_batch, reason)


def reachable_grids(subject: SweepSubject, grids: Iterable[SweepGrid]) -> list[SweepGrid]:
    """The grids whose perturbation damages something of ``subject``'s targets (``Perturbation.unreachable``)."""
    weights = _inspected(subject)
    return [grid for grid in grids if grid.perturbations()[0].unreachable(weights) is None]


def check_reach(subject: SweepSubject, grids: Iterable[SweepGrid], field: str = "targets") -> None:
    """Fail in one line when a grid's perturbation would damage nothing of ``subject``'s targets."""
    weights = _inspected(subject)
    for grid in grids:
        reason = grid.perturbations()[0].unreachable(weights)
        if reason is not None:
            raise ConfigError(field, _shown(subject.targets), f"{grid.perturbation}: {reason} (model {subject.name})")


def _inspected(subject: SweepSubject) -> Weights:
    """Read-only views of ``subject``'s targets with its layout: what a perturbation's reach is judged on."""
    return Weights.of(select_targets(subject.module, subject.targets), target_parts(subject.targets), subject.layout)


def _shown(targets: object) -> object:
    return getattr(targets, "name", targets)


@dataclass(frozen=True)
class _Trial:
    """One seeded draw of one perturbation level, and the closed-form expectations of that level."""

    perturbation: Perturbation
    trial: int
    seed: int
    expected: Mapping[str, float]
    level_index: int

    @property
    def key(self) -> tuple[str, float, int]:
        """How the trial's rows are found in a CSV."""
        return (self.perturbation.name, self.perturbation.level, self.trial)

    @property
    def slot(self) -> tuple[int, int]:
        """Where the trial sits in this sweep (two grids may share a perturbation name and level)."""
        return (self.level_index, self.trial)

    def rows(
        self,
        subject: SweepSubject,
        values: Mapping[str, float],
        stage: str,
        epoch: int | None,
        group: str,
        eval_examples: int | None = None,
    ) -> list[SweepRow]:
        """The CSV rows of this trial, one per metric."""
        return [
            SweepRow(
                model=subject.name,
                num_tasks=subject.num_tasks,
                perturbation=self.perturbation.name,
                level=self.perturbation.level,
                trial=self.trial,
                seed=self.seed,
                metric=metric,
                value=value,
                expected=self.expected.get(metric),
                stage=stage,
                epoch=epoch,
                group=group,
                eval_examples=eval_examples,
            )
            for metric, value in values.items()
        ]


@dataclass(frozen=True)
class _Level:
    """One level of a grid: its perturbation, where it sits in the sweep, and how many trials it gets."""

    perturbation: Perturbation
    index: int  # position among all levels of the sweep
    seed_coordinates: tuple[int, str, int]  # (base seed, grid name, index in the grid): a trial's seed with its index
    trials: int | AdaptiveTrials
    expected: Mapping[str, float]
    eval_fraction: EvalFraction = 1.0

    def most_trials(self) -> int:
        """An upper bound of this level's trial count."""
        if self.perturbation.deterministic:
            return 1
        return self.trials if isinstance(self.trials, int) else self.trials.max

    def next(self, measured: list[list[SweepRow]], least: int = 0) -> list[_Trial]:
        """The trials to measure next, given the rows of the first ``len(measured)`` ones (none: done).
        An adaptive level stops no earlier than ``least`` trials (a subsampled level's plan)."""
        count = len(measured)
        if self.perturbation.deterministic or isinstance(self.trials, int):
            wanted = range(count, self.most_trials())
        elif count == 0:
            name, level = self.perturbation.name, self.perturbation.level
            wanted = range(min(self.trials.min, self.trials.cap(name, level)))
        else:
            name, level = self.perturbation.name, self.perturbation.level
            settled = count >= min(least, self.trials.cap(name, level)) and self._settled(measured)
            wanted = range(count, count if settled else count + 1)
        seed_of = self.seed_coordinates
        return [_Trial(self.perturbation, t, trial_seed(*seed_of, t), self.expected, self.index) for t in wanted]

    def _settled(self, measured: list[list[SweepRow]]) -> bool:
        values: dict[str, list[float]] = {}
        for rows in measured:
            for row in rows:
                values.setdefault(row.metric, []).append(row.value)
        seeds = [rows[0].seed for rows in measured]
        return self.trials.settled(self.perturbation.name, self.perturbation.level, seeds, values)


def _levels(subject: SweepSubject, grids: Iterable[SweepGrid], seed: int) -> Iterator[_Level]:
    """Every level of every grid, in grid order."""
    index = 0
    for grid in grids:
        for level_index, perturbation in enumerate(grid.perturbations()):
            expected = dict(subject.expected(perturbation) or {}) if subject.expected else {}
            coordinates = (seed, grid.perturbation, level_index)
            yield _Level(perturbation, index, coordinates, grid.trials, expected, grid.eval_fraction)
            index += 1


def _completed_trials(
    completed: Iterable[SweepRow], model: str, group: str
) -> dict[tuple[str, float, int], list[SweepRow]]:
    done: dict[tuple[str, float, int], list[SweepRow]] = {}
    for row in completed:
        if row.model == model and row.group == group:
            done.setdefault((row.perturbation, row.level, row.trial), []).append(row)
    return done


def _check_resumed(rows: list[SweepRow], seed: int) -> list[SweepRow]:
    if any(row.seed != seed for row in rows):
        raise ConfigError(
            "resume", rows[0].seed, f"the existing sweep file was written with other seeds (expected {seed})"
        )
    return rows
