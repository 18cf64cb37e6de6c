"""Levels × trials of seeded perturbations on any model, as a tidy table of rows.

The sweep is framework-free: a ``SweepSubject`` bundles the module to damage, which of its
parameters to damage, and an ``evaluate()`` callable returning ``{metric: value}`` on cached
data. The targeted tensors are snapshotted once per sweep (the only extra memory: no model copy),
damaged in place with draws made on their device, and restored with ``copy_`` after every trial.
``evaluate()`` runs under ``torch.inference_mode`` (optionally bf16 autocast), so a sweep costs about
its number of trials times one evaluation pass. Models whose evaluation pass is cheaper than a trial's
bookkeeping (the linear ones) may also offer ``evaluate_stack``: with ``trial_batch`` > 1 the sweep
scores that many damaged copies of the targets in one call (``robustness.scoring``), same rows.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from robustness.errors import ConfigError, check_int
from robustness.perturbations import PERTURBATIONS, Perturbation, make_perturbation
from robustness.scoring import open_scorer
from robustness.seeding import trial_seed
from robustness.targets import TargetSpec

#: Column order of every sweep CSV (a contract: other tools read these files).
CSV_COLUMNS = (
    "model", "num_tasks", "perturbation", "level", "trial", "seed",
    "metric", "value", "expected", "stage", "epoch",
)  # fmt: skip


_CSV_CELLS = operator.attrgetter(*CSV_COLUMNS)


@dataclass(frozen=True)
class SweepGrid:
    """One perturbation family swept over ``levels`` with ``trials`` seeded draws per level."""

    perturbation: str
    levels: Sequence[float]
    trials: int = 20
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.perturbation not in PERTURBATIONS:
            raise ConfigError("perturbation", self.perturbation, f"unknown; choose one of {sorted(PERTURBATIONS)}")
        if isinstance(self.levels, str | bytes) or len(self.levels) == 0:
            raise ConfigError(f"{self.perturbation}.levels", self.levels, "give a non-empty list of numbers")
        check_int(f"{self.perturbation}.trials", self.trials, minimum=1)
        object.__setattr__(self, "levels", tuple(self.levels))
        self.perturbations()  # validates every level now, before any work starts

    def perturbations(self) -> list[Perturbation]:
        """One perturbation object per level, in grid order."""
        return [make_perturbation(self.perturbation, level, **self.options) for level in self.levels]


@dataclass
class SweepSubject:
    """What a sweep damages and how it scores the damaged model.

    ``name``/``num_tasks`` fill the CSV's ``model``/``num_tasks`` columns. ``expected`` may return
    a closed-form expectation per metric for a perturbation (or ``None`` where there is none).
    ``evaluate_stack`` (optional) scores several versions of the targets at once: it gets one stack
    ``(copies, *shape)`` per targeted tensor, in target order, and returns one ``{metric: value}`` per
    copy, exactly what ``evaluate()`` returns with the targets set to that copy.
    """

    name: str
    module: nn.Module
    evaluate: Callable[[], Mapping[str, float]]
    targets: TargetSpec = ".*"
    num_tasks: int | None = None
    expected: Callable[[Perturbation], Mapping[str, float] | None] | None = None
    evaluate_stack: Callable[[list[torch.Tensor]], Sequence[Mapping[str, float]]] | None = None


@dataclass(frozen=True)
class SweepRow:
    """One (model, perturbation, level, trial, metric) measurement: one line of the CSV."""

    model: str
    num_tasks: int | None
    perturbation: str
    level: float
    trial: int
    seed: int
    metric: str
    value: float
    expected: float | None = None
    stage: str = ""
    epoch: int | None = None

    def csv_cells(self) -> tuple[Any, ...]:
        """Values in ``CSV_COLUMNS`` order, for ``csv.writer`` (which writes ``None`` as an empty cell)."""
        return _CSV_CELLS(self)


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

    ``on_trial`` receives the rows of each newly measured trial (one per metric) as soon as they
    exist. Trials found in ``completed`` (rows of an interrupted run of the same sweep) are not
    measured again: their rows are reused, so a resumed sweep returns the uninterrupted table.
    ``trial_batch`` = 1 damages the module's own weights, one trial at a time, and restores them bit
    for bit after every trial, when anything raises, and on SIGINT/SIGTERM. ``trial_batch`` > 1 needs
    ``subject.evaluate_stack``: that many trials at a time are damaged as copies and scored in one call
    (the module is never modified; memory: ``trial_batch`` copies of the targets). The rows are the same.
    Evaluation runs under ``torch.inference_mode()``: tensors it creates (e.g. metric states) are
    inference tensors, so it should reset any state it reuses. ``autocast`` (e.g. ``torch.bfloat16``)
    evaluates under ``torch.autocast`` of that dtype: faster on GPUs, results no longer float32 ones.
    """
    check_trial_batch("trial_batch", trial_batch, subject)
    done = _completed_trials(completed, subject.name)
    trials = list(_trials(subject, grids, seed))
    rows_of = {i: _check_resumed(done[t.key], t.seed) for i, t in enumerate(trials) if t.key in done}
    todo = [i for i in range(len(trials)) if i not in rows_of]
    bar = tqdm(
        total=len(trials), initial=len(rows_of), desc=f"sweep {subject.name}",
        disable=None if progress else True, leave=False,
    )  # fmt: skip
    try:
        with open_scorer(subject, trial_batch, autocast) as score:
            for start in range(0, len(todo), trial_batch):
                batch = todo[start : start + trial_batch]
                scores = score([(trials[i].perturbation, trials[i].seed) for i in batch])
                for i, values in zip(batch, scores, strict=True):
                    rows_of[i] = trials[i].rows(subject, values, stage, epoch)
                    if on_trial is not None:
                        on_trial(rows_of[i])
                    bar.update()
    finally:
        bar.close()
    return [row for i in range(len(trials)) for row in rows_of[i]]


