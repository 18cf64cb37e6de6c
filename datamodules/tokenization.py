"""Byte-level BPE tokenizers shared by the data and model layers.

Training a GPT-2 style byte-level BPE of an exact vocabulary size, the tokenizer's plain-string
(JSON) form used inside checkpoints, the vocabulary-size check, and the number of UTF-8 bytes each
token stands for (what makes bits per byte exact). Lives in the data layer, below the models, so
both import it from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from cognitive_reserve.errors import ConfigError

#: What a data module tokenizes with: a function returning the tokenizer in use when the data is built.
TokenizerSource = Callable[[], PreTrainedTokenizerBase]

#: GPT-2's end-of-text token: document separator, BOS and EOS at once.
END_OF_TEXT = "<|endoftext|>"


def train_byte_level_bpe(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a GPT-2 style byte-level BPE with exactly ``vocab_size`` tokens (``<|endoftext|>`` included).

    Lossless: decoding the ids of any text gives the text back. Raises ``ConfigError`` when the
    text is too small to learn that many merges.
    """
    if vocab_size < 257:
        raise ConfigError(
            "vocab_size", vocab_size, "a byte-level BPE needs at least 257 tokens (256 bytes + end of text)"
        )
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer)
    if backend.get_vocab_size() != vocab_size:
        raise ConfigError(
            "model.gpt2_config.vocab_size",
            vocab_size,
            f"the tokenizer training text only yields {backend.get_vocab_size()} of these tokens: give more training "
            "text (the train files, data.tokenizer_train_bytes) or a smaller vocab_size",
        )
    return wrap_backend(backend)


def learnable_tokens(texts: Iterable[str], wanted: int) -> tuple[int, int]:
    """``(at most how many tokens train_byte_level_bpe can learn from texts, bytes read)``, reading only until
    ``wanted`` is reached. The bound: its 257 first tokens (256 bytes, end of text) plus one per merge, and a merge
    shortens at least one distinct pre-tokenized word by a symbol, so there are at most Σ (bytes − 1) over them."""
    pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    seen: set[str] = set()
    bound, used = 257, 0
    for text in texts:
        used += len(text.encode("utf-8"))
        for word, _ in pre_tokenizer.pre_tokenize_str(text):  # one character per byte
            if word not in seen:
                seen.add(word)
                bound += len(word) - 1
        if bound >= wanted:
            break
    return bound, used


def wrap_backend(backend: Tokenizer) -> PreTrainedTokenizerFast:
    """A transformers fast tokenizer around ``backend`` with ``<|endoftext|>`` as BOS, EOS and UNK."""
    if backend.token_to_id(END_OF_TEXT) is None:
        raise ConfigError("tokenizer", END_OF_TEXT, "the tokenizer has no end-of-text token")
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=END_OF_TEXT, eos_token=END_OF_TEXT, unk_token=END_OF_TEXT
    )


def tokenizer_to_json(tokenizer: PreTrainedTokenizerFast) -> str:
    """The whole tokenizer (vocabulary, merges, pre-tokenizer, special tokens) as one JSON string."""
    return tokenizer.backend_tokenizer.to_str()


def tokenizer_from_json(text: str) -> PreTrainedTokenizerFast:
    """Inverse of ``tokenizer_to_json``."""
    return wrap_backend(Tokenizer.from_str(text))


def check_vocab_size(tokenizer: PreTrainedTokenizerFast, vocab_size: int, field: str, value: object) -> None:
    """The tokenizer must have exactly one token per embedding row, else ``ConfigError(field, value)``."""
    if len(tokenizer) != vocab_size:
        raise ConfigError(
            field,
            value,
            f"the tokenizer has {len(tokenizer)} tokens but the model has {vocab_size} token embeddings (vocab_size)",
        )


def token_byte_lengths(tokenizer: PreTrainedTokenizerFast) -> torch.Tensor:
    """UTF-8 bytes each token id stands for (0 for special tokens), as an int64 tensor of vocab size.

    Exact for byte-level BPE tokenizers: the bytes of a text equal the sum over its tokens.
    Raises ``ConfigError`` for any other kind of tokenizer.
    """
    to_byte = _unicode_to_byte()
    special = {
        token.content for token in tokenizer.backend_tokenizer.get_added_tokens_decoder().values() if token.special
    }
    lengths = torch.zeros(len(tokenizer), dtype=torch.int64)
    for token, index in tokenizer.get_vocab().items():
        if token in special:
            continue
        if any(char not in to_byte for char in token):
            raise ConfigError(
                "model.tokenizer",
                token,
                "is not a byte-level BPE token: bits per byte needs a byte-level tokenizer (like GPT-2's)",
            )
        lengths[index] = len(token)
    return lengths


@cache
def _unicode_to_byte() -> dict[str, int]:
    """Inverse of the byte-level alphabet: printable Latin-1 bytes map to themselves, the rest to 256+."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping = {chr(b): b for b in printable}
    shifted = 0
    for b in range(256):
        if b not in printable:
            mapping[chr(256 + shifted)] = b
            shifted += 1
    return mapping


def tokenizer_source(tokenizer: PreTrainedTokenizerBase | TokenizerSource) -> TokenizerSource:
    """``tokenizer`` as a ``TokenizerSource``: a tokenizer (itself callable) is wrapped, a function kept."""
    if isinstance(tokenizer, PreTrainedTokenizerBase):
        return lambda: tokenizer
    if not callable(tokenizer):
        raise TypeError(f"use_tokenizer needs a tokenizer or a function returning one, got {type(tokenizer).__name__}")
    return tokenizer
