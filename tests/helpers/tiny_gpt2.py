"""A tiny real Hugging Face GPT-2 inside a small sweepable LightningModule, and learnable token data."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader
from torchmetrics import MeanMetric
from transformers import GPT2Config, GPT2LMHeadModel

from cognitive_reserve.layout import ModelLayout
from lightning_modules.gpt2_layout import gpt2_layout
from lightning_modules.sweepable import SweepableMixin

VOCAB = 64
BLOCK = 16


class TinyGPT2(SweepableMixin, L.LightningModule):
    """``GPT2LMHeadModel`` (2 layers, 32 wide) as ``self.model``; the sweep scores mean token NLL."""

    robustness_targets = "attn"
    robustness_name = "tiny-gpt2"

    def __init__(self, n_embd: int = 32, lr: float = 3e-3) -> None:
        super().__init__()
        self.lr = lr
        config = GPT2Config(
            vocab_size=VOCAB, n_positions=BLOCK, n_embd=n_embd, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0
        )
        self.model = GPT2LMHeadModel(config)

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        return self.model(input_ids=batch, labels=batch).loss

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self.log("val/loss", self.model(input_ids=batch, labels=batch).loss)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.lr)

    def robustness_layout(self) -> ModelLayout:
        return gpt2_layout(self.model, prefix="model.")

    def robustness_metric(self) -> MeanMetric:
        return MeanMetric()

    def robustness_update(self, metric: MeanMetric, batch: torch.Tensor) -> None:
        metric.update(self.model(input_ids=batch, labels=batch).loss, weight=batch.numel())


class CountingSequences(L.LightningDataModule):
    """Token sequences ``start, start+step, ...`` (mod the vocabulary): easy to learn, never downloaded."""

    def __init__(self, train: int = 96, val: int = 32, batch_size: int = 16) -> None:
        super().__init__()
        self.sizes = {"train": train, "val": val}
        self.batch_size = batch_size

    def setup(self, stage: str) -> None:
        generator = torch.Generator().manual_seed(0)
        self.data = {}
        for split, size in self.sizes.items():
            start = torch.randint(0, VOCAB, (size, 1), generator=generator)
            step = torch.randint(1, 4, (size, 1), generator=generator)
            self.data[split] = (start + step * torch.arange(BLOCK)) % VOCAB

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.data["train"], batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.data["val"], batch_size=self.batch_size)
