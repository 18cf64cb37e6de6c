"""Scoring damaged versions of a sweep subject: in place one at a time, or as stacked copies.

``open_scorer`` yields ``score(draws)``: for each ``(perturbation, seed)`` the subject's metrics on its
targets damaged by that seeded draw, NaN recorded as the metric's worst value. Both ways give the same
numbers, bit for bit:

- in place (``trial_batch`` = 1, any subject): damage the module's own tensors, ``evaluate()``, restore
  with ``copy_``; restored also when anything raises and on SIGINT/SIGTERM. Memory: one snapshot.
- stacked (``trial_batch`` > 1, subjects with ``evaluate_stack``): damage up to ``trial_batch`` copies
  and score them in one call. The module is never written. Memory: ``trial_batch`` copies of the
  targets, and the evaluation's activations for that many models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING

import torch

from robustness.interrupts import restore_on_signals
from robustness.metrics import as_recorded
from robustness.perturbations import Perturbation
from robustness.restore import DamagedCopies, ParameterSnapshot
from robustness.targets import select_targets

if TYPE_CHECKING:
    from robustness.sweep import SweepSubject

Draw = tuple[Perturbation, int]
Scorer = Callable[[Sequence[Draw]], list[dict[str, float]]]


@contextmanager
def open_scorer(subject: SweepSubject, trial_batch: int, autocast: torch.dtype | None) -> Iterator[Scorer]:
    """A scorer of ``subject`` for draws given at most ``trial_batch`` at a time (> 1: stacked, which
    needs ``subject.evaluate_stack``; ``run_sweep`` checks)."""
    targets = select_targets(subject.module, subject.targets)
    if trial_batch > 1:
        copies = DamagedCopies(targets, trial_batch)

        def score_stacked(draws: Sequence[Draw]) -> list[dict[str, float]]:
            for slot, (perturbation, seed) in enumerate(draws):
                copies.damage(slot, perturbation, seed)
            with torch.inference_mode(), _precision(copies.device, autocast):
                values = subject.evaluate_stack(copies.first(len(draws)))
            if len(values) != len(draws):
                raise ValueError(f"evaluate_stack scored {len(values)} of {len(draws)} copies")
            return [_recorded(v) for v in values]

        yield score_stacked
        return
    snapshot = ParameterSnapshot(targets)

    def score_in_place(draws: Sequence[Draw]) -> list[dict[str, float]]:
        scores = []
        for perturbation, seed in draws:
            try:
                snapshot.perturb(perturbation, seed)
                with torch.inference_mode(), _precision(snapshot.device, autocast):
                    values = subject.evaluate()
            finally:
                snapshot.restore()
            scores.append(_recorded(values))
        return scores

    try:
        with restore_on_signals(snapshot):
            yield score_in_place
    finally:
        snapshot.restore()


def _precision(device: torch.device, autocast: torch.dtype | None) -> AbstractContextManager[object]:
    return torch.autocast(device.type, dtype=autocast) if autocast is not None else nullcontext()


def _recorded(values: Mapping[str, float | torch.Tensor]) -> dict[str, float]:
    return {metric: as_recorded(metric, _as_float(value)) for metric, value in values.items()}


def _as_float(value: float | torch.Tensor) -> float:
    return float(value.item() if isinstance(value, torch.Tensor) else value)
