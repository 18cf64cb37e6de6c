"""A small sweepable classifier on separable blobs, importable by spawned DDP processes."""

from __future__ import annotations

import lightning as L
import torch
import torchmetrics
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_modules import SweepableMixin


class BlobClassifier(SweepableMixin, L.LightningModule):
    """Three blobs in 4-d, a fixed random MLP (no training needed: its accuracy is what it is)."""

    robustness_targets = r"body\..*weight"
    robustness_name = "blobs"

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        pass

    def robustness_metric(self) -> torchmetrics.Metric:
        return torchmetrics.classification.MulticlassAccuracy(num_classes=3, average="micro")

    def robustness_update(self, metric: torchmetrics.Metric, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        x, y = batch
        metric.update(self(x).argmax(-1), y)


class Blobs(L.LightningDataModule):
    """300 labelled points; training batches of 32 (shuffled), ``batch_size`` items per validation and test batch."""

    def __init__(self, batch_size: int = 64) -> None:
        super().__init__()
        self.batch_size = batch_size

    def setup(self, stage: str) -> None:
        generator = torch.Generator().manual_seed(0)
        y = torch.arange(300) % 3
        x = torch.randn(300, 4, generator=generator) * 0.3 + torch.eye(4)[y] * 3
        self.data = TensorDataset(x, y)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.data, batch_size=32, shuffle=True)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.data, batch_size=self.batch_size)

    val_dataloader = test_dataloader
