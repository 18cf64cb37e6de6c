"""The one hook ``PerturbationSweep`` needs from a LightningModule.

A module is sweepable when it implements ``robustness_subjects(batches)``: given evaluation
batches already cached on its device, return the ``SweepSubject``s to damage (usually one: the
module itself). ``SweepableMixin`` implements it for the common case from two small methods:
a fresh torchmetrics metric, and how one batch updates it. Metric states are reduced across
processes by torchmetrics, so a sweep over sharded data gives the single-device numbers. Its subjects
also score stacked copies (``trial_batch`` > 1) with no extra code: ``cognitive_reserve.scoring.vmap_updates``
runs ``robustness_update`` for all copies at once and each copy's ``update`` calls feed its own metric.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torchmetrics import Metric, MetricCollection

from cognitive_reserve import SweepSubject, TargetSpec, select_targets
from cognitive_reserve.scoring import vmap_updates


@runtime_checkable
class Sweepable(Protocol):
    """Anything ``PerturbationSweep`` can sweep."""

    def robustness_subjects(self, batches: Sequence[Any]) -> list[SweepSubject]: ...


class SweepableMixin:
    """Make a LightningModule sweepable by defining ``robustness_metric`` and ``robustness_update``.

    Class attributes ``robustness_targets`` (default: every parameter), ``robustness_name``
    (the CSV ``model`` column; default: the class name) and ``robustness_num_tasks`` may be
    overridden per instance.
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

    def robustness_subjects(self, batches: Sequence[Any]) -> list[SweepSubject]:
        metric = self.robustness_metric().to(self.device)  # type: ignore[attr-defined]
        name = self.robustness_name or type(self).__name__

        def evaluate() -> dict[str, float]:
            metric.reset()
            for batch in batches:
                self.robustness_update(metric, batch)
            return metric_values(metric.compute(), default_name=type(metric).__name__.lower())

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
            default_name = type(metric).__name__.lower()
            return [metric_values(copy.compute(), default_name=default_name) for copy in copies]

        subject = SweepSubject(
            name=name,
            module=self,  # type: ignore[arg-type]
            evaluate=evaluate,
            targets=self.robustness_targets,
            num_tasks=self.robustness_num_tasks,
            evaluate_stack=evaluate_stack,
        )
        return [subject]


def metric_values(result: torch.Tensor | Mapping[str, torch.Tensor], default_name: str) -> dict[str, float]:
    """``{name: float}`` from a metric's ``compute()`` output (tensor or dict of tensors)."""
    if isinstance(result, Mapping):
        return {name: float(value) for name, value in result.items()}
    return {default_name: float(result)}
