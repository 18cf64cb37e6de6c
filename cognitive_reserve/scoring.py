"""Scoring damaged versions of a sweep subject: in place one at a time, or as stacked copies.

``open_scorer`` yields ``score(draws)``: for each ``(perturbation, seed)`` the subject's metrics on its
targets damaged by that seeded draw, NaN recorded as the metric's worst value. In place, a draw may come
with its own evaluation instead of ``subject.evaluate`` (``score(draws, evaluators)``: subsampled trials).
Both ways give the same numbers, bit for bit:

- in place (``trial_batch`` = 1, any subject): damage the module's own tensors, ``evaluate()``, restore
  with ``copy_``; restored also when anything raises and on SIGINT/SIGTERM. Memory: one snapshot.
- stacked (``trial_batch`` > 1, subjects with ``evaluate_stack``): damage up to ``trial_batch`` copies
  and score them in one call. The module is never written. Memory: ``trial_batch`` copies of the
  targets, and the evaluation's activations for that many models.

``vmap_updates`` builds such stacked scoring for any module without hand-written stacked code: it runs
the module's usual per-batch "forward, then ``metric.update(...)``" once for all copies, through
``torch.func.functional_call`` (the copies stand in for the targeted parameters) under ``torch.func.vmap``,
and hands back every copy's ``update`` arguments, for one real metric per copy. Its rows equal in-place
ones within float rounding (a batched matmul may sum in another order; bit for bit on the tiny GPT-2
on CPU). A module vmap cannot run (``.item()``, data-dependent control flow on the damaged
weights, random ops) is refused with a one-line ``ConfigError`` naming ``trial_batch``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap

from cognitive_reserve.errors import ConfigError, first_line
from cognitive_reserve.interrupts import restore_on_signals
from cognitive_reserve.metrics import as_recorded
from cognitive_reserve.perturbations import Perturbation
from cognitive_reserve.restore import DamagedCopies, ParameterSnapshot
from cognitive_reserve.subject import SweepSubject
from cognitive_reserve.targets import select_targets, target_parts

Draw = tuple[Perturbation, int]
#: What scores one draw instead of ``subject.evaluate`` (a subsampled trial), or None.
Evaluator = Callable[[], Mapping[str, float]] | None
Scorer = Callable[[Sequence[Draw], Sequence[Evaluator] | None], list[dict[str, float]]]
#: The arguments of one ``metric.update(*args, **kwargs)`` call.
Update = tuple[tuple[Any, ...], dict[str, Any]]


@contextmanager
def open_scorer(subject: SweepSubject, trial_batch: int, autocast: torch.dtype | None) -> Iterator[Scorer]:
    """A scorer of ``subject`` for draws given at most ``trial_batch`` at a time (> 1: stacked, which
    needs ``subject.evaluate_stack``; ``run_sweep`` checks)."""
    targets, parts = select_targets(subject.module, subject.targets), target_parts(subject.targets)
    if trial_batch > 1:
        copies = DamagedCopies(targets, trial_batch, parts, subject.layout)

        def score_stacked(
            draws: Sequence[Draw], evaluators: Sequence[Evaluator] | None = None
        ) -> list[dict[str, float]]:
            if evaluators is not None and any(evaluators):
                raise ValueError("stacked copies are scored on the whole data only")
            for slot, (perturbation, seed) in enumerate(draws):
                copies.damage(slot, perturbation, seed)
            with torch.inference_mode(), precision(copies.device, autocast):
                values = subject.evaluate_stack(copies.first(len(draws)))
            if len(values) != len(draws):
                raise ValueError(f"evaluate_stack scored {len(values)} of {len(draws)} copies")
            return [_recorded(v) for v in values]

        yield score_stacked
        return
    snapshot = ParameterSnapshot(targets, parts, subject.layout, subject.module)

    def score_in_place(draws: Sequence[Draw], evaluators: Sequence[Evaluator] | None = None) -> list[dict[str, float]]:
        scores = []
        for index, (perturbation, seed) in enumerate(draws):
            evaluate = (evaluators[index] if evaluators is not None else None) or subject.evaluate
            try:
                snapshot.perturb(perturbation, seed)
                with torch.inference_mode(), precision(snapshot.device, autocast):
                    values = evaluate()
            finally:
                snapshot.restore()
            scores.append(_recorded(values))
        return scores

    try:
        with restore_on_signals(snapshot):
            yield score_in_place
    finally:
        snapshot.restore()


def clean_scores(subject: SweepSubject, autocast: torch.dtype | None) -> dict[str, float]:
    """The undamaged subject's metrics as evaluated (NaN stays NaN), scored as a trial is: inference mode,
    ``autocast``."""
    device = next(iter(select_targets(subject.module, subject.targets).values())).device
    with torch.inference_mode(), precision(device, autocast):
        return {metric: _as_float(value) for metric, value in subject.evaluate().items()}


def precision(device: torch.device, autocast: torch.dtype | None) -> AbstractContextManager[object]:
    """``torch.autocast`` of ``autocast`` on ``device``'s type, or nothing when ``autocast`` is None."""
    return torch.autocast(device.type, dtype=autocast) if autocast is not None else nullcontext()


