"""Levels × trials of seeded perturbations on any model, as a tidy table of rows.

The sweep is framework-free: a ``SweepSubject`` bundles the module to damage, which of its
parameters to damage, and an ``evaluate()`` callable returning ``{metric: value}`` on cached
data. The targeted tensors are snapshotted once per sweep (the only extra memory: no model copy),
damaged in place with draws made on their device, and restored with ``copy_`` after every trial.
``evaluate()`` runs under ``torch.inference_mode`` (optionally bf16 autocast), so a sweep costs about
its number of trials times one evaluation pass.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from robustness.errors import ConfigError, check_int
from robustness.interrupts import restore_on_signals
from robustness.metrics import as_recorded
from robustness.perturbations import PERTURBATIONS, Perturbation, make_perturbation
from robustness.restore import ParameterSnapshot
from robustness.seeding import trial_seed
from robustness.targets import TargetSpec, select_targets

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
    """

    name: str
    module: nn.Module
    evaluate: Callable[[], Mapping[str, float]]
    targets: TargetSpec = ".*"
    num_tasks: int | None = None
    expected: Callable[[Perturbation], Mapping[str, float] | None] | None = None


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
) -> list[SweepRow]:
    """Run every grid on ``subject`` and return all rows, in grid order.

    ``on_trial`` receives the rows of each newly measured trial (one per metric) as soon as they
    exist. Trials found in ``completed`` (rows of an interrupted run of the same sweep) are not
    measured again: their rows are reused, so a resumed sweep returns the uninterrupted table.
    Weights are restored bit for bit after every trial, when anything raises, and on SIGINT/SIGTERM.
    ``evaluate()`` runs under ``torch.inference_mode()``: tensors it creates (e.g. metric states) are
    inference tensors, so it should reset any state it reuses. ``autocast`` (e.g. ``torch.bfloat16``)
    evaluates under ``torch.autocast`` of that dtype: faster on GPUs, results no longer float32 ones.
    """
    grids = list(grids)
    done = _completed_trials(completed, subject.name)
    snapshot = ParameterSnapshot(select_targets(subject.module, subject.targets))
    total = sum(sum(1 if p.deterministic else g.trials for p in g.perturbations()) for g in grids)
    bar = tqdm(total=total, desc=f"sweep {subject.name}", disable=None if progress else True, leave=False)
    rows: list[SweepRow] = []
    try:
        with restore_on_signals(snapshot):
            for grid in grids:
                for level_index, perturbation in enumerate(grid.perturbations()):
                    expected = dict(subject.expected(perturbation) or {}) if subject.expected else {}
                    for trial in range(1 if perturbation.deterministic else grid.trials):
                        trial_rng_seed = trial_seed(seed, grid.perturbation, level_index, trial)
                        key = (grid.perturbation, perturbation.level, trial)
                        if key in done:
                            rows += _check_resumed(done[key], trial_rng_seed)
                        else:
                            values = _evaluate_perturbed(subject, snapshot, perturbation, trial_rng_seed, autocast)
                            measured = [
                                SweepRow(
                                    model=subject.name,
                                    num_tasks=subject.num_tasks,
                                    perturbation=grid.perturbation,
                                    level=perturbation.level,
                                    trial=trial,
                                    seed=trial_rng_seed,
                                    metric=metric,
                                    value=value,
                                    expected=expected.get(metric),
                                    stage=stage,
                                    epoch=epoch,
                                )
                                for metric, value in values.items()
                            ]
                            rows += measured
                            if on_trial is not None:
                                on_trial(measured)
                        bar.update()
    finally:
        snapshot.restore()
        bar.close()
    return rows


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


def _evaluate_perturbed(
    subject: SweepSubject,
    snapshot: ParameterSnapshot,
    perturbation: Perturbation,
    seed: int,
    autocast: torch.dtype | None,
) -> dict[str, float]:
    precision = torch.autocast(snapshot.device.type, dtype=autocast) if autocast is not None else nullcontext()
    try:
        snapshot.perturb(perturbation, seed)
        with torch.inference_mode(), precision:
            values = subject.evaluate()
    finally:
        snapshot.restore()
    return {metric: as_recorded(metric, _as_float(value)) for metric, value in values.items()}


def _as_float(value: float | torch.Tensor) -> float:
    return float(value.item() if isinstance(value, torch.Tensor) else value)
