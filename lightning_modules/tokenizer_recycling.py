"""Tokenizer recycling (de Vries & Nissim, 2021), as the paper's §3 uses it for the bilingual GPT-2.

A new GPT-2 style byte-level BPE tokenizer with exactly the model's vocabulary size is trained on
the training text (``datamodules.tokenization.train_byte_level_bpe``); the token embeddings (tied
to the LM head) are re-initialised; optionally only the embeddings train for the first N optimizer
steps, then everything (``lightning_modules.lr_schedule.LrSchedule``). The architecture, and so the
shape of every weight, stays the same.
"""

from __future__ import annotations

import torch
from transformers import GPT2LMHeadModel


@torch.no_grad()
def reinitialize_token_embeddings(model: GPT2LMHeadModel, seed: int) -> None:
    """Fresh ``N(0, initializer_range²)`` token embeddings (tied LM head included); shape unchanged.

    Drawn from a CPU generator seeded with ``seed``, so every process gets identical weights.
    """
    embedding = model.get_input_embeddings().weight
    generator = torch.Generator().manual_seed(seed)
    fresh = torch.randn(embedding.shape, generator=generator, dtype=torch.float32) * model.config.initializer_range
    embedding.copy_(fresh.to(device=embedding.device, dtype=embedding.dtype))
