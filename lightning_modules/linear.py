"""Linear multitask regression (paper §2–3): representation ``W`` (k×d), heads ``Γ`` (k×T).

One module trains a whole family of independent models, one per T in the data's ``task_grid``,
each on its own ``train_examples`` items (the membership column of the batch), so a single
``fit`` produces the robustness-vs-T comparison of Figure 3.

Solvers:
- ``svd`` (the paper's way): fit the task vectors ``C`` (d×T) — exact per-task ridge least
  squares from one pass over the data — then take the SVD solution ``W = U_kᵀ, Γ = Σ_k V_kᵀ``.
- ``sgd``: learn ``W`` and ``Γ`` end to end; ``W`` is orthonormalised (QR, scale pushed into
  ``Γ``) before it is perturbed.
Either way the perturbed model is ``LinearRepresentation(W, Γ)`` with orthonormal rows in ``W``.

With ``normalize_task_vectors`` (the paper's released code) every task vector ``c_i`` is scaled to
unit norm first: the SVD solution, R(T), the closed forms, the sweeps and (``svd``: the parameter ``c``
holds it) the monitors all use the normalised ``C``.
``target`` says what a damaged model's MSE is measured against: ``task_vector`` (``c_iᵀx`` of the
task vector the model approximates, paper Figure 3 and Theorem 2.5) or ``label`` (the 0/1 label).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import lightning as L
import torch
from torch import nn

from cognitive_reserve import SweepSubject, select_targets
from cognitive_reserve.errors import ConfigError
from cognitive_reserve.fields import Field, check_fields, declared
from cognitive_reserve.perturbations import Perturbation
from cognitive_reserve.theory import (
    TaskMoments,
    expected_mse,
    orthonormalize,
    robustness_slope,
    svd_solution,
    unit_columns,
)
from lightning_modules.ridge import GatherRows, RidgeProblem, SumOverRanks
from lightning_modules.task_metrics import MultitaskMSE, TaskMomentsMetric

Target = Literal["task_vector", "label"]
#: The sweep CSV's ``metric`` name for each ``target``: what the MSE is measured against.
METRIC_NAMES: dict[str, str] = {"task_vector": "mse_task_vector", "label": "mse_label"}


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


class RidgeTaskVectors(nn.Module):
    """Solver ``svd``: task vectors ``C`` (d×T) by per-task ridge least squares, then SVD factors.

    One pass over the training data collects each task's rows (``RidgeProblem``: kept as rows
    while there are at most d, else as float64 ``XᵢᵀXᵢ``, ``Xᵢᵀyᵢ``; over all processes); after
    the epoch's last batch, ``solve`` sets ``c_i = (XᵢᵀXᵢ + ridge·I)⁻¹ Xᵢᵀyᵢ`` (a ``ClosedFormUpdate``
    step), in the dual form ``Xᵢᵀ(XᵢXᵢᵀ + ridge·I)⁻¹yᵢ`` when that is smaller. With ``unit_norm`` the
    parameter ``c`` holds the unit-norm task vectors the model uses (what the monitors see) and the
    buffer ``norms`` their learned norms.
    """

    def __init__(self, input_dim: int, num_tasks: int, unit_norm: bool = False) -> None:
        super().__init__()
        # Set in closed form, never by gradients; an ordinary parameter so DDP accepts the module.
        self.c = nn.Parameter(torch.zeros(input_dim, num_tasks))
        self.register_buffer("norms", torch.ones(num_tasks, dtype=torch.float64))
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


class Factorized(nn.Module):
    """Solver ``sgd``: ``W`` and ``Γ`` trained directly; factors are orthonormalised copies."""

    def __init__(self, input_dim: int, num_tasks: int, k: int, generator: torch.Generator) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(k, input_dim, generator=generator) / input_dim**0.5)
        self.gamma = nn.Parameter(torch.randn(k, num_tasks, generator=generator) / k**0.5 * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.w.T) @ self.gamma

    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W, Γ)`` with orthonormal rows in ``W`` (float64, detached)."""
        return orthonormalize(self.w.detach().double(), self.gamma.detach().double())

    def learned_task_vectors(self) -> torch.Tensor:
        """The model's ``C = WᵀΓ`` as trained (d×T, float64, detached)."""
        w, gamma = self.factors()
        return w.T @ gamma


@dataclass(frozen=True)
class SlopeReport:
    """Theory numbers of one T-task model: R(T) = Σ_{i≤k} σ_i(C)²/T of the ``C`` the model uses
    (normalised or not, as configured), the same slope of the unnormalised ``C``, the heads' norm
    ‖Γ‖_F²/T and the mean squared norm of the unnormalised task vectors."""

    num_tasks: int
    robustness_slope: float
    gamma_fro2_per_task: float
    robustness_slope_unnormalized: float
    mean_task_vector_sq_norm: float


@declared("model")
class LinearMultitaskRegression(L.LightningModule):
    """A family of rank-k linear multitask regressors, one per number of tasks T."""

    def __init__(
        self,
        k: Annotated[
            int,
            Field(
                "representation dimension (rows of W); the paper's regime is k < T",
                ge=1,
                later="≤ the input dimension: at setup",
            ),
        ] = 2,
        solver: Annotated[
            Literal["svd", "sgd"],
            Field(
                "`svd` (ridge task vectors C factored by SVD; one epoch is enough) or `sgd` (W and Γ trained by Adam)"
            ),
        ] = "svd",
        ridge: Annotated[
            float, Field("L2 penalty of the `svd` solver's least squares (on standardized features)", gt=0)
        ] = 1.0,
        lr: Annotated[float, Field("Adam learning rate (`sgd`)", gt=0)] = 0.05,
        weight_decay: Annotated[float, Field("Adam weight decay (`sgd`)", ge=0)] = 0.0,
        init_seed: Annotated[int, Field("seed of the `sgd` initialisation")] = 0,
        task_grid: Annotated[
            Sequence[int] | None,
            Field(
                "numbers of tasks; taken from the data when omitted",
                valid="null or a list that matches the data's",
                later="at setup",
            ),
        ] = None,
        input_dim: Annotated[
            int | None,
            Field("input dimension d; taken from the data when omitted", ge=1, later="must match the data's: at setup"),
        ] = None,
        normalize_task_vectors: Annotated[
            bool,
            Field(
                "scale every learned task vector to unit norm before the SVD solution (the paper's code); "
                "false: use the vectors as learned"
            ),
        ] = True,
        target: Annotated[
            Target,
            Field(
                "what the MSE is measured against: `task_vector` (c_iᵀx, paper Figure 3) or `label` (the 0/1 "
                "label); names the CSV's `metric`: `mse_task_vector` / `mse_label`"
            ),
        ] = "task_vector",
    ) -> None:
        super().__init__()
        check_fields(LinearMultitaskRegression, locals())
        self.save_hyperparameters()
        self.automatic_optimization = solver == "sgd"
        self.models = nn.ModuleDict()
        if task_grid is not None and input_dim is not None:
            self._build(list(task_grid), input_dim)

    @property
    def task_grid(self) -> list[int]:
        return list(self.hparams.task_grid)

    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule
        grid, dim = list(datamodule.task_grid), datamodule.num_features
        if not self.models:
            self.hparams.task_grid, self.hparams.input_dim = grid, dim
            self._build(grid, dim)
        elif (self.task_grid, self.hparams.input_dim) != (grid, dim):
            raise ConfigError(
                "model.task_grid/input_dim", (self.task_grid, self.hparams.input_dim),
                f"do not match the data (task_grid={grid}, num_features={dim})",
            )  # fmt: skip

    def _build(self, task_grid: list[int], input_dim: int) -> None:
        if self.hparams.k > input_dim:
            raise ConfigError("model.k", self.hparams.k, f"must be <= the input dimension {input_dim}")
        generator = torch.Generator().manual_seed(self.hparams.init_seed)
        for t in task_grid:
            self.models[_key(t)] = (
                RidgeTaskVectors(input_dim, t, unit_norm=self.hparams.normalize_task_vectors)
                if self.hparams.solver == "svd"
                else Factorized(input_dim, t, self.hparams.k, generator)
            )

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor | None:
        if self.hparams.solver == "svd":
            for column, t in enumerate(self.task_grid):
                member = batch["member"][:, column]
                self.models[_key(t)].accumulate(batch["x"][member], batch["task"][member], batch["target"][member])
            if self.trainer.is_last_batch:
                self.optimizers().step(closure=self._solve_ridge)
            return None
        total = torch.zeros((), device=self.device)
        for column, t in enumerate(self.task_grid):
            member = batch["member"][:, column]
            if not bool(member.any()):
                continue
            pred = _own_task(self.models[_key(t)](batch["x"][member]), batch["task"][member])
            loss = torch.mean((pred - batch["target"][member]) ** 2)
            self.log(f"train/mse_T{t}", loss, on_step=False, on_epoch=True, sync_dist=True)
            total = total + loss
        self.log("train/loss", total, prog_bar=True, sync_dist=True)
        return total

    def _solve_ridge(self) -> None:
        """Turn the epoch's statistics into task vectors (every rank calls this together)."""
        for t in self.task_grid:
            self.models[_key(t)].solve(self.hparams.ridge, self._sum_over_ranks, self._gather_over_ranks)

    def _sum_over_ranks(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.trainer.strategy.reduce(tensor, reduce_op="sum") if self.trainer.world_size > 1 else tensor

    def _gather_over_ranks(self, rows: torch.Tensor) -> torch.Tensor:
        """Every process's ``rows`` (any number each) concatenated along dim 0, in rank order."""
        if self.trainer.world_size == 1:
            return rows
        counts = self.trainer.strategy.all_gather(torch.tensor(len(rows), device=rows.device)).flatten().tolist()
        padded = rows.new_zeros(max(counts), *rows.shape[1:])
        padded[: len(rows)] = rows
        gathered = self.trainer.strategy.all_gather(padded)
        return torch.cat([part[:n] for part, n in zip(gathered, counts, strict=True)])

    def on_validation_epoch_start(self) -> None:
        self._start_evaluation()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch)

    def on_validation_epoch_end(self) -> None:
        self._log_evaluation("val")

    def on_test_epoch_start(self) -> None:
        self._start_evaluation()

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch)

    def on_test_epoch_end(self) -> None:
        self._log_evaluation("test")

    def _start_evaluation(self) -> None:
        self._eval_models = {t: self.representation(t).to(self.device) for t in self.task_grid}
        self._eval_vectors = {t: self.task_vectors(t).to(self.device) for t in self.task_grid}
        self._eval_metrics = {t: MultitaskMSE(t).to(self.device) for t in self.task_grid}

    def _evaluation_step(self, batch: dict[str, torch.Tensor]) -> None:
        for t in self.task_grid:
            x, task, target = self._task_items(batch, t, self._eval_vectors[t])
            if len(task):
                self._eval_metrics[t].update(_own_task(self._eval_models[t](x), task)[None], target, task)

    def _log_evaluation(self, split: str) -> None:
        values = {t: metric.compute() for t, metric in self._eval_metrics.items()}
        for t, value in values.items():
            self.log(f"{split}/mse_T{t}", value.float(), sync_dist=True)  # equal on every rank already
        self.log(f"{split}/mse", torch.stack(list(values.values())).mean().float(), prog_bar=True, sync_dist=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.hparams.solver == "svd":
            return ClosedFormUpdate(self.parameters())
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)

    def task_vectors(self, num_tasks: int) -> torch.Tensor:
        """The ``C`` (d×T, float64) the ``num_tasks``-task model approximates: unit columns if normalised."""
        model = self.models[_key(num_tasks)]
        if self.hparams.solver == "svd":
            return model.task_vectors()  # normalised when solved, if configured
        c = model.learned_task_vectors()
        return unit_columns(c) if self.hparams.normalize_task_vectors else c

    def factors(self, num_tasks: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W, Γ)`` of the rank-k model, ``W`` with orthonormal rows (float64).

        ``svd``: the SVD solution of ``task_vectors``. ``sgd``: the trained factors, orthonormalised;
        normalising divides each head ``γ_i`` by ``‖Wᵀγ_i‖`` (``W`` orthonormal: ``c_i = Wᵀγ_i``).
        """
        model = self.models[_key(num_tasks)]
        if self.hparams.solver == "svd":
            return svd_solution(self.task_vectors(num_tasks), self.hparams.k)
        w, gamma = model.factors()
        return (w, unit_columns(w.T @ gamma, gamma)) if self.hparams.normalize_task_vectors else (w, gamma)

    def representation(self, num_tasks: int) -> LinearRepresentation:
        """The rank-k model of ``num_tasks`` tasks with orthonormal ``W`` (a fresh module)."""
        w, gamma = self.factors(num_tasks)
        return LinearRepresentation(w.float().contiguous(), gamma.float().contiguous())

    @property
    def metric_name(self) -> str:
        """The sweep CSV's ``metric``: ``mse_task_vector`` or ``mse_label``."""
        return METRIC_NAMES[self.hparams.target]

    def robustness_subjects(self, batches: Sequence[dict[str, torch.Tensor]]) -> list[SweepSubject]:
        """One subject per T: the orthonormalised representation, its test MSE and closed forms."""
        return [self._subject(t, batches) for t in self.task_grid]

    def robustness_slopes(self) -> list[SlopeReport]:
        """R(T) for every model, from the learned task vectors (``svd``) or ``WᵀΓ`` (``sgd``)."""
        reports = []
        for t in self.task_grid:
            _, gamma = self.factors(t)
            learned = self.models[_key(t)].learned_task_vectors()
            reports.append(
                SlopeReport(
                    num_tasks=t,
                    robustness_slope=robustness_slope(self.task_vectors(t), self.hparams.k),
                    gamma_fro2_per_task=float((gamma**2).sum() / t),
                    robustness_slope_unnormalized=robustness_slope(learned, self.hparams.k),
                    mean_task_vector_sq_norm=float((learned**2).sum() / t),
                )
            )
        return reports

    def _task_items(
        self, batch: dict[str, Any], num_tasks: int, task_vectors: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x``, ``task`` and the MSE's target of the batch's items whose task is one of the first
        ``num_tasks``: the label, or ``c_iᵀx`` (float64) for ``target: task_vector``."""
        keep = batch["task"] < num_tasks
        x, task = batch["x"][keep], batch["task"][keep]
        if self.hparams.target == "label":
            return x, task, batch["target"][keep]
        return x, task, (x.double() * task_vectors.T[task]).sum(dim=1)

    def _subject(self, t: int, batches: Sequence[dict[str, torch.Tensor]]) -> SweepSubject:
        model = self.representation(t).to(self.device)
        vectors = self.task_vectors(t).to(self.device)
        items = [part for part in (self._task_items(batch, t, vectors) for batch in batches) if len(part[1])]
        name = self.metric_name
        w64, gamma64 = model.w.detach().double(), model.gamma.detach().double()

        @functools.cache
        def metric(copies: int) -> MultitaskMSE:
            with torch.inference_mode(False):  # plain state tensors, whoever calls first
                return MultitaskMSE(t, copies).to(self.device)

        def score(w: torch.Tensor, gamma: torch.Tensor) -> list[dict[str, float]]:
            mse = metric(len(w))
            mse.reset()
            for x, task, target in items:
                mse.update(_own_task(stacked_outputs(x, w, gamma), task), target, task)
            return [{name: float(value)} for value in mse.compute().view(-1)]

        def evaluate_stack(stacks: list[torch.Tensor]) -> list[dict[str, float]]:
            given = dict(zip(select_targets(model, subject.targets), stacks, strict=True))  # w, gamma or both
            copies = len(stacks[0])
            w = given.get("w", model.w.detach().expand(copies, *model.w.shape))
            return score(w, given.get("gamma", model.gamma.detach()))

        @functools.cache
        def moments() -> TaskMoments:  # of the clean model: computed on first use, before any damage
            accumulator = TaskMomentsMetric(t, self.hparams.input_dim).to(self.device)
            for x, task, target in items:
                accumulator.update(x, _own_task(model(x), task), target, task)
            return TaskMoments(**accumulator.compute())

        def expected(perturbation: Perturbation) -> dict[str, float] | None:
            if list(select_targets(model, subject.targets)) != ["w"]:
                return None  # the closed forms damage W alone
            value = expected_mse(perturbation, w64, gamma64, moments())
            return None if value is None else {name: value}

        subject = SweepSubject(
            name=f"linear_{self.hparams.solver}_k{self.hparams.k}_T{t}",
            module=model,
            evaluate=lambda: score(model.w.detach()[None], model.gamma.detach())[0],
            targets="^w$",
            num_tasks=t,
            expected=expected,
            evaluate_stack=evaluate_stack,
        )
        return subject


def _key(num_tasks: int) -> str:
    return f"T{num_tasks}"


def _own_task(predictions: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
    """Pick each item's prediction for its own task from (… × N × T) predictions: (… × N)."""
    return predictions.gather(-1, task.expand(predictions.shape[:-1])[..., None]).squeeze(-1)
