"""STAND-IN until branch ``gpt2`` (issue #3) is merged: at merge, take that branch's version of this file.

It holds only ``load_lm_checkpoint``, with the signature and checkpoint contract of the
``GPT2LanguageModel`` of branch ``gpt2``: ``state_dict`` keys ``model.<GPT2LMHeadModel key>``,
``gpt2_config`` (plain dict of the ``GPT2Config``), ``tokenizer_json`` (the tokenizer as one JSON
string, ``<|endoftext|>`` = BOS = EOS = UNK); everything loads with ``weights_only=True``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import GPT2Config, PreTrainedTokenizerFast

from robustness.errors import ConfigError

#: GPT-2's end-of-text token: document separator, BOS and EOS at once.
END_OF_TEXT = "<|endoftext|>"


def load_lm_checkpoint(
    path: str | Path, field: str = "checkpoint"
) -> tuple[GPT2Config, dict[str, torch.Tensor], PreTrainedTokenizerFast]:
    """``(GPT2Config, GPT2LMHeadModel state dict, tokenizer)`` from a ``GPT2LanguageModel`` checkpoint.

    Raises ``ConfigError(field, path)`` for a missing file or a file that is not such a checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(field, str(path), "no such checkpoint file")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError(field, str(path), "not a Lightning checkpoint (no state_dict)")
    missing = sorted({"gpt2_config", "tokenizer_json"} - set(checkpoint))
    if missing:
        raise ConfigError(field, str(path), f"not a GPT2LanguageModel checkpoint (missing {missing})")
    config = GPT2Config.from_dict(checkpoint["gpt2_config"])
    state = {
        key.removeprefix("model."): value for key, value in checkpoint["state_dict"].items() if key.startswith("model.")
    }
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(checkpoint["tokenizer_json"]),
        bos_token=END_OF_TEXT,
        eos_token=END_OF_TEXT,
        unk_token=END_OF_TEXT,
    )
    return config, state, tokenizer
