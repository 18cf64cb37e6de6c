"""Monolingual / bilingual language-model corpora with equal token budgets, as packed blocks.

Each language has a train, validation and test source: a local UTF-8 text file (documents are
separated by blank lines) or a dataset read through ``datasets.load_dataset`` (a hub dataset
such as ``wikimedia/wikipedia``, or a builder such as ``json``/``parquet`` with ``data_files``).

**Streams and blocks.** A split of one language becomes one token stream
``<|endoftext|> doc₁ <|endoftext|> doc₂ <|endoftext|> …``. Block ``k`` reads the stream's tokens
``k·L … k·L+L-1`` and predicts tokens ``k·L+1 … k·L+L`` (L = ``block_size``): consecutive blocks
overlap by one token, so every token after the leading ``<|endoftext|>`` is predicted exactly
once. Each block carries the UTF-8 byte count of the text its predicted tokens stand for
(end-of-text tokens stand for 0 bytes), so bits per byte is exact on any subset of blocks.
Evaluation streams keep their last, partial block (targets padded with -100) and are whole
documents (bound them with the source's ``take``), so models with different tokenizers are
evaluated on exactly the same text.

**Sliding windows** (``eval_stride``, the paper code's evaluation protocol, e.g. 1024 / 512): the
validation and test streams are read in windows of ``block_size`` tokens that advance by
``eval_stride``. Window 0 predicts tokens ``1 … L``; window ``k ≥ 1`` predicts only the tokens no
earlier window predicted, ``L+(k-1)·s+1 … L+k·s`` (the last window: up to the stream's end), and
reads the ``L`` tokens that end just before its last target. So every token is still predicted
exactly once, each with at least ``L - s`` tokens of context (all earlier ones near the start);
``num_bytes`` counts the bytes of the predicted tokens only, so bits per byte stays exact. Training
always uses disjoint blocks; ``eval_stride: null`` (default) evaluates on disjoint blocks too.

**Equal budgets.** Training uses ``train_tokens // block_size`` blocks in total, split between the
languages by ``language_ratio`` (largest remainder, so the total is exact), each language's
stream cut from its first documents, counted in the tokens of the model's own tokenizer. A
monolingual and a bilingual run with the same ``train_tokens`` train on the same number of tokens.

The tokenizer is handed over with ``use_tokenizer``: a tokenizer, or a function that returns one
when the data is first built (``GPT2LanguageModel.setup`` hands over such a function, which may
first train a tokenizer on ``tokenizer_training_text()``); datasets are built on first use.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Annotated, Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset
from transformers import PreTrainedTokenizerFast

from cognitive_reserve.errors import ConfigError, check_number, check_text
from cognitive_reserve.fields import Field, check_fields, declared
from datamodules.tokenization import TokenizerSource, token_byte_lengths, tokenizer_source

#: Target value of padding positions (ignored by the loss and the metrics).
IGNORE_INDEX = -100
SPLITS = ("train", "validation", "test")
_ENCODE_BATCH = 256


def check_text_file(field: str, file: Any) -> str:
    """An existing file whose first MiB holds some text."""
    path = Path(check_text(field, file))
    if not path.is_file():
        raise ConfigError(field, file, "no such text file")
    with path.open("rb") as handle:
        if not handle.read(1 << 20).strip():
            raise ConfigError(field, file, "is an empty corpus: it has no text")
    return file


@declared("data.corpora.<language>.<split>")
@dataclass
class TextSource:
    """Where one split of one language comes from: exactly one of ``file`` or ``hub``."""

    file: Annotated[
        str | None,
        Field(
            "local UTF-8 text file; documents are separated by blank lines",
            valid="null or an existing UTF-8 file with some text (exactly one of `file`, `hub`)",
            check=check_text_file,
        ),
    ] = None
    hub: Annotated[
        str | None,
        Field(
            "`datasets.load_dataset` path: a hub dataset (`wikimedia/wikipedia`) or a builder (`json`, `parquet`, "
            "`text`) reading `data_files`",
            later="read in `prepare_data`",
        ),
    ] = None
    name: Annotated[str | None, Field("dataset configuration name (e.g. `20231101.en`)")] = None
    split: Annotated[str, Field("dataset split")] = "train"
    column: Annotated[str, Field("column holding the text", later="a column of the dataset: at first use")] = "text"
    data_files: Annotated[
        str | list[str] | dict[str, str | list[str]] | None,
        Field(
            "files for a builder, or a subset of a hub dataset's files",
            valid="null, a path, a list of paths or `{split: path(s)}`, as `datasets.load_dataset` takes them",
            later="when loaded",
        ),
    ] = None
    streaming: Annotated[bool, Field("read records lazily instead of downloading the whole dataset first")] = False
    skip: Annotated[
        int, Field("leave out this many (non-empty) documents at the start, e.g. those held out for evaluation", ge=0)
    ] = 0
    take: Annotated[
        int | None,
        Field(
            "use at most this many documents after `skip` (null: all)",
            ge=1,
            later="at least one non-empty document remains: at first use",
        ),
    ] = None


#: Fields of a ``TextSource``.
SOURCE_FIELDS = tuple(f.name for f in fields(TextSource))


@dataclass
class LanguageCorpus:
    """The train, validation and test sources of one language."""

    train: TextSource
    validation: TextSource
    test: TextSource


class PackedBlocks(Dataset):
    """Blocks of one token stream: ``{input_ids, targets, language, num_bytes}`` (see module docstring)."""

    def __init__(self, stream: torch.Tensor, byte_lengths: torch.Tensor, block_size: int, language: int) -> None:
        self.stream = stream
        self.block_size = block_size
        self.language = language
        predicted_bytes = _predicted_bytes(stream, byte_lengths)
        ends = torch.clamp(torch.arange(1, len(self) + 1) * block_size, max=len(stream) - 1)
        starts = torch.arange(len(self)) * block_size
        self.num_bytes = predicted_bytes[ends] - predicted_bytes[starts]

    def __len__(self) -> int:
        return max(len(self.stream) - 2, 0) // self.block_size + 1 if len(self.stream) > 1 else 0

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        start = index * self.block_size
        window = self.stream[start : start + self.block_size + 1].long()
        inputs = torch.zeros(self.block_size, dtype=torch.long)
        targets = torch.full((self.block_size,), IGNORE_INDEX, dtype=torch.long)
        inputs[: len(window) - 1] = window[:-1]
        targets[: len(window) - 1] = window[1:]
        return {"input_ids": inputs, "targets": targets, "language": self.language, "num_bytes": self.num_bytes[index]}


class SlidingWindows(Dataset):
    """Overlapping evaluation windows of one token stream, each token predicted once (see module docstring).

    Items have the ``PackedBlocks`` format; targets a window reads only as context are ``IGNORE_INDEX``.
    """

    def __init__(
        self, stream: torch.Tensor, byte_lengths: torch.Tensor, block_size: int, stride: int, language: int
    ) -> None:
        self.stream = stream
        self.block_size = block_size
        self.language = language
        windows = 1 + math.ceil(max(len(stream) - 1 - block_size, 0) / stride) if len(stream) > 1 else 0
        index = torch.arange(windows)
        #: Stream positions of each window's predicted tokens: ``first_target … last_target``.
        self.last_target = torch.clamp(block_size + index * stride, max=len(stream) - 1)
        self.first_target = torch.where(index == 0, 1, block_size + (index - 1) * stride + 1)
        predicted_bytes = _predicted_bytes(stream, byte_lengths)
        self.num_bytes = predicted_bytes[self.last_target] - predicted_bytes[self.first_target - 1]

    def __len__(self) -> int:
        return len(self.last_target)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        last = int(self.last_target[index])
        start = max(last - self.block_size, 0)
        window = self.stream[start : last + 1].long()
        inputs = torch.zeros(self.block_size, dtype=torch.long)
        targets = torch.full((self.block_size,), IGNORE_INDEX, dtype=torch.long)
        inputs[: len(window) - 1] = window[:-1]
        targets[: len(window) - 1] = window[1:]
        targets[: int(self.first_target[index]) - 1 - start] = IGNORE_INDEX  # predicted by an earlier window
        return {"input_ids": inputs, "targets": targets, "language": self.language, "num_bytes": self.num_bytes[index]}


def _predicted_bytes(stream: torch.Tensor, byte_lengths: torch.Tensor) -> torch.Tensor:
    """``[i]``: UTF-8 bytes of the stream's tokens ``1 … i`` (token 0 is never predicted)."""
    return torch.cat([torch.zeros(1, dtype=torch.int64), byte_lengths[stream[1:].long()].cumsum(0)])


