"""Binary regression tasks built from pairs of class labels (paper §3, linear experiments).

Task ``i`` distinguishes class ``a_i`` (target 0) from class ``b_i`` (target 1). Pairs come from
a seeded shuffle of all label pairs, so the tasks of a T-task model are the first T tasks of
every larger model (nested, like ``C_t ⊂ C_{t+1}`` in Theorem 2.7).

Every model in ``task_grid`` sees the same total number of training examples: the T-task model
takes ``train_examples // T`` examples of each of its tasks (or, with ``examples_per_task``, that many
per task whatever T). One dataset serves all models: each training item carries a boolean
membership row over ``task_grid``.

Control ``aligned_tasks``: every task is the same label pair (the first), each task learned from
its own fresh examples: the T-task model splits the pair's shuffled pool into T disjoint blocks
(models share the pool, so the 1-task model is the same as without the control).

Under DDP the training items are padded with inert ones (no membership, a task id no model has)
to a multiple of the number of processes, so the distributed sampler never repeats a real item:
every process sees a disjoint share and the models equal the single-process ones.
"""

from __future__ import annotations

import itertools
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from cognitive_reserve.errors import ConfigError, check_int
from cognitive_reserve.fields import Field, check_fields, declared
from datamodules.resumable import ResumableDataLoader


@dataclass(frozen=True)
class LabeledFeatures:
    """Features (n × d, float32) with integer class labels (n,)."""

    features: torch.Tensor
    labels: torch.Tensor


class TaskItems(Dataset):
    """Items ``{x, task, target[, member]}`` held as stacked tensors."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors["task"])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {name: tensor[index] for name, tensor in self.tensors.items()}


def check_task_grid(field: str, task_grid: Any) -> list[int]:
    """A non-empty list of distinct integers >= 1, sorted."""
    if isinstance(task_grid, str | bytes) or not isinstance(task_grid, Sequence) or not task_grid:
        raise ConfigError(field, task_grid, "give a non-empty list of numbers of tasks")
    grid = [check_int(field, t, minimum=1) for t in task_grid]
    if len(set(grid)) != len(grid):
        raise ConfigError(field, grid, "numbers of tasks must be distinct")
    return sorted(grid)


def check_task_count(task_grid: list[int], num_classes: int) -> None:
    """No more tasks than label pairs of ``num_classes`` classes."""
    available = num_classes * (num_classes - 1) // 2
    if task_grid[-1] > available:
        raise ConfigError(
            "data.task_grid", task_grid[-1], f"more tasks than label pairs ({num_classes} classes give {available})"
        )


@declared("data")
class LabelPairTasksDataModule(L.LightningDataModule):
    """Base class: subclasses say how to load features and labels for ``train`` and ``test``."""

    num_classes: int

    def __init__(
        self,
        task_grid: Annotated[
            Sequence[int],
            Field(
                "numbers of tasks T of the models to train, e.g. `[1, 2, ..., 10]`",
                valid="non-empty list of distinct integers in [1, number of label pairs] (45 for 10 classes)",
                check=check_task_grid,
            ),
        ] = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
        train_examples: Annotated[
            int,
            Field(
                "training examples per model, split equally among its tasks",
                ge="task_grid",
                valid="integer ≥ the largest of `task_grid`",
                later="every task has train_examples / T examples: at setup",
            ),
        ] = 200,
        examples_per_task: Annotated[
            int | None,
            Field(
                "training examples of every task whatever T (`train_examples` is then unused); "
                "null: `train_examples // T`",
                ge=1,
                later="every task has that many examples: at setup",
            ),
        ] = None,
        aligned_tasks: Annotated[
            bool, Field("control: every task is the same (first) label pair, each learned from its own examples")
        ] = False,
        val_fraction: Annotated[
            float, Field("share of the training split held out for validation (per class)", gt=0, le=0.9)
        ] = 0.15,
        batch_size: Annotated[int, Field("batch size of every dataloader", ge=1)] = 256,
        task_seed: Annotated[int, Field("seed of the pair order and of the example order")] = 0,
        standardize: Annotated[
            bool, Field("scale every input feature to zero mean, unit variance (train statistics)")
        ] = True,
        add_bias: Annotated[bool, Field("append a constant 1 feature so the linear model can fit an offset")] = True,
        num_workers: Annotated[int, Field("dataloader workers", ge=0)] = 0,
    ) -> None:
        super().__init__()
        self.task_grid = check_fields(LabelPairTasksDataModule, locals())["task_grid"]
        check_task_count(self.task_grid, self.num_classes)
        self.train_examples = train_examples
        self.examples_per_task = examples_per_task
        self.aligned_tasks = aligned_tasks
        self.val_fraction = val_fraction
        self.batch_size = batch_size
        self.task_seed = task_seed
        self.standardize = standardize
        self.add_bias = add_bias
        self.num_workers = num_workers
        self.pairs = label_pairs(self.num_classes, 1 if self.aligned_tasks else max(self.task_grid), task_seed)
        if self.aligned_tasks:
            self.pairs = self.pairs * max(self.task_grid)
        self.datasets: dict[str, TaskItems] = {}

    @abstractmethod
    def load_split(self, split: str) -> LabeledFeatures:
        """Features and labels of ``split`` ∈ {``train``, ``test``} (called in ``setup``)."""

    @property
    @abstractmethod
    def raw_num_features(self) -> int:
        """Input dimension before the optional bias feature."""

    @property
    def num_features(self) -> int:
        """Input dimension d seen by the model."""
        return self.raw_num_features + int(self.add_bias)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        train, test = self.load_split("train"), self.load_split("test")
        train, val = _split_per_class(train, self.val_fraction, self.task_seed)
        mean, std = train.features.mean(0), train.features.std(0)
        std = torch.where(std > 1e-8, std, torch.ones_like(std))
        prepare = self._feature_transform(mean, std)
        generator = torch.Generator().manual_seed(self.task_seed)
        train_items = self._train_items(LabeledFeatures(prepare(train.features), train.labels), generator)
        processes = self.trainer.world_size if self.trainer is not None else 1
        self.datasets = {
            "train": pad_with_inert_items(train_items, processes, inert_task=max(self.task_grid)),
            "val": self._eval_items(LabeledFeatures(prepare(val.features), val.labels)),
            "test": self._eval_items(LabeledFeatures(prepare(test.features), test.labels)),
        }

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def task_names(self) -> list[str]:
        """Human-readable names ``"a vs b"`` of the tasks, in task order."""
        return [f"{a} vs {b}" for a, b in self.pairs]

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        loader = ResumableDataLoader if shuffle else DataLoader  # training: a resumed fit continues its epoch
        return loader(self.datasets[split], batch_size=self.batch_size, shuffle=shuffle, num_workers=self.num_workers)

    def _feature_transform(self, mean: torch.Tensor, std: torch.Tensor):
        def prepare(features: torch.Tensor) -> torch.Tensor:
            x = (features - mean) / std if self.standardize else features
            if self.add_bias:
                x = torch.cat([x, torch.ones(len(x), 1)], dim=1)
            return x.float().contiguous()

        return prepare

    def _quota(self, num_tasks: int) -> int:
        """Training examples per task of the ``num_tasks``-task model."""
        return self.examples_per_task or self.train_examples // num_tasks

    def _quota_error(self, task: int, available: int, needed: int) -> ConfigError:
        field, value = (
            ("data.train_examples", self.train_examples)
            if self.examples_per_task is None
            else ("data.examples_per_task", self.examples_per_task)
        )
        a, b = self.pairs[task]
        return ConfigError(
            field, value, f"task {task} ({a} vs {b}) has only {available} training examples but needs {needed}"
        )

    def _train_items(self, data: LabeledFeatures, generator: torch.Generator) -> TaskItems:
        if self.aligned_tasks:
            return self._aligned_train_items(data, generator)
        quotas = {t: self._quota(t) for t in self.task_grid}
        columns: dict[str, list[torch.Tensor]] = {"x": [], "task": [], "target": [], "member": []}
        for task, (a, b) in enumerate(self.pairs):
            pool = torch.nonzero((data.labels == a) | (data.labels == b)).flatten()
            pool = pool[torch.randperm(len(pool), generator=generator)]
            needed = max(q for t, q in quotas.items() if t > task)
            if len(pool) < needed:
                raise self._quota_error(task, len(pool), needed)
            rank = torch.arange(needed)
            member = torch.stack([(rank < quotas[t]) & (task < t) for t in self.task_grid], dim=1)
            _append_items(columns, data, pool[:needed], task, b, member)
        return TaskItems({name: torch.cat(parts) for name, parts in columns.items()})

    def _aligned_train_items(self, data: LabeledFeatures, generator: torch.Generator) -> TaskItems:
        """Every model splits one shuffled pool of the single pair into disjoint blocks, one per task."""
        a, b = self.pairs[0]
        pool = torch.nonzero((data.labels == a) | (data.labels == b)).flatten()
        pool = pool[torch.randperm(len(pool), generator=generator)]
        columns: dict[str, list[torch.Tensor]] = {"x": [], "task": [], "target": [], "member": []}
        for column, t in enumerate(self.task_grid):
            quota = self._quota(t)
            if len(pool) < t * quota:
                raise self._quota_error(0, len(pool), t * quota)
            member = torch.zeros(quota, len(self.task_grid), dtype=torch.bool)
            member[:, column] = True
            for task in range(t):
                _append_items(columns, data, pool[task * quota : (task + 1) * quota], task, b, member)
        return TaskItems({name: torch.cat(parts) for name, parts in columns.items()})

    def _eval_items(self, data: LabeledFeatures) -> TaskItems:
        columns: dict[str, list[torch.Tensor]] = {"x": [], "task": [], "target": []}
        for task, (a, b) in enumerate(self.pairs):
            chosen = torch.nonzero((data.labels == a) | (data.labels == b)).flatten()
            columns["x"].append(data.features[chosen])
            columns["task"].append(torch.full((len(chosen),), task))
            columns["target"].append((data.labels[chosen] == b).float())
        return TaskItems({name: torch.cat(parts) for name, parts in columns.items()})


def _append_items(
    columns: dict[str, list[torch.Tensor]],
    data: LabeledFeatures,
    chosen: torch.Tensor,
    task: int,
    positive_label: int,
    member: torch.Tensor,
) -> None:
    """Add the ``chosen`` rows of ``data`` as items of ``task`` (target 1 for ``positive_label``)."""
    columns["x"].append(data.features[chosen])
    columns["task"].append(torch.full((len(chosen),), task))
    columns["target"].append((data.labels[chosen] == positive_label).float())
    columns["member"].append(member)


def pad_with_inert_items(items: TaskItems, multiple: int, inert_task: int) -> TaskItems:
    """Append items that belong to no model (``member`` all false, ``task`` = ``inert_task``, which
    every model's ``task < T`` filter drops) until the length is a multiple of ``multiple``."""
    missing = -len(items) % multiple
    if missing == 0:
        return items
    padded = {}
    for name, tensor in items.tensors.items():
        filler = torch.zeros((missing, *tensor.shape[1:]), dtype=tensor.dtype)
        if name == "task":
            filler.fill_(inert_task)
        padded[name] = torch.cat([tensor, filler])
    return TaskItems(padded)


def label_pairs(num_classes: int, count: int, seed: int) -> list[tuple[int, int]]:
    """The first ``count`` of all label pairs ``(a, b)``, ``a < b``, in a seeded order."""
    pairs = list(itertools.combinations(range(num_classes), 2))
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed)).tolist()
    return [pairs[i] for i in order[:count]]


def _split_per_class(data: LabeledFeatures, fraction: float, seed: int) -> tuple[LabeledFeatures, LabeledFeatures]:
    generator = torch.Generator().manual_seed(seed + 1)
    keep, held = [], []
    for label in torch.unique(data.labels):
        idx = torch.nonzero(data.labels == label).flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        cut = max(1, round(fraction * len(idx)))
        held.append(idx[:cut])
        keep.append(idx[cut:])
    keep_idx, held_idx = torch.cat(keep).sort().values, torch.cat(held).sort().values
    return (
        LabeledFeatures(data.features[keep_idx], data.labels[keep_idx]),
        LabeledFeatures(data.features[held_idx], data.labels[held_idx]),
    )
