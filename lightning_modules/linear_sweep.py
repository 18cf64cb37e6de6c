"""What a robustness sweep damages and scores of a linear multitask model of T tasks.

The damaged model is ``LinearRepresentation(W, Γ)`` with orthonormal rows in ``W`` (``w`` is targeted by
default; a sweep's ``targets`` may add ``gamma``). ``LinearSweepScorer`` scores it on the cached evaluation
items: one version (``evaluate``), a stack of damaged copies of the targets in one pass (``evaluate_stack``),
and the closed-form expected MSE of a perturbation of ``W`` alone from the clean model's data moments
(``expected``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import torch
from torch import nn

from cognitive_reserve.layout import MLP, ModelLayout, Projection
from cognitive_reserve.metrics import as_recorded, direction_of
from cognitive_reserve.perturbations import Perturbation
from cognitive_reserve.subject import SweepSubject
from cognitive_reserve.targets import select_targets
from cognitive_reserve.theory import TaskMoments, expected_mse
from lightning_modules.linear_solvers import own_task
from lightning_modules.task_metrics import MultitaskMSE, TaskMomentsMetric

#: One batch's evaluation items of one model: ``(x, task, the MSE's target)``.
Items = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def linear_layout(k: int) -> ModelLayout:
    """The k hidden units of ``x ↦ Γᵀ W x``: unit j is row j of ``W`` (k × d) and row j of ``Γ`` (k × T)."""
    return ModelLayout(mlps=(MLP(k, (Projection("w", outputs=0),), (Projection("gamma", outputs=1),)),))


class LinearRepresentation(nn.Module):
    """``x ↦ Γᵀ W x``: the model a sweep damages (``w`` by default; a sweep's ``targets`` may add ``gamma``)."""

    def __init__(self, w: torch.Tensor, gamma: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)
        self.gamma = nn.Parameter(gamma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return stacked_outputs(x, self.w[None], self.gamma)[0]


def stacked_outputs(x: torch.Tensor, w: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """``Γᵀ W x`` for each ``W`` of a stack ``w`` (copies × k × d) and ``Γ`` (k × T, or a stack of them,
    copies × k × T): (copies × N × T).

    Batched matmuls compute every copy alike, so one copy's outputs do not depend on how many
    are stacked (a plain ``x @ W.T`` may take another kernel, and round differently, for N < 4).
    """
    copies = len(w)
    features = torch.bmm(x.expand(copies, *x.shape), w.transpose(1, 2))
    return torch.bmm(features, gamma if gamma.ndim == 3 else gamma.expand(copies, *gamma.shape))


class LinearSweepScorer:
    """Scores ``model`` (a T-task ``LinearRepresentation``, damaged in place or as copies of ``W``) on ``items``:
    the mean over tasks of each task's MSE, reported as ``metric_name``."""

    def __init__(self, model: LinearRepresentation, items: Sequence[Items], input_dim: int, metric_name: str) -> None:
        self.model = model
        self.items = items
        self.input_dim = input_dim
        self.metric_name = metric_name
        self.num_tasks = model.gamma.shape[1]
        self.device = model.w.device
        self._clean_factors = model.w.detach().double(), model.gamma.detach().double()
        self._metrics: dict[int, MultitaskMSE] = {}

    def subject(self, name: str) -> SweepSubject:
        """The sweep's view of the model: its targets are read live (a layer-wise sweep sets them per group)."""
        self._subject = SweepSubject(
            name=name,
            module=self.model,
            evaluate=self.evaluate,
            targets="^w$",
            num_tasks=self.num_tasks,
            expected=self.expected,
            evaluate_stack=self.evaluate_stack,
            layout=linear_layout(self.model.w.shape[0]),
        )
        return self._subject

    def evaluate(self) -> dict[str, float]:
        """The MSE of the model as it is now."""
        return self._score(self.model.w.detach()[None], self.model.gamma.detach())[0]

    def evaluate_stack(self, stacks: list[torch.Tensor]) -> list[dict[str, float]]:
        """The MSE of each damaged copy in ``stacks`` (one stack per target: ``w``, ``gamma`` or both)."""
        given = dict(zip(self._target_names(), stacks, strict=True))
        copies = len(stacks[0])
        w = given.get("w", self.model.w.detach().expand(copies, *self.model.w.shape))
        return self._score(w, given.get("gamma", self.model.gamma.detach()))

    def _target_names(self) -> list[str]:
        return list(select_targets(self.model, self._subject.targets))

    def _score(self, w: torch.Tensor, gamma: torch.Tensor) -> list[dict[str, float]]:
        mse = self._metric(len(w))
        mse.reset()
        for x, task, target in self.items:
            mse.update(own_task(stacked_outputs(x, w, gamma), task), target, task)
        direction = direction_of(mse.higher_is_better)
        return [
            {self.metric_name: as_recorded(self.metric_name, float(value), direction)}
            for value in mse.compute().view(-1)
        ]

    def expected(self, perturbation: Perturbation) -> dict[str, float] | None:
        """The closed-form expected MSE under ``perturbation`` (None where there is none: the closed forms
        damage ``W`` alone)."""
        if self._target_names() != ["w"]:
            return None
        value = expected_mse(perturbation, *self._clean_factors, self.moments)
        return None if value is None else {self.metric_name: value}

    @cached_property
    def moments(self) -> TaskMoments:
        """The data moments of the clean model: computed on first use (by ``expected``, before any damage)."""
        w = self.model.w.detach()
        accumulator = TaskMomentsMetric(self.num_tasks, self.input_dim, len(w)).to(self.device)
        for x, task, target in self.items:
            accumulator.update(x, own_task(self.model(x), task), target, task, hidden=x.double() @ w.double().T)
        return TaskMoments(**accumulator.compute())

    def _metric(self, copies: int) -> MultitaskMSE:
        """One metric per stack size, made once."""
        if copies not in self._metrics:
            with torch.inference_mode(False):  # plain state tensors, whoever calls first
                self._metrics[copies] = MultitaskMSE(self.num_tasks, copies).to(self.device)
        return self._metrics[copies]
