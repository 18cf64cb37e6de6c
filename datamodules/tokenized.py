"""What every data module tokenized with its model's tokenizer shares (text corpora, GLUE).

The model hands its tokenizer over with ``use_tokenizer`` (in its ``setup``): a tokenizer, or a function
that returns one when the data is first built. Datasets are built on first use by the subclass's
``build_dataset(split, tokenizer)`` and kept per tokenizer (a new tokenizer builds them again). The
three loaders read ``train`` (shuffled), ``validation`` and ``test_split``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
from torch.utils.data import DataLoader, Dataset
from transformers import PreTrainedTokenizerBase

from cognitive_reserve.errors import ConfigError
from cognitive_reserve.fields import Field
from datamodules.resumable import ResumableDataLoader
from datamodules.tokenization import TokenizerSource, tokenizer_source

#: The ``eval_batch_size`` field of the tokenized data modules.
EVAL_BATCH_SIZE = Field("validation and test batch size (null: `batch_size`)", ge=1)
#: The ``num_workers`` field of the tokenized data modules.
NUM_WORKERS = Field("DataLoader worker processes", ge=0)
#: The ``cache_dir`` field of the tokenized data modules.
CACHE_DIR = Field("`datasets` cache directory (null: its default)")


class TokenizedDataModule(L.LightningDataModule):
    """A data module whose datasets depend on the tokenizer its model hands over."""

    #: The model that hands the tokenizer over (named when none was).
    tokenizer_giver = "the model"
    #: The split ``test_dataloader`` reads.
    test_split = "test"

    def __init__(self, batch_size: int, eval_batch_size: int | None, num_workers: int) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self._tokenizer_source: TokenizerSource | None = None
        self._built_with: PreTrainedTokenizerBase | None = None
        self._datasets: dict[str, Dataset] = {}

    def use_tokenizer(self, tokenizer: PreTrainedTokenizerBase | TokenizerSource) -> None:
        """Tokenize with ``tokenizer``, or with what ``tokenizer()`` returns when the data is built."""
        self._tokenizer_source = tokenizer_source(tokenizer)

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The tokenizer handed over with ``use_tokenizer``."""
        if self._tokenizer_source is None:
            reason = f"has no tokenizer: call use_tokenizer() ({self.tokenizer_giver} does in setup)"
            raise ConfigError("data", type(self).__name__, reason)
        return self._tokenizer_source()

    def dataset(self, split: str) -> Dataset:
        """The tokenized ``split``, built on first use with the current tokenizer."""
        tokenizer = self.tokenizer
        if tokenizer is not self._built_with:
            self._datasets, self._built_with = {}, tokenizer
        if split not in self._datasets:
            self._datasets[split] = self.build_dataset(split, tokenizer)
        return self._datasets[split]

    def build_dataset(self, split: str, tokenizer: PreTrainedTokenizerBase) -> Dataset:
        """``split`` tokenized with ``tokenizer``."""
        raise NotImplementedError

    def collate_fn(self) -> Callable[[list[Any]], Any] | None:
        """How a batch is put together (None: PyTorch's default)."""
        return None

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("validation", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_split, self.eval_batch_size, shuffle=False)

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        loader = ResumableDataLoader if shuffle else DataLoader  # training: a resumed fit continues its epoch
        return loader(
            self.dataset(split),
            batch_size=batch_size,
            shuffle=shuffle,
            collate_fn=self.collate_fn(),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )
