"""The one hook ``PerturbationSweep`` needs from a LightningModule.

A module is sweepable when it implements ``robustness_subjects(batches)``: given evaluation
batches already cached on its device, return the ``SweepSubject``s to damage (usually one: the
module itself). ``SweepableMixin`` implements it for the common case from two small methods:
a fresh torchmetrics metric, and how one batch updates it. Metric states are reduced across
processes by torchmetrics, so a sweep over sharded data gives the single-device numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torchmetrics import Metric, MetricCollection

from robustness import SweepSubject, TargetSpec


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

        return [
            SweepSubject(
                name=name,
                module=self,  # type: ignore[arg-type]
                evaluate=evaluate,
                targets=self.robustness_targets,
                num_tasks=self.robustness_num_tasks,
            )
        ]


def metric_values(result: torch.Tensor | Mapping[str, torch.Tensor], default_name: str) -> dict[str, float]:
    """``{name: float}`` from a metric's ``compute()`` output (tensor or dict of tensors)."""
    if isinstance(result, Mapping):
        return {name: float(value) for name, value in result.items()}
    return {default_name: float(result)}
