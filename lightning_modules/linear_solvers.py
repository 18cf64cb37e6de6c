"""The two solvers of ``LinearMultitaskRegression``: one class per solver, one model class per solver.

A solver builds the model of each T (``model``), trains it (``training_step``, ``configure_optimizers``,
``automatic_optimization``); the model it builds says what the sweep needs from it: the task vectors
``C`` it approximates, ``C`` as learned, and the factors ``(W, Γ)`` with orthonormal rows in ``W``.

- ``SvdSolver`` (the paper's way) builds ``RidgeTaskVectors``: task vectors by per-task ridge least
  squares from one pass over the data, then the SVD solution ``W = U_kᵀ, Γ = Σ_k V_kᵀ``.
- ``SgdSolver`` builds ``Factorized``: ``W`` and ``Γ`` trained end to end by Adam, orthonormalised (QR,
  scale pushed into ``Γ``) before use.

Both keep the checkpoint keys of the model they build (``models.T<t>.c``/``.norms``, ``models.T<t>.w``/``.gamma``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from cognitive_reserve.theory import orthonormalize, svd_solution, unit_columns
from lightning_modules.ridge import GatherRows, RidgeProblem, SumOverRanks


class RidgeTaskVectors(nn.Module):
    """Model of ``SvdSolver``: task vectors ``C`` (d×T) by per-task ridge least squares, then SVD factors.

    One pass over the training data collects each task's rows (``RidgeProblem``: kept as rows
    while there are at most d, else as float64 ``XᵢᵀXᵢ``, ``Xᵢᵀyᵢ``; over all processes); after
    the epoch's last batch, ``solve`` sets ``c_i = (XᵢᵀXᵢ + ridge·I)⁻¹ Xᵢᵀyᵢ`` (a ``ClosedFormUpdate``
    step), in the dual form ``Xᵢᵀ(XᵢXᵢᵀ + ridge·I)⁻¹yᵢ`` when that is smaller. With ``unit_norm`` the
    parameter ``c`` holds the unit-norm task vectors the model uses (what the monitors see) and the
    buffer ``norms`` their learned norms.
    """

    def __init__(self, input_dim: int, num_tasks: int, k: int, unit_norm: bool = False) -> None:
        super().__init__()
        # Set in closed form, never by gradients; an ordinary parameter so DDP accepts the module.
        self.c = nn.Parameter(torch.zeros(input_dim, num_tasks))
        self.register_buffer("norms", torch.ones(num_tasks, dtype=torch.float64))
        self.k = k
        self.unit_norm = unit_norm
        self.problems = [RidgeProblem(input_dim) for _ in range(num_tasks)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.c

    def accumulate(self, x: torch.Tensor, task: torch.Tensor, target: torch.Tensor) -> None:
        for i in torch.unique(task).tolist():
            self.problems[i].add(x[task == i], target[task == i])

    def solve(self, ridge: float, sum_over_ranks: SumOverRanks, gather_rows: GatherRows) -> None:
        for i, problem in enumerate(self.problems):
            c = problem.solve(ridge, sum_over_ranks, gather_rows, self.c.device)
            norm = c.norm() if self.unit_norm else torch.ones((), dtype=c.dtype, device=c.device)
            self.norms[i] = norm
            self.c[:, i] = c / norm if norm > 0 else c

    def task_vectors(self) -> torch.Tensor:
        """The ``C`` the model uses (d×T, float64, detached): unit columns with ``unit_norm``."""
        return self.c.detach().double()

    def learned_task_vectors(self) -> torch.Tensor:
        """The ``C`` as learned (d×T, float64, detached), before any normalisation."""
        return self.c.detach().double() * self.norms

    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W, Γ)``: the SVD solution of rank k of ``task_vectors`` (float64)."""
        return svd_solution(self.task_vectors(), self.k)


