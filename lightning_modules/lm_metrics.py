"""Per-language perplexity and bits per UTF-8 byte, as one torchmetrics Metric (sums reduce across processes)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torchmetrics import Metric


class LanguageModelingMetric(Metric):
    """Accumulates, per language, total NLL (nats) of the predicted tokens, their count and their UTF-8 bytes.

    ``compute()`` returns ``perplexity_<lang>`` = exp(NLL / tokens) and ``bits_per_byte_<lang>`` =
    NLL / ln 2 / bytes for every language seen so far. Bits per byte does not depend on the
    tokenizer, so it compares models with different tokenizers; perplexity per token does not.
    """

    full_state_update = False
    higher_is_better = False

    def __init__(self, languages: Sequence[str]) -> None:
        super().__init__()
        self.languages = list(languages)
        for name in ("nll", "tokens", "bytes"):
            self.add_state(name, torch.zeros(len(self.languages), dtype=torch.float64), dist_reduce_fx="sum")

    def update(
        self, token_nll: torch.Tensor, mask: torch.Tensor, num_bytes: torch.Tensor, language: torch.Tensor
    ) -> None:
        """``token_nll``/``mask``: (blocks × positions); ``num_bytes``/``language``: one value per block."""
        masked = torch.where(mask, token_nll.double(), 0.0)
        self.nll.index_add_(0, language, masked.sum(dim=1))
        self.tokens.index_add_(0, language, mask.sum(dim=1).double())
        self.bytes.index_add_(0, language, num_bytes.double())

    def compute(self) -> dict[str, torch.Tensor]:
        values = {}
        for index, language in enumerate(self.languages):
            if self.tokens[index] > 0:
                values[f"perplexity_{language}"] = torch.exp(self.nll[index] / self.tokens[index])
                values[f"bits_per_byte_{language}"] = self.nll[index] / math.log(2) / self.bytes[index]
        return values