def _recorded(values: Mapping[str, float | torch.Tensor]) -> dict[str, float]:
    return {metric: as_recorded(metric, _as_float(value)) for metric, value in values.items()}


def _as_float(value: float | torch.Tensor) -> float:
    return float(value.item() if isinstance(value, torch.Tensor) else value)


def vmap_updates(
    module: nn.Module, names: Sequence[str], stacks: Sequence[torch.Tensor], run: Callable[[Any], None]
) -> list[list[Update]]:
    """For every copy ``c`` of the parameters ``names`` of ``module`` (``stacks[i][c]`` replaces parameter
    ``names[i]``), the ``update`` calls ``run(metric)`` makes when the module holds that copy: one vmapped
    pass for all copies. ``run`` gets a stand-in metric that records its ``update`` arguments (tensors
    computed from the parameters come back per copy, anything else as it was given).
    """
    caller = _Caller(module, run)
    keys = [f"module.{name}" for name in names]
    layout: list[Any] = []  # how one copy's recorded calls are rebuilt from vmap's flat tensor outputs

    def one_copy(*tensors: torch.Tensor) -> list[torch.Tensor]:
        calls = functional_call(caller, dict(zip(keys, tensors, strict=True)), ())
        layout[:], flat = _flatten(calls)
        return flat

    try:
        outputs = vmap(one_copy)(*stacks)
    except torch.OutOfMemoryError:
        raise
    except (RuntimeError, ValueError, TypeError, AttributeError, NotImplementedError) as err:
        reason = f"{type(module).__name__} cannot be scored as stacked copies by torch.func.vmap ({first_line(err)})"
        reason += "; use 1"
        raise ConfigError("trial_batch", len(stacks[0]), reason) from err
    return [_rebuild(layout, [output[copy] for output in outputs]) for copy in range(len(stacks[0]))]


class _Recorder:
    """Stands in for a metric under vmap: keeps the arguments of every ``update`` call."""

    def __init__(self) -> None:
        self.calls: list[Update] = []

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append((args, kwargs))


class _Caller(nn.Module):
    """``run(recorder)`` as the forward of a module holding ``module``, so ``functional_call`` can swap
    ``module``'s parameters for the duration of any code, not only of ``module.forward``."""

    def __init__(self, module: nn.Module, run: Callable[[Any], None]) -> None:
        super().__init__()
        self.module = module
        self._run = run

    def forward(self) -> list[Update]:
        recorder = _Recorder()
        self._run(recorder)
        return recorder.calls


def _flatten(calls: list[Update]) -> tuple[list[Any], list[torch.Tensor]]:
    """The tensors of recorded ``update`` calls, in order, and the layout ``_rebuild`` puts them back with."""
    layout, tensors = [], []
    for args, kwargs in calls:
        values = [*args, *kwargs.values()]
        layout.append((len(args), list(kwargs), [None if isinstance(v, torch.Tensor) else v for v in values]))
        tensors += [v for v in values if isinstance(v, torch.Tensor)]
    return layout, tensors


def _rebuild(layout: list[Any], tensors: list[torch.Tensor]) -> list[Update]:
    """One copy's ``update`` calls from the recorded layout and that copy's tensors, in order."""
    supply = iter(tensors)
    calls = []
    for positional, keywords, values in layout:
        filled = [next(supply) if value is None else value for value in values]
        calls.append((tuple(filled[:positional]), dict(zip(keywords, filled[positional:], strict=True))))
    return calls
