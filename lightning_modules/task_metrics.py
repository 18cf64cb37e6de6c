"""Torchmetrics for the linear multitask model: per-task MSE and the data moments of the closed forms."""

from __future__ import annotations

import torch
from torchmetrics import Metric


class MultitaskMSE(Metric):
    """Mean over tasks of each task's mean squared error (tasks weigh equally), for ``copies`` models
    scored on the same items at once (a sweep's damaged copies); ``compute()`` gives one value per copy
    (a scalar for one copy: torchmetrics squeezes one-element results).

    Tasks without any example so far (e.g. in Lightning's short sanity check) are left out. Each
    copy's value is computed exactly as with ``copies=1``: stacking never changes a number.
    """

    full_state_update = False
    higher_is_better = False

    def __init__(self, num_tasks: int, copies: int = 1) -> None:
        super().__init__()
        self.add_state("sse", torch.zeros(copies, num_tasks, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros(num_tasks, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, target: torch.Tensor, task: torch.Tensor) -> None:
        """``pred``: (copies × N) predictions of each item's own task; ``target``, ``task``: (N)."""
        error = (pred.double() - target.double()) ** 2
        self.sse.index_add_(1, task, error)
        self.count.index_add_(0, task, torch.ones_like(target, dtype=torch.float64))

    def compute(self) -> torch.Tensor:
        seen = self.count > 0
        return torch.stack([(sse[seen] / self.count[seen]).mean() for sse in self.sse])


class TaskMomentsMetric(Metric):
    """Accumulates the per-task means of ``cognitive_reserve.theory.TaskMoments`` (float64); ``num_hidden`` > 0
    also the hidden units' second moments (``update``'s ``hidden``: the representation ``W x``)."""

    full_state_update = False

    def __init__(self, num_tasks: int, num_features: int, num_hidden: int = 0) -> None:
        super().__init__()
        for name in ("count", "sq_norm_x", "pred_sq", "pred_target", "target_sq"):
            self.add_state(name, torch.zeros(num_tasks, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("sq_x", torch.zeros(num_tasks, num_features, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("sq_hidden", torch.zeros(num_tasks, num_hidden, dtype=torch.float64), dist_reduce_fx="sum")

    def update(
        self,
        x: torch.Tensor,
        pred: torch.Tensor,
        target: torch.Tensor,
        task: torch.Tensor,
        hidden: torch.Tensor | None = None,
    ) -> None:
        x, pred, target = x.double(), pred.double(), target.double()
        self.count.index_add_(0, task, torch.ones_like(pred))
        self.sq_x.index_add_(0, task, x**2)
        if hidden is not None:
            self.sq_hidden.index_add_(0, task, hidden.double() ** 2)
        self.sq_norm_x.index_add_(0, task, (x**2).sum(dim=1))
        self.pred_sq.index_add_(0, task, pred**2)
        self.pred_target.index_add_(0, task, pred * target)
        self.target_sq.index_add_(0, task, target**2)

    def compute(self) -> dict[str, torch.Tensor]:
        """Keyword arguments of ``TaskMoments`` (torchmetrics cannot return a frozen dataclass)."""
        n = self.count
        return {
            "sq_norm_x": self.sq_norm_x / n,
            "sq_x": self.sq_x / n[:, None],
            "pred_sq": self.pred_sq / n,
            "pred_target": self.pred_target / n,
            "target_sq": self.target_sq / n,
            "sq_hidden": self.sq_hidden / n[:, None] if self.sq_hidden.shape[1] else None,
        }
