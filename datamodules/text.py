"""Monolingual / bilingual language-model corpora with equal token budgets, as windows of token streams.

Each language has a train, validation and test source (``datamodules.corpus``: a local text file or a
dataset read through ``datasets.load_dataset``).

**Streams and windows.** A split of one language becomes one token stream
``<|endoftext|> doc₁ <|endoftext|> doc₂ <|endoftext|> …``, read as ``TokenWindows``
(``datamodules.windows``): every token after the leading ``<|endoftext|>`` is predicted exactly once,
and each window carries the UTF-8 bytes of its predicted tokens, so bits per byte is exact on any subset
of windows. Training uses disjoint blocks of ``block_size`` tokens. Evaluation streams keep their last,
partial block (targets padded with -100) and are whole documents (bound them with the source's ``take``),
so models with different tokenizers are evaluated on exactly the same text.

**Sliding windows** (``eval_stride``, the paper code's evaluation protocol, e.g. 1024 / 512): the
validation and test streams are read in windows of ``block_size`` tokens that advance by
``eval_stride``; each window predicts only the tokens no earlier window predicted, so every token has at
least ``block_size - eval_stride`` tokens of context. ``eval_stride: null`` (default) evaluates on
disjoint blocks.

**Equal budgets.** Training uses ``train_tokens // block_size`` blocks in total, split between the
languages by ``language_ratio`` (largest remainder, so the total is exact), each language's
stream cut from its first documents, counted in the tokens of the model's own tokenizer. A
monolingual and a bilingual run with the same ``train_tokens`` train on the same number of tokens.

The tokenizer is handed over with ``use_tokenizer`` (``datamodules.tokenized``): ``GPT2LanguageModel.setup``
hands over a function that returns its tokenizer, which may first train one on
``tokenizer_training_text()``; datasets are built on first use.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict
from typing import Annotated

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_only
from torch.utils.data import ConcatDataset, Dataset
from transformers import PreTrainedTokenizerFast

from cognitive_reserve.errors import ConfigError, check_number
from cognitive_reserve.fields import Field, check_fields, declared
from datamodules.corpus import SPLITS, LanguageCorpus, check_corpora, read_documents
from datamodules.tokenization import learnable_tokens, token_byte_lengths
from datamodules.tokenized import CACHE_DIR, EVAL_BATCH_SIZE, NUM_WORKERS, TokenizedDataModule
from datamodules.windows import TokenWindows

_ENCODE_BATCH = 256


@declared("data")
class TextCorpusDataModule(TokenizedDataModule):
    """English (monolingual) or English + Greek (bilingual) LM data with equal token budgets."""

    tokenizer_giver = "GPT2LanguageModel"

    def __init__(
        self,
        corpora: Annotated[
            dict[str, LanguageCorpus],
            Field(
                "per language code (e.g. `en`, `el`; the order sets the language index): its "
                "`train`/`validation`/`test` sources (`TextSource`, next table). Every language is evaluated",
                valid="non-empty mapping: language code (non-empty string) → exactly the sources `train`, "
                "`validation`, `test`",
                check=check_corpora,
            ),
        ],
        train_tokens: Annotated[
            int,
            Field(
                "training tokens in total (predicted positions), in the model's tokenizer; rounded down to whole "
                "blocks",
                ge="block_size",
                later="each language's training text holds its share: at first use",
            ),
        ],
        language_ratio: Annotated[
            dict[str, float] | None,
            Field(
                "share of `train_tokens` per language (normalised); null: equal shares",
                valid="null or one finite share > 0 per language of `corpora`",
                later="against `corpora`: at construction; every language gets a block: at first use",
            ),
        ] = None,
        block_size: Annotated[
            int,
            Field(
                "tokens per block (the model's context; at most its `n_positions`)",
                ge=1,
                later="≤ the model's `n_positions`: at setup",
            ),
        ] = 1024,
        batch_size: Annotated[int, Field("training blocks per batch (per device)", ge=1)] = 8,
        eval_batch_size: Annotated[int | None, EVAL_BATCH_SIZE] = None,
        eval_stride: Annotated[
            int | None,
            Field(
                "validation/test in sliding windows of `block_size` tokens advancing by this many (e.g. 512 with "
                "1024-token blocks, as the paper's code); null: disjoint blocks",
                ge=1,
                le="block_size",
            ),
        ] = None,
        tokenizer_train_bytes: Annotated[
            int,
            Field(
                "UTF-8 bytes of training text a new tokenizer learns from, split between the languages like "
                "`language_ratio` (the first documents of each training source)",
                ge=1,
                later="enough to learn `vocab_size` tokens: before anything is created (an upper bound on what the "
                "text can teach), and exactly when the tokenizer is trained",
            ),
        ] = 50_000_000,
        num_workers: Annotated[int, NUM_WORKERS] = 0,
        cache_dir: Annotated[str | None, CACHE_DIR] = None,
    ) -> None:
        corpora = check_fields(TextCorpusDataModule, locals())["corpora"]
        super().__init__(batch_size, eval_batch_size, num_workers)
        self.corpora = corpora
        self.ratio = _normalised_ratio(language_ratio, list(self.corpora))
        self.train_tokens = train_tokens
        self.block_size = block_size
        self.eval_stride = eval_stride
        self.tokenizer_train_bytes = tokenizer_train_bytes
        self.cache_dir = cache_dir
        self._counted: set[str] = set()
        # plain types only: the checkpoint must load with torch.load(weights_only=True)
        self.save_hyperparameters(
            {
                "corpora": {language: asdict(corpus) for language, corpus in self.corpora.items()},
                "language_ratio": self.ratio,
                "train_tokens": train_tokens,
                "block_size": block_size,
                "batch_size": batch_size,
                "eval_batch_size": self.eval_batch_size,
                "eval_stride": eval_stride,
                "tokenizer_train_bytes": tokenizer_train_bytes,
            }
        )

    @property
    def languages(self) -> list[str]:
        """Language codes in index order."""
        return list(self.corpora)

    def train_blocks_per_language(self) -> dict[str, int]:
        """Training blocks of each language: ``train_tokens // block_size`` split by ratio, exact total."""
        total = self.train_tokens // self.block_size
        shares = {language: total * share for language, share in self.ratio.items()}
        blocks = {language: int(share) for language, share in shares.items()}
        by_remainder = sorted(shares, key=lambda language: shares[language] - blocks[language], reverse=True)
        for language in by_remainder[: total - sum(blocks.values())]:
            blocks[language] += 1
        for language, count in blocks.items():
            if count == 0:
                raise ConfigError(
                    "data.language_ratio",
                    self.ratio,
                    f"gives language {language!r} no training block of {self.block_size} tokens: raise train_tokens",
                )
        return blocks

    def tokenizer_training_text(self, announce: bool = True) -> Iterator[str]:
        """The first training documents of each language, ``tokenizer_train_bytes × ratio`` bytes each."""
        for language, share in self.ratio.items():
            budget, used = self.tokenizer_train_bytes * share, 0
            for document in self.documents(language, "train", announce):
                if used >= budget:
                    break
                used += len(document.encode("utf-8"))
                yield document

    def check_tokenizer_text(self, vocab_size: int) -> None:
        """Before anything is created: the text a new tokenizer learns from (``tokenizer_training_text``) can teach
        it ``vocab_size`` tokens, as far as ``learnable_tokens`` tells without training it."""
        most, used = learnable_tokens(self.tokenizer_training_text(announce=False), vocab_size)
        if most < vocab_size:
            sources = {language: corpus.train.file or corpus.train.hub for language, corpus in self.corpora.items()}
            field, value = ("data.corpora", sources)
            if len(sources) == 1:
                ((language, value),) = sources.items()
                field = f"data.corpora.{language}.train"
            raise ConfigError(
                field,
                value,
                f"too little text to train the tokenizer: its {used} bytes can teach a byte-level BPE at most {most} "
                f"of the {vocab_size} tokens of the model's vocabulary (model.gpt2_config.vocab_size); give more "
                "training text",
            )

    def documents(self, language: str, split: str, announce: bool = True) -> Iterator[str]:
        """Non-empty documents of one language and split, in source order (after ``skip``/``take``). With
        ``announce``, the first read of a file says on stderr how many documents it gave (global rank 0)."""
        field = f"data.corpora.{language}.{split}"
        counted = self._count_once if announce else None
        return read_documents(getattr(self.corpora[language], split), self.cache_dir, field, counted)

    def _count_once(self, line: str) -> None:
        if line not in self._counted and rank_zero_only.rank == 0:
            print(line, file=sys.stderr)
        self._counted.add(line)

    def prepare_data(self) -> None:
        """Download the (non-streaming) hub datasets once, on one process per node."""
        import datasets

        for corpus in self.corpora.values():
            for split in SPLITS:
                source = getattr(corpus, split)
                if source.hub and not source.streaming:
                    datasets.load_dataset(**source.load_arguments(self.cache_dir))

    def setup(self, stage: str) -> None:
        """Nothing to do before the tokenizer is known: datasets are built on first use."""

    def build_dataset(self, split: str, tokenizer: PreTrainedTokenizerFast) -> Dataset:
        """The windows of ``split`` (``train``, ``validation`` or ``test``), every language in index order."""
        byte_lengths = token_byte_lengths(tokenizer)
        eos = tokenizer.eos_token_id
        parts = []
        for index, language in enumerate(self.languages):
            if split == "train":
                needed = self.train_blocks_per_language()[language] * self.block_size + 1
                stream = self._stream(language, split, tokenizer, eos, needed, byte_lengths)
                if len(stream) < needed:
                    raise ConfigError(
                        "data.train_tokens",
                        self.train_tokens,
                        f"needs {needed - 1} training tokens of {language!r} but its corpus has only {len(stream) - 1}",
                    )
                parts.append(TokenWindows(stream, byte_lengths, self.block_size, index))
            else:
                stream = self._stream(language, split, tokenizer, eos, None, byte_lengths)
                parts.append(TokenWindows(stream, byte_lengths, self.block_size, index, stride=self.eval_stride))
        return ConcatDataset(parts)

    def _stream(
        self,
        language: str,
        split: str,
        tokenizer: PreTrainedTokenizerFast,
        eos: int,
        limit: int | None,
        byte_lengths: torch.Tensor,
    ) -> torch.Tensor:
        """``<eos> doc <eos> doc <eos> …`` cut at ``limit`` tokens; checks the byte accounting is exact."""
        pieces, length = [np.array([eos], dtype=np.int32)], 1
        lengths = byte_lengths.numpy()
        for batch in _batched(self.documents(language, split), _ENCODE_BATCH):
            encodings = tokenizer.backend_tokenizer.encode_batch_fast(batch, add_special_tokens=False)
            for document, encoding in zip(batch, encodings, strict=True):
                ids = np.asarray(encoding.ids, dtype=np.int32)
                if int(lengths[ids].sum()) != len(document.encode("utf-8")):
                    raise ConfigError(
                        "model.tokenizer",
                        document[:40],
                        "does not cover this text byte for byte (a non-byte-level tokenizer, or a document "
                        "containing a special token): bits per byte would be wrong",
                    )
                pieces += [ids, np.array([eos], dtype=np.int32)]
                length += len(ids) + 1
            if limit is not None and length >= limit:
                break
        stream = torch.from_numpy(np.concatenate(pieces))
        return stream if limit is None else stream[:limit]


def _batched(items: Iterator[str], size: int) -> Iterator[list[str]]:
    while batch := list(itertools.islice(items, size)):
        yield batch


def _normalised_ratio(ratio: Mapping[str, float] | None, languages: Sequence[str]) -> dict[str, float]:
    if ratio is None:
        return {language: 1 / len(languages) for language in languages}
    if not isinstance(ratio, Mapping) or set(ratio) != set(languages):
        raise ConfigError("data.language_ratio", ratio, f"needs one share per language {list(languages)}")
    for language in languages:
        check_number(f"data.language_ratio.{language}", ratio[language], low=0, low_open=True)
    largest = max(ratio.values())  # scale first: the sum of huge shares would overflow
    total = sum(ratio[language] / largest for language in languages)
    return {language: ratio[language] / largest / total for language in languages}