def check_corpora(field: str, corpora: Any) -> dict[str, LanguageCorpus]:
    """``{language: {train, validation, test}}`` with every source checked (files read: they must have text)."""
    if not isinstance(corpora, Mapping) or not corpora:
        raise ConfigError(field, corpora, "give at least one language: {code: {train, validation, test}}")
    checked = {check_text(field, language): _as_corpus(language, corpus) for language, corpus in corpora.items()}
    for language, corpus in checked.items():
        for split in SPLITS:
            _check_source(f"{field}.{language}.{split}", getattr(corpus, split))
    return checked


@declared("data")
class TextCorpusDataModule(L.LightningDataModule):
    """English (monolingual) or English + Greek (bilingual) LM data with equal token budgets."""

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
        eval_batch_size: Annotated[
            int | None, Field("validation/test blocks per batch (null: `batch_size`)", ge=1)
        ] = None,
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
                later="enough to learn `vocab_size` tokens: when the tokenizer is trained",
            ),
        ] = 50_000_000,
        num_workers: Annotated[int, Field("DataLoader worker processes", ge=0)] = 0,
        cache_dir: Annotated[str | None, Field("`datasets` cache directory (null: its default)")] = None,
    ) -> None:
        super().__init__()
        self.corpora = check_fields(TextCorpusDataModule, locals())["corpora"]
        self.ratio = _normalised_ratio(language_ratio, list(self.corpora))
        self.train_tokens = train_tokens
        self.block_size = block_size
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.eval_stride = eval_stride
        self.tokenizer_train_bytes = tokenizer_train_bytes
        self.num_workers = num_workers
        self.cache_dir = cache_dir
        # plain types only: the checkpoint must load with torch.load(weights_only=True)
        self.save_hyperparameters(
            {
                "corpora": {language: asdict(corpus) for language, corpus in self.corpora.items()},
                "language_ratio": self.ratio, "train_tokens": train_tokens, "block_size": block_size,
                "batch_size": batch_size, "eval_batch_size": self.eval_batch_size, "eval_stride": eval_stride,
                "tokenizer_train_bytes": tokenizer_train_bytes,
            }
        )  # fmt: skip
        self._tokenizer_source: TokenizerSource | None = None
        self._built_with: PreTrainedTokenizerFast | None = None
        self._datasets: dict[str, Dataset] = {}

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
                    "data.language_ratio", self.ratio,
                    f"gives language {language!r} no training block of {self.block_size} tokens: raise train_tokens",
                )  # fmt: skip
        return blocks

    def use_tokenizer(self, tokenizer: PreTrainedTokenizerFast | TokenizerSource) -> None:
        """Tokenize with ``tokenizer``, or with what ``tokenizer()`` returns when the data is built."""
        self._tokenizer_source = tokenizer_source(tokenizer)

    def tokenizer_training_text(self) -> Iterator[str]:
        """The first training documents of each language, ``tokenizer_train_bytes × ratio`` bytes each."""
        for language, share in self.ratio.items():
            budget, used = self.tokenizer_train_bytes * share, 0
            for document in self.documents(language, "train"):
                if used >= budget:
                    break
                used += len(document.encode("utf-8"))
                yield document

    def documents(self, language: str, split: str) -> Iterator[str]:
        """Non-empty documents of one language and split, in source order (after ``skip``/``take``)."""
        source = getattr(self.corpora[language], split)
        field_name = f"data.corpora.{language}.{split}"
        found = False
        records = _read_documents(source, self.cache_dir, field_name)
        for document in itertools.islice(records, source.skip, _stop(source)):
            found = True
            yield document
        if not found:
            raise ConfigError(field_name, source.file or source.hub, "is an empty corpus: it has no text")

    def prepare_data(self) -> None:
        """Download the (non-streaming) hub datasets once, on one process per node."""
        import datasets

        for corpus in self.corpora.values():
            for split in SPLITS:
                source = getattr(corpus, split)
                if source.hub and not source.streaming:
                    datasets.load_dataset(**_load_arguments(source, self.cache_dir))

    def setup(self, stage: str) -> None:
        """Nothing to do before the tokenizer is known: datasets are built on first use."""

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("validation", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)

    def dataset(self, split: str) -> Dataset:
        """The packed blocks of ``split`` (``train``, ``validation`` or ``test``), built on first use."""
        tokenizer = self.tokenizer
        if tokenizer is not self._built_with:
            self._datasets, self._built_with = {}, tokenizer
        if split not in self._datasets:
            self._datasets[split] = self._build(split, tokenizer)
        return self._datasets[split]

    @property
    def tokenizer(self) -> PreTrainedTokenizerFast:
        """The tokenizer handed over with ``use_tokenizer``."""
        if self._tokenizer_source is None:
            raise ConfigError(
                "data", type(self).__name__, "has no tokenizer: call use_tokenizer() (GPT2LanguageModel does in setup)"
            )
        return self._tokenizer_source()

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        return DataLoader(
            self.dataset(split), batch_size=batch_size, shuffle=shuffle, drop_last=False,
            num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
        )  # fmt: skip

    def _build(self, split: str, tokenizer: PreTrainedTokenizerFast) -> Dataset:
        byte_lengths = token_byte_lengths(tokenizer)
        eos = tokenizer.eos_token_id
        parts = []
        for index, language in enumerate(self.languages):
            if split == "train":
                needed = self.train_blocks_per_language()[language] * self.block_size + 1
                stream = self._stream(language, split, tokenizer, eos, needed, byte_lengths)
                if len(stream) < needed:
                    raise ConfigError(
                        "data.train_tokens", self.train_tokens,
                        f"needs {needed - 1} training tokens of {language!r} but its corpus has only {len(stream) - 1}",
                    )  # fmt: skip
            else:
                stream = self._stream(language, split, tokenizer, eos, None, byte_lengths)
                if self.eval_stride is not None:
                    parts.append(SlidingWindows(stream, byte_lengths, self.block_size, self.eval_stride, index))
                    continue
            parts.append(PackedBlocks(stream, byte_lengths, self.block_size, index))
        return ConcatDataset(parts)

    def _stream(
        self, language: str, split: str, tokenizer: PreTrainedTokenizerFast, eos: int,
        limit: int | None, byte_lengths: torch.Tensor,
    ) -> torch.Tensor:  # fmt: skip
        """``<eos> doc <eos> doc <eos> …`` cut at ``limit`` tokens; checks the byte accounting is exact."""
        pieces, length = [np.array([eos], dtype=np.int32)], 1
        lengths = byte_lengths.numpy()
        for batch in _batched(self.documents(language, split), _ENCODE_BATCH):
            encodings = tokenizer.backend_tokenizer.encode_batch_fast(batch, add_special_tokens=False)
            for document, encoding in zip(batch, encodings, strict=True):
                ids = np.asarray(encoding.ids, dtype=np.int32)
                if int(lengths[ids].sum()) != len(document.encode("utf-8")):
                    raise ConfigError(
                        "model.tokenizer", document[:40],
                        "does not cover this text byte for byte (a non-byte-level tokenizer, or a document "
                        "containing a special token): bits per byte would be wrong",
                    )  # fmt: skip
                pieces += [ids, np.array([eos], dtype=np.int32)]
                length += len(ids) + 1
            if limit is not None and length >= limit:
                break
        stream = torch.from_numpy(np.concatenate(pieces))
        return stream if limit is None else stream[:limit]


