"""The tokenizer of ``GPT2LanguageModel``: one owner, one rule for where it comes from.

``TokenizerOwner`` holds the candidates and decides, in one place (``current``): a tokenizer **restored
from a checkpoint** (``--ckpt_path``) beats the one **given** at construction (``tokenizer: <name or
directory>``, or with ``tokenizer: null`` the one that comes with the ``pretrained``/``init_from``
weights), which beats one **trained** on the run's text (``tokenizer: train``: trained only when neither
exists, once, on global rank 0 and broadcast; tokenizer recycling).

It keeps the model in step with the tokenizer that counts: every candidate has exactly the model's
vocabulary size, the model's bos/eos ids are the tokenizer's end-of-text id, and a trained tokenizer
comes with freshly initialised token embeddings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from transformers import AutoTokenizer, GPT2LMHeadModel, PreTrainedTokenizerFast

from cognitive_reserve.errors import ConfigError, first_line
from datamodules.tokenization import check_vocab_size, tokenizer_from_json, tokenizer_to_json, train_byte_level_bpe
from lightning_modules.tokenizer_recycling import reinitialize_token_embeddings

#: ``tokenizer`` setting that trains a new byte-level BPE and re-initialises the token embeddings.
TRAIN_TOKENIZER = "train"


class TokenizerOwner:
    """The model's tokenizer: restored from a checkpoint > given at construction > trained on the data."""

    def __init__(self, model: GPT2LMHeadModel, given: PreTrainedTokenizerFast | None, setting: str | None) -> None:
        """``given``: the tokenizer the settings give (None with ``tokenizer: train``), ``setting`` its
        ``tokenizer`` value (named when its size differs from the model's vocabulary)."""
        self.model = model
        self._restored: PreTrainedTokenizerFast | None = None
        self._given = given
        self._trained: PreTrainedTokenizerFast | None = None
        if given is not None:
            check_vocab_size(given, model.config.vocab_size, "model.tokenizer", setting)
            self._follow()

    @property
    def current(self) -> PreTrainedTokenizerFast | None:
        """The tokenizer that counts (None while there is none: ``tokenizer: train`` before training)."""
        for tokenizer in (self._restored, self._given, self._trained):
            if tokenizer is not None:
                return tokenizer
        return None

    def restore(self, tokenizer: PreTrainedTokenizerFast) -> None:
        """A checkpoint's tokenizer: it beats every other."""
        size = self.model.config.vocab_size
        check_vocab_size(tokenizer, size, "ckpt_path", f"tokenizer of {len(tokenizer)} tokens")
        self._restored = tokenizer
        self._follow()

    def get_or_train(self, train: Callable[[int], PreTrainedTokenizerFast], init_seed: int) -> PreTrainedTokenizerFast:
        """``current``; when there is none yet, ``train(vocab_size)``'s tokenizer (once), with the token
        embeddings re-initialised from ``init_seed``."""
        if self.current is None:
            self._trained = train(self.model.config.vocab_size)
            reinitialize_token_embeddings(self.model, init_seed)
            self._follow()
        return self.current

    def _follow(self) -> None:
        """The model's bos/eos ids become those of the tokenizer that counts."""
        for config in (self.model.config, self.model.generation_config):
            if config is not None:
                config.bos_token_id = config.eos_token_id = self.current.eos_token_id


def given_tokenizer(
    setting: str | None, with_weights: Callable[[], PreTrainedTokenizerFast] | None
) -> PreTrainedTokenizerFast | None:
    """The tokenizer the ``tokenizer`` setting gives: loaded from a name or directory; for null, the one that
    comes with the weights (``with_weights()``); None for ``train``."""
    if setting == TRAIN_TOKENIZER:
        return None
    if setting is not None:
        return load_tokenizer("model.tokenizer", setting)
    if with_weights is None:
        raise ConfigError(
            "model.tokenizer", None, "a model built from gpt2_config has no tokenizer to keep: use 'train' or a path"
        )
    return with_weights()


def load_tokenizer(field: str, name: str) -> PreTrainedTokenizerFast:
    """A fast tokenizer with an end-of-text token, from a Hugging Face name or directory."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise ConfigError(field, name, first_line(err)) from None
    if not getattr(tokenizer, "is_fast", False) or tokenizer.eos_token_id is None:
        raise ConfigError(field, name, "needs a fast tokenizer with an end-of-text (eos) token")
    return tokenizer


def train_on_rank_zero(trainer: Any, texts: Callable[[], Iterable[str]], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE of ``vocab_size`` tokens trained on ``texts()`` by global rank 0 (or without a trainer),
    broadcast to the other processes; a ``ConfigError`` there is raised on every process."""
    payload: tuple[str, Any] | None = None
    if trainer is None or trainer.is_global_zero:
        try:
            payload = ("json", tokenizer_to_json(train_byte_level_bpe(texts(), vocab_size)))
        except ConfigError as err:
            payload = ("error", (err.field, err.value, err.reason))
    if trainer is not None and trainer.world_size > 1:
        payload = trainer.strategy.broadcast(payload, src=0)
    kind, content = payload
    if kind == "error":
        raise ConfigError(*content)
    return tokenizer_from_json(content)
