"""Linear multitask regression (paper §2–3): representation ``W`` (k×d), heads ``Γ`` (k×T).

One module trains a whole family of independent models, one per T in the data's ``task_grid``,
each on its own ``train_examples`` items (the membership column of the batch), so a single
``fit`` produces the robustness-vs-T comparison of Figure 3.

Solvers (``lightning_modules.linear_solvers``, one class each, chosen by ``solver``):
- ``svd`` (the paper's way): fit the task vectors ``C`` (d×T) — exact per-task ridge least
  squares from one pass over the data — then take the SVD solution ``W = U_kᵀ, Γ = Σ_k V_kᵀ``.
- ``sgd``: learn ``W`` and ``Γ`` end to end; ``W`` is orthonormalised (QR, scale pushed into
  ``Γ``) before it is perturbed.
Either way the perturbed model is ``LinearRepresentation(W, Γ)`` with orthonormal rows in ``W``
(``lightning_modules.linear_sweep`` scores it).

With ``normalize_task_vectors`` (the paper's released code) every task vector ``c_i`` is scaled to
unit norm first: the SVD solution, R(T), the closed forms, the sweeps and (``svd``: the parameter ``c``
holds it) the monitors all use the normalised ``C``.
``target`` says what a damaged model's MSE is measured against: ``task_vector`` (``c_iᵀx`` of the
task vector the model approximates, paper Figure 3 and Theorem 2.5) or ``label`` (the 0/1 label).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import lightning as L
import torch
from torch import nn

from cognitive_reserve import SweepSubject
from cognitive_reserve.errors import ConfigError
from cognitive_reserve.fields import Field, check_fields, declared
from cognitive_reserve.provenance import WeightsProvenance
from cognitive_reserve.theory import robustness_slope
from lightning_modules.family import Family
from lightning_modules.linear_solvers import SgdSolver, SvdSolver, TaskModel, TrainingItems, own_task
from lightning_modules.linear_sweep import Items, LinearRepresentation, LinearSweepScorer
from lightning_modules.task_metrics import MultitaskMSE

Target = Literal["task_vector", "label"]
#: The sweep CSV's ``metric`` name for each ``target``: what the MSE is measured against.
METRIC_NAMES: dict[str, str] = {"task_vector": "mse_task_vector", "label": "mse_label"}


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

    family = Family(
        "linear", groups=("linear", "digits", "mnist"), metrics=("mse_task_vector", "mse_label"), slope=True
    )  # studies are named after their data (digits_examples_per_task)

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
        self.solver = (
            SvdSolver(k, ridge, normalize_task_vectors)
            if solver == "svd"
            else SgdSolver(k, lr, weight_decay, normalize_task_vectors)
        )
        self.automatic_optimization = self.solver.automatic_optimization
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
                "model.task_grid/input_dim",
                (self.task_grid, self.hparams.input_dim),
                f"do not match the data (task_grid={grid}, num_features={dim})",
            )

    def _build(self, task_grid: list[int], input_dim: int) -> None:
        if self.hparams.k > input_dim:
            raise ConfigError("model.k", self.hparams.k, f"must be <= the input dimension {input_dim}")
        generator = torch.Generator().manual_seed(self.hparams.init_seed)
        for t in task_grid:
            self.models[_key(t)] = self.solver.model(input_dim, t, generator)

    def model(self, num_tasks: int) -> TaskModel:
        """The solver's model of ``num_tasks`` tasks."""
        return self.models[_key(num_tasks)]

    def weights_origin(self, seed: int | None) -> WeightsProvenance:
        """Before ``fit``: the ``sgd`` solver's initial factors (from ``init_seed``); the ``svd`` solver has none."""
        if self.hparams.solver == "svd":
            return WeightsProvenance(
                "initial",
                unmeasurable="the svd solver computes W and Γ in closed form during fit; before it the task vectors "
                "are zeros and every damage level scores 0",
            )
        return WeightsProvenance("initial", seed=self.hparams.init_seed)

    # ---- training: the solver's ------------------------------------------------------------------

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor | None:
        return self.solver.training_step(self, batch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.solver.configure_optimizers(self)

    def training_items(self, batch: dict[str, torch.Tensor]) -> TrainingItems:
        """Each model's training items of ``batch`` (its column of ``member``): ``(T, model, (x, task, target))``."""
        for column, t in enumerate(self.task_grid):
            member = batch["member"][:, column]
            yield t, self.model(t), (batch["x"][member], batch["task"][member], batch["target"][member])

    def sum_over_ranks(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over all processes."""
        return self.trainer.strategy.reduce(tensor, reduce_op="sum") if self.trainer.world_size > 1 else tensor

    def gather_over_ranks(self, rows: torch.Tensor) -> torch.Tensor:
        """Every process's ``rows`` (any number each) concatenated along dim 0, in rank order."""
        if self.trainer.world_size == 1:
            return rows
        counts = self.trainer.strategy.all_gather(torch.tensor(len(rows), device=rows.device)).flatten().tolist()
        padded = rows.new_zeros(max(counts), *rows.shape[1:])
        padded[: len(rows)] = rows
        gathered = self.trainer.strategy.all_gather(padded)
        return torch.cat([part[:n] for part, n in zip(gathered, counts, strict=True)])

    # ---- evaluation ---------------------------------------------------------------------------------

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
                self._eval_metrics[t].update(own_task(self._eval_models[t](x), task)[None], target, task)

    def _log_evaluation(self, split: str) -> None:
        values = {t: metric.compute() for t, metric in self._eval_metrics.items()}
        for t, value in values.items():
            self.log(f"{split}/mse_T{t}", value.float(), sync_dist=True)  # equal on every rank already
        self.log(f"{split}/mse", torch.stack(list(values.values())).mean().float(), prog_bar=True, sync_dist=True)

    # ---- what the sweeps and the theory read -------------------------------------------------------

    def task_vectors(self, num_tasks: int) -> torch.Tensor:
        """The ``C`` (d×T, float64) the ``num_tasks``-task model approximates: unit columns if normalised."""
        return self.model(num_tasks).task_vectors()

    def factors(self, num_tasks: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W, Γ)`` of the rank-k model, ``W`` with orthonormal rows (float64).

        ``svd``: the SVD solution of ``task_vectors``. ``sgd``: the trained factors, orthonormalised;
        normalising divides each head ``γ_i`` by ``‖Wᵀγ_i‖`` (``W`` orthonormal: ``c_i = Wᵀγ_i``).
        """
        return self.model(num_tasks).factors()

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
            learned = self.model(t).learned_task_vectors()
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

    def _task_items(self, batch: dict[str, Any], num_tasks: int, task_vectors: torch.Tensor) -> Items:
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
        scorer = LinearSweepScorer(model, items, self.hparams.input_dim, self.metric_name)
        return scorer.subject(f"linear_{self.hparams.solver}_k{self.hparams.k}_T{t}")


def _key(num_tasks: int) -> str:
    return f"T{num_tasks}"
