"""Theorem 2.7's setting: Gaussian task vectors ``c_i ~ N(0, I_d/d)``, inputs ``x ~ N(0, I_d)``, ``y = c_iᵀx + ε``.

The models train on one draw of ``C`` (``draw``), with nested tasks: the T-task model's tasks are the
first T columns, each with ``examples_per_task`` fresh training inputs. ``slope_draws()`` gives R(T)
over ``num_draws`` independent draws of ``C`` for a grid of ``d`` and ``k`` (theory only, no training).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import lightning as L
import torch
from torch.utils.data import DataLoader

from cognitive_reserve.errors import ConfigError, check_int
from cognitive_reserve.fields import Field, check_fields, declared
from cognitive_reserve.theory import SlopeDraws, gaussian_slope_draws, gaussian_task_vectors
from datamodules.label_pairs import TaskItems, pad_with_inert_items
from datamodules.resumable import ResumableDataLoader

#: Seed offsets of the train / val / test inputs (the draw's own seed gives ``C``).
SPLIT_SEEDS = {"train": 1, "val": 2, "test": 3}


def check_positive_list(field: str, values: Sequence[int]) -> list[int]:
    """A non-empty list of distinct integers >= 1, sorted."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
        raise ConfigError(field, values, "give a non-empty list of positive integers")
    for value in values:
        check_int(field, value, minimum=1)
    if len(set(values)) != len(values):
        raise ConfigError(field, list(values), "values must be distinct")
    return sorted(values)


@declared("data")
class GaussianTasksDataModule(L.LightningDataModule):
    """Regression tasks ``y = c_iᵀx + ε`` with i.i.d. Gaussian task vectors (paper Theorem 2.7)."""

    def __init__(
        self,
        input_dim: Annotated[int, Field("input dimension d", ge=1)] = 64,
        task_grid: Annotated[
            Sequence[int],
            Field(
                "numbers of tasks T of the models to train (nested tasks)",
                valid="non-empty list of distinct integers ≥ 1",
                check=check_positive_list,
            ),
        ] = (1, 2, 3, 4, 6, 8, 10, 15, 20),
        examples_per_task: Annotated[int, Field("training examples of every task, whatever T", ge=1)] = 256,
        eval_examples_per_task: Annotated[int, Field("validation and test examples of every task", ge=1)] = 256,
        label_noise: Annotated[
            float, Field("standard deviation of the label noise ε (0: noiseless targets)", ge=0)
        ] = 0.0,
        draw: Annotated[int, Field("seed of the draw of C (and of the inputs) the models train on")] = 0,
        num_draws: Annotated[
            int, Field("independent draws of C (seeds `draw` … `draw + num_draws − 1`) for `slope_draws`", ge=2)
        ] = 20,
        slope_dims: Annotated[
            Sequence[int] | None,
            Field(
                "input dimensions d of `slope_draws` (null: `[input_dim]`)",
                valid="null or a non-empty list of distinct integers ≥ 1",
                check=check_positive_list,
            ),
        ] = None,
        slope_ks: Annotated[
            Sequence[int],
            Field(
                "representation dimensions k of `slope_draws`",
                valid="non-empty list of distinct integers ≥ 1",
                check=check_positive_list,
            ),
        ] = (1, 2, 4),
        batch_size: Annotated[int, Field("batch size of every dataloader", ge=1)] = 1024,
    ) -> None:
        super().__init__()
        checked = check_fields(GaussianTasksDataModule, locals())
        self.task_grid = checked["task_grid"]
        self.input_dim = input_dim
        self.examples_per_task = examples_per_task
        self.eval_examples_per_task = eval_examples_per_task
        self.label_noise = label_noise
        self.draw = draw
        self.num_draws = num_draws
        self.slope_dims = checked["slope_dims"] or [input_dim]
        self.slope_ks = checked["slope_ks"]
        self.batch_size = batch_size
        self.datasets: dict[str, TaskItems] = {}

    @property
    def num_features(self) -> int:
        """Input dimension d seen by the model."""
        return self.input_dim

    @property
    def task_vectors(self) -> torch.Tensor:
        """The drawn ``C`` (d × max T, float64) the models learn."""
        return gaussian_task_vectors(self.input_dim, max(self.task_grid), self.draw)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        processes = self.trainer.world_size if self.trainer is not None else 1
        train = self._items("train", self.examples_per_task)
        membership = torch.stack([train.tensors["task"] < t for t in self.task_grid], dim=1)
        train = TaskItems({**train.tensors, "member": membership})
        self.datasets = {
            "train": pad_with_inert_items(train, processes, inert_task=max(self.task_grid)),
            "val": self._items("val", self.eval_examples_per_task),
            "test": self._items("test", self.eval_examples_per_task),
        }

    def train_dataloader(self) -> DataLoader:
        return ResumableDataLoader(self.datasets["train"], batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.datasets["val"], batch_size=self.batch_size)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.datasets["test"], batch_size=self.batch_size)

    def slope_draws(self) -> list[SlopeDraws]:
        """R(T) statistics over ``num_draws`` draws of ``C`` for every (d, k) of the slope grid."""
        return [
            row
            for d in self.slope_dims
            for k in self.slope_ks
            for row in gaussian_slope_draws(d, k, self.task_grid, self.num_draws, self.draw)
        ]

    def _items(self, split: str, per_task: int) -> TaskItems:
        """``per_task`` fresh inputs for each task, targets ``c_iᵀx + ε`` (float32 items)."""
        generator = torch.Generator().manual_seed(self.draw * 10 + SPLIT_SEEDS[split])
        c = self.task_vectors
        num_tasks = c.shape[1]
        x = torch.randn(num_tasks * per_task, self.input_dim, generator=generator, dtype=torch.float64)
        task = torch.arange(num_tasks).repeat_interleave(per_task)
        noise = torch.randn(len(x), generator=generator, dtype=torch.float64) * self.label_noise
        target = (x * c.T[task]).sum(dim=1) + noise
        return TaskItems({"x": x.float(), "task": task, "target": target.float()})