class Factorized(nn.Module):
    """Model of ``SgdSolver``: ``W`` and ``Γ`` trained directly; its factors are orthonormalised copies."""

    def __init__(
        self, input_dim: int, num_tasks: int, k: int, generator: torch.Generator, unit_norm: bool = False
    ) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(k, input_dim, generator=generator) / input_dim**0.5)
        self.gamma = nn.Parameter(torch.randn(k, num_tasks, generator=generator) / k**0.5 * 0.1)
        self.unit_norm = unit_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.w.T) @ self.gamma

    def learned_task_vectors(self) -> torch.Tensor:
        """The model's ``C = WᵀΓ`` as trained (d×T, float64, detached)."""
        w, gamma = self._orthonormal_factors()
        return w.T @ gamma

    def task_vectors(self) -> torch.Tensor:
        """The ``C`` the model approximates: ``learned_task_vectors``, unit columns with ``unit_norm``."""
        c = self.learned_task_vectors()
        return unit_columns(c) if self.unit_norm else c

    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W, Γ)``: the trained factors, orthonormalised (float64); with ``unit_norm`` each head ``γ_i`` is
        divided by ``‖Wᵀγ_i‖`` (``W`` orthonormal: ``c_i = Wᵀγ_i``)."""
        w, gamma = self._orthonormal_factors()
        return (w, unit_columns(w.T @ gamma, gamma)) if self.unit_norm else (w, gamma)

    def _orthonormal_factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return orthonormalize(self.w.detach().double(), self.gamma.detach().double())


class ClosedFormUpdate(torch.optim.Optimizer):
    """An optimizer whose ``step(closure)`` runs a closure that sets parameters in closed form.

    The ``svd`` solver's ridge solve goes through it so Lightning counts the update as an
    optimizer step (``global_step``, checkpointing) like any gradient step.
    """

    def __init__(self, params: Iterable[nn.Parameter]) -> None:
        super().__init__(params, defaults={})

    @torch.no_grad()
    def step(self, closure: Callable[[], None]) -> None:  # type: ignore[override]
        closure()


#: What a solver's ``model`` builds.
TaskModel = RidgeTaskVectors | Factorized
#: Each model's training items of a batch: ``(T, model, (x, task, target))``.
TrainingItems = Iterator[tuple[int, TaskModel, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]]


class SolverHost(Protocol):
    """What a solver uses of the LightningModule it trains (``LinearMultitaskRegression``)."""

    models: nn.ModuleDict
    device: torch.device
    trainer: Any

    def training_items(self, batch: dict[str, torch.Tensor]) -> TrainingItems: ...
    def sum_over_ranks(self, tensor: torch.Tensor) -> torch.Tensor: ...
    def gather_over_ranks(self, rows: torch.Tensor) -> torch.Tensor: ...
    def optimizers(self) -> Any: ...
    def log(self, name: str, value: torch.Tensor, **options: Any) -> None: ...
    def parameters(self) -> Iterator[nn.Parameter]: ...


@dataclass(frozen=True)
class SvdSolver:
    """``svd``: accumulate every model's least squares over the epoch, solve them after its last batch."""

    k: int
    ridge: float
    unit_norm: bool
    #: The ridge solve is one closed-form update per epoch, stepped by hand.
    automatic_optimization = False

    def model(self, input_dim: int, num_tasks: int, generator: torch.Generator) -> RidgeTaskVectors:
        return RidgeTaskVectors(input_dim, num_tasks, self.k, unit_norm=self.unit_norm)

    def training_step(self, module: SolverHost, batch: dict[str, torch.Tensor]) -> None:
        for _, model, (x, task, target) in module.training_items(batch):
            model.accumulate(x, task, target)
        if module.trainer.is_last_batch:
            module.optimizers().step(closure=lambda: self.solve(module))

    def solve(self, module: SolverHost) -> None:
        """Turn the epoch's statistics into task vectors (every rank calls this together)."""
        for model in module.models.values():
            model.solve(self.ridge, module.sum_over_ranks, module.gather_over_ranks)

    def configure_optimizers(self, module: SolverHost) -> torch.optim.Optimizer:
        return ClosedFormUpdate(module.parameters())


@dataclass(frozen=True)
class SgdSolver:
    """``sgd``: every model's MSE on its own training items, summed, minimised by Adam."""

    k: int
    lr: float
    weight_decay: float
    unit_norm: bool
    automatic_optimization = True

    def model(self, input_dim: int, num_tasks: int, generator: torch.Generator) -> Factorized:
        return Factorized(input_dim, num_tasks, self.k, generator, unit_norm=self.unit_norm)

    def training_step(self, module: SolverHost, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        total = torch.zeros((), device=module.device)
        for num_tasks, model, (x, task, target) in module.training_items(batch):
            if not len(task):
                continue
            loss = torch.mean((own_task(model(x), task) - target) ** 2)
            module.log(f"train/mse_T{num_tasks}", loss, on_step=False, on_epoch=True, sync_dist=True)
            total = total + loss
        module.log("train/loss", total, prog_bar=True, sync_dist=True)
        return total

    def configure_optimizers(self, module: SolverHost) -> torch.optim.Optimizer:
        return torch.optim.Adam(module.parameters(), lr=self.lr, weight_decay=self.weight_decay)


def own_task(predictions: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
    """Pick each item's prediction for its own task from (… × N × T) predictions: (… × N)."""
    return predictions.gather(-1, task.expand(predictions.shape[:-1])[..., None]).squeeze(-1)
