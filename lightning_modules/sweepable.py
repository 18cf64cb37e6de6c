"""The one hook ``PerturbationSweep`` needs from a LightningModule.

A module is sweepable when it implements ``robustness_subjects(batches)``: given evaluation
batches already cached on its device, return the ``SweepSubject``s to damage (usually one: the
module itself). ``SweepableMixin`` implements it for the common case from two small methods:
a fresh torchmetrics metric, and how one batch updates it. Metric states are reduced across
processes by torchmetrics, so a sweep over sharded data gives the single-device numbers. Its subjects
also score stacked copies (``trial_batch`` > 1) with no extra code: ``cognitive_reserve.scoring.vmap_updates``
runs ``robustness_update`` for all copies at once and each copy's ``update`` calls feed its own metric.
A damaged model's NaN is recorded as the worst value in the direction the metric declares
(torchmetrics' ``higher_is_better``), not guessed from its name. Subjects also score parts of the data
(subsampled trials, ``cognitive_reserve.subsampling``) when every state of the metric is a sum: a unit is one
cached batch (under DDP, batch b of every process), its state the metric's state after updating a fresh metric
with that batch alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.utilities.data import dim_zero_sum

from cognitive_reserve import SweepSubject, TargetSpec, select_targets
from cognitive_reserve.layout import NO_LAYOUT, ModelLayout
from cognitive_reserve.metrics import Direction, as_recorded, direction_of
from cognitive_reserve.scoring import vmap_updates
from cognitive_reserve.subsampling import State, UnitScoring


@runtime_checkable
class Sweepable(Protocol):
    """Anything ``PerturbationSweep`` can sweep."""

    def robustness_subjects(self, batches: Sequence[Any]) -> list[SweepSubject]: ...


class SweepableMixin:
    """Make a LightningModule sweepable by defining ``robustness_metric`` and ``robustness_update``.

    Class attributes ``robustness_targets`` (default: every parameter), ``robustness_name``
    (the CSV ``model`` column; default: the class name) and ``robustness_num_tasks`` may be
    overridden per instance. ``robustness_layout`` declares the model's structure (blocks, attention
    heads, MLP hidden units: ``cognitive_reserve.layout``) for structural perturbations and layer-wise groups.
    """

    robustness_targets: TargetSpec = ".*"
    robustness_name: str | None = None
    robustness_num_tasks: int | None = None

    def robustness_metric(self) -> Metric | MetricCollection:
        """A fresh metric whose ``compute()`` returns a tensor or a dict of scalar tensors."""
        raise NotImplementedError

    def robustness_update(self, metric: Metric | MetricCollection, batch: Any) -> None:
        """Run the model on ``batch`` and update ``metric`` (called under ``torch.no_grad``)."""
        raise NotImplementedError

    def robustness_layout(self) -> ModelLayout:
        """The model's structure in its own parameter names (default: none declared)."""
        return NO_LAYOUT

    def robustness_subjects(self, batches: Sequence[Any]) -> list[SweepSubject]:
        metric = self.robustness_metric().to(self.device)  # type: ignore[attr-defined]
        name = self.robustness_name or type(self).__name__

        def evaluate() -> dict[str, float]:
            metric.reset()
            for batch in batches:
                self.robustness_update(metric, batch)
            return metric_values(metric, metric.compute())

        def evaluate_stack(stacks: list[torch.Tensor]) -> list[dict[str, float]]:
            names = list(select_targets(subject.module, subject.targets))  # the order of the stacks
            copies = [metric.clone() for _ in range(len(stacks[0]))]
            for copy in copies:
                copy.reset()
            for batch in batches:
                updates = vmap_updates(subject.module, names, stacks, lambda m, b=batch: self.robustness_update(m, b))
                for copy, calls in zip(copies, updates, strict=True):
                    for args, kwargs in calls:
                        copy.update(*args, **kwargs)
            return [metric_values(copy, copy.compute()) for copy in copies]

        subject = SweepSubject(
            name=name,
            module=self,  # type: ignore[arg-type]
            evaluate=evaluate,
            targets=self.robustness_targets,
            num_tasks=self.robustness_num_tasks,
            evaluate_stack=evaluate_stack,
            units=unit_scoring(self, batches) if summed_states(metric) else None,
            layout=self.robustness_layout(),
        )
        return [subject]


def unit_scoring(module: SweepableMixin, batches: Sequence[Any]) -> UnitScoring:
    """Scoring of single cached batches of ``module`` (unit b: batch b of every process)."""
    metric = module.robustness_metric().to(module.device)  # type: ignore[attr-defined]

    def states(units: Sequence[int]) -> list[State]:
        result = []
        for unit in units:
            metric.reset()
            if unit < len(batches):
                module.robustness_update(metric, batches[unit])
            result.append(metric_state(metric))
        return result

    def values(state: State) -> dict[str, float]:
        load_metric_state(metric, state)
        return metric_values(metric, metric.compute())

    def sizes() -> list[int]:
        return _global_sizes([_batch_size(batch) for batch in batches], module.device)  # type: ignore[attr-defined]

    return UnitScoring(sizes=sizes, states=states, values=values)


def _members(metric: Metric | MetricCollection) -> dict[str, Metric]:
    if isinstance(metric, MetricCollection):
        return dict(metric.items(keep_base=True, copy_state=False))
    return {"": metric}


def summed_states(metric: Metric | MetricCollection) -> bool:
    """Whether every state of ``metric`` is a tensor reduced by summing (a sum over batches)."""
    return all(
        isinstance(member._defaults[name], torch.Tensor) and member._reductions[name] is dim_zero_sum
        for member in _members(metric).values()
        for name in member._defaults
    )


def metric_state(metric: Metric | MetricCollection) -> State:
    """A copy of ``metric``'s state tensors, named ``<member>.<state>`` in a collection."""
    return {
        f"{key}.{name}" if key else name: getattr(member, name).clone()
        for key, member in _members(metric).items()
        for name in member._defaults
    }


def load_metric_state(metric: Metric | MetricCollection, state: State) -> None:
    """Make ``metric`` hold ``state`` (as ``metric_state`` names it; float64 counts stay float64)."""
    for key, member in _members(metric).items():
        for name in member._defaults:
            setattr(member, name, state[f"{key}.{name}" if key else name])
        member._update_count, member._computed = 1, None


def _batch_size(batch: Any) -> int:
    """Items in a batch: the length of its first tensor."""
    if isinstance(batch, torch.Tensor):
        return len(batch)
    parts = batch.values() if isinstance(batch, Mapping) else batch
    return next(_batch_size(part) for part in parts if isinstance(part, torch.Tensor | Mapping | list | tuple))


def _global_sizes(sizes: list[int], device: torch.device) -> list[int]:
    """Items of unit b over all processes: batch b of each (a process may have one batch fewer)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return sizes
    count = torch.tensor([len(sizes)], device=device)
    torch.distributed.all_reduce(count, op=torch.distributed.ReduceOp.MAX)
    padded = torch.zeros(int(count), dtype=torch.long, device=device)
    padded[: len(sizes)] = torch.tensor(sizes, dtype=torch.long)
    torch.distributed.all_reduce(padded)
    return padded.tolist()


def metric_values(
    metric: Metric | MetricCollection, result: torch.Tensor | Mapping[str, torch.Tensor]
) -> dict[str, float]:
    """``{name: float}`` from ``metric.compute()``'s output (a tensor, named after the metric's class, or a dict
    of tensors), NaN recorded as the worst value in the direction the metric declares."""
    if not isinstance(result, Mapping):
        result = {type(metric).__name__.lower(): result}
    return {name: as_recorded(name, float(value), declared_direction(metric, name)) for name, value in result.items()}


def declared_direction(metric: Metric | MetricCollection, name: str) -> Direction | None:
    """Which way the output ``name`` of ``metric`` is better, by its ``higher_is_better`` (a collection: its
    member ``name``'s); None where the metric declares none (then the core judges by the name)."""
    if isinstance(metric, MetricCollection):
        member = dict(metric.items(copy_state=False)).get(name)
        return None if member is None else direction_of(member.higher_is_better)
    return direction_of(metric.higher_is_better)