def check_trial_batch(field: str, trial_batch: object, subject: SweepSubject) -> int:
    """``trial_batch`` as an int >= 1 that ``subject`` can score (> 1 needs ``evaluate_stack``)."""
    check_int(field, trial_batch, minimum=1)
    if trial_batch > 1 and subject.evaluate_stack is None:
        reason = f"model {subject.name} scores one trial at a time (no evaluate_stack); use 1"
        raise ConfigError(field, trial_batch, reason)
    return trial_batch


@dataclass(frozen=True)
class _Trial:
    """One seeded draw of one perturbation level, and the closed-form expectations of that level."""

    perturbation: Perturbation
    trial: int
    seed: int
    expected: Mapping[str, float]

    @property
    def key(self) -> tuple[str, float, int]:
        return (self.perturbation.name, self.perturbation.level, self.trial)

    def rows(self, subject: SweepSubject, values: Mapping[str, float], stage: str, epoch: int | None) -> list[SweepRow]:
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
            )
            for metric, value in values.items()
        ]


def _trials(subject: SweepSubject, grids: Iterable[SweepGrid], seed: int) -> Iterator[_Trial]:
    """Every trial of every grid, in grid order (one trial for a deterministic level)."""
    for grid in grids:
        for level_index, perturbation in enumerate(grid.perturbations()):
            expected = dict(subject.expected(perturbation) or {}) if subject.expected else {}
            for trial in range(1 if perturbation.deterministic else grid.trials):
                yield _Trial(perturbation, trial, trial_seed(seed, grid.perturbation, level_index, trial), expected)


def _completed_trials(completed: Iterable[SweepRow], model: str) -> dict[tuple[str, float, int], list[SweepRow]]:
    done: dict[tuple[str, float, int], list[SweepRow]] = {}
    for row in completed:
        if row.model == model:
            done.setdefault((row.perturbation, row.level, row.trial), []).append(row)
    return done


def _check_resumed(rows: list[SweepRow], seed: int) -> list[SweepRow]:
    if any(row.seed != seed for row in rows):
        raise ConfigError(
            "resume", rows[0].seed, f"the existing sweep file was written with other seeds (expected {seed})"
        )
    return rows