def _read_documents(source: TextSource, cache_dir: str | None, field_name: str) -> Iterator[str]:
    if source.file is not None:
        text = Path(source.file).read_text(encoding="utf-8")
        for paragraph in re.split(r"\n[ \t\r\f\v]*\n", text):
            if paragraph.strip():
                yield paragraph.strip()
        return
    import datasets

    records = datasets.load_dataset(**_load_arguments(source, cache_dir))
    for record in records:
        if source.column not in record:
            raise ConfigError(
                f"{field_name}.column", source.column, f"not a column of {source.hub} (columns: {sorted(record)})"
            )
        text = record[source.column]
        if isinstance(text, str) and text.strip():
            yield text


def _load_arguments(source: TextSource, cache_dir: str | None) -> dict[str, Any]:
    return {
        "path": source.hub, "name": source.name, "split": source.split, "data_files": source.data_files,
        "streaming": source.streaming, "cache_dir": cache_dir,
    }  # fmt: skip


def _stop(source: TextSource) -> int | None:
    return None if source.take is None else source.skip + source.take


def _batched(items: Iterator[str], size: int) -> Iterator[list[str]]:
    while batch := list(itertools.islice(items, size)):
        yield batch


def _as_corpus(language: str, corpus: LanguageCorpus | Mapping[str, Any]) -> LanguageCorpus:
    if isinstance(corpus, LanguageCorpus):
        return corpus
    if not isinstance(corpus, Mapping) or set(corpus) != set(SPLITS):
        raise ConfigError(f"data.corpora.{language}", corpus, "expected exactly the sources train, validation, test")
    return LanguageCorpus(**{split: _as_source(f"data.corpora.{language}.{split}", corpus[split]) for split in SPLITS})


def _as_source(field_name: str, source: TextSource | Mapping[str, Any]) -> TextSource:
    if isinstance(source, TextSource):
        return source
    if not isinstance(source, Mapping):
        raise ConfigError(field_name, source, "expected a source {file: ...} or {hub: ...}")
    unknown = sorted(str(key) for key in source if key not in SOURCE_FIELDS)
    if unknown:
        raise ConfigError(f"{field_name}.{unknown[0]}", source[unknown[0]], f"not a source field {list(SOURCE_FIELDS)}")
    return TextSource(**source)


def _check_source(field_name: str, source: TextSource) -> None:
    if (source.file is None) == (source.hub is None):
        raise ConfigError(field_name, asdict(source), "give exactly one of 'file' (local text) or 'hub' (datasets)")
    check_fields(TextSource, asdict(source), prefix=field_name)


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
