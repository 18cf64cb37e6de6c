"""GLUE classification data (paper §3 "Text Classification"): CoLA, SST-2, MRPC, QQP, QNLI, RTE.

Data comes from the Hugging Face hub (``nyu-mll/glue``, or any dataset repository or local
directory laid out like it) or from local JSON / JSON Lines / CSV / Parquet files with the same
columns (see ``datamodules.glue_tasks``). Files are checked in ``setup``, before any training:
missing columns, empty texts and labels outside the task's label set are ``ConfigError``s.

GLUE's test splits carry no labels, so the **validation split is the evaluation split**: it is
what ``val_dataloader`` and ``test_dataloader`` both return (``run.py test`` reports validation
numbers, as GLUE papers that do not submit to the leaderboard do).

Encoding, for GPT-2: texts are tokenized without special tokens (a literal ``<|endoftext|>`` in a
text stays plain text); a pair is ``first <eos> second``; sequences are cut to ``max_length``
tokens (the longer text of a pair loses tokens first); an empty text becomes one ``<eos>``.
Batches are right-padded with the pad token (= eos) and carry an ``attention_mask``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import datasets
import pyarrow.compute as pc
import torch
from transformers import PreTrainedTokenizerBase

from cognitive_reserve.errors import ConfigError, check_text, first_line
from cognitive_reserve.fields import Field, check_fields, declared
from datamodules.glue_tasks import GlueTask, check_glue_task
from datamodules.tokenized import CACHE_DIR, EVAL_BATCH_SIZE, NUM_WORKERS, TokenizedDataModule

#: The hub dataset of the GLUE benchmark (one configuration per task).
GLUE_HUB = "nyu-mll/glue"
#: Splits a local ``data_files`` mapping must give.
SPLITS = ("train", "validation")
#: ``datasets`` builder of each local file extension.
FILE_BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}


def check_data_files(field: str, data_files: Any) -> dict[str, str]:
    """One existing file of a supported type per split."""
    if not isinstance(data_files, Mapping):
        raise ConfigError(field, data_files, f"give one file per split {list(SPLITS)}, or null")
    files = dict(data_files)
    unknown = [split for split in files if split not in SPLITS]
    if unknown:
        raise ConfigError(f"{field}.{unknown[0]}", files[unknown[0]], f"unknown split; give {list(SPLITS)}")
    for split in SPLITS:
        where = f"{field}.{split}"
        if split not in files:
            raise ConfigError(where, None, "missing: give a file for every split (GLUE test labels are not public)")
        path = Path(check_text(where, files[split]))
        if path.suffix.lower() not in FILE_BUILDERS:
            raise ConfigError(where, str(path), f"unsupported file type; use one of {sorted(FILE_BUILDERS)}")
        if not path.is_file():
            raise ConfigError(where, str(path), "no such file")
        files[split] = str(path)
    return files


@declared("data")
class GlueDataModule(TokenizedDataModule):
    """One GLUE task, tokenized with the tokenizer handed over by ``use_tokenizer`` (the model's)."""

    tokenizer_giver = "GPT2GlueClassifier"
    #: GLUE's test labels are not public: ``test_dataloader`` reads the validation split.
    test_split = "validation"

    def __init__(
        self,
        task: Annotated[
            str, Field("the GLUE task", valid="`cola`, `sst2`, `mrpc`, `qqp`, `qnli`, `rte`", check=check_glue_task)
        ],
        data_files: Annotated[
            dict[str, str] | None,
            Field(
                "local files with the task's GLUE columns (null: load `dataset` instead)",
                valid="null or `{train: path, validation: path}` of existing `.json`, `.jsonl`, `.csv` or "
                "`.parquet` files",
                check=check_data_files,
                later="columns, texts, labels: at setup",
            ),
        ] = None,
        dataset: Annotated[
            str,
            Field(
                "hub dataset (or local directory with the same layout) whose configuration `task` holds the task",
                later="loads: in `prepare_data`",
            ),
        ] = GLUE_HUB,
        max_length: Annotated[
            int,
            Field(
                "tokens per example at most (pairs included)",
                ge=1,
                valid="integer ≥ 1; ≥ 2 for the sentence-pair tasks (`mrpc`, `qqp`, `qnli`, `rte`)",
                later="≤ the model's `n_positions`: at setup",
            ),
        ] = 128,
        batch_size: Annotated[int, Field("training examples per batch (per device)", ge=1)] = 32,
        eval_batch_size: Annotated[int | None, EVAL_BATCH_SIZE] = None,
        num_workers: Annotated[int, NUM_WORKERS] = 0,
        cache_dir: Annotated[str | None, CACHE_DIR] = None,
    ) -> None:
        fields = check_fields(GlueDataModule, locals())
        super().__init__(batch_size, eval_batch_size, num_workers)
        self.task: GlueTask = fields["task"]
        if max_length < 2 and len(self.task.text_columns) == 2:
            raise ConfigError("data.max_length", max_length, "a sentence pair needs at least 2 tokens")
        self.data_files = fields["data_files"]
        self.dataset_name = dataset
        self.max_length = max_length
        self.cache_dir = cache_dir
        self._raw: dict[str, datasets.Dataset] = {}

    # ---- data ---------------------------------------------------------------------------------

    def prepare_data(self) -> None:
        """Download (hub) or convert (local files) into the ``datasets`` cache, once per node."""
        for split in SPLITS:
            self._load(split)

    def setup(self, stage: str | None = None) -> None:
        """Load both splits and check their columns and labels (errors name the file and the row)."""
        for split in SPLITS:
            if split not in self._raw:
                raw = self._load(split)
                check_split(raw, self.task, self._source_field(split), self._source(split))
                self._raw[split] = raw

    def raw_split(self, split: str) -> datasets.Dataset:
        """The checked, untokenized ``train`` or ``validation`` split."""
        self.setup()
        return self._raw[split]

    def _load(self, split: str) -> datasets.Dataset:
        field, source = self._source_field(split), self._source(split)
        try:
            if self.data_files is None:
                return datasets.load_dataset(self.dataset_name, self.task.name, split=split, cache_dir=self.cache_dir)
            path = self.data_files[split]
            builder = FILE_BUILDERS[Path(path).suffix.lower()]
            return datasets.load_dataset(builder, data_files={split: path}, split=split, cache_dir=self.cache_dir)
        except (OSError, ValueError, datasets.exceptions.DatasetsError) as err:
            raise ConfigError(field, source, f"cannot be loaded: {first_line(err)}") from None

    def _source_field(self, split: str) -> str:
        return f"data.data_files.{split}" if self.data_files is not None else "data.dataset"

    def _source(self, split: str) -> str:
        return self.data_files[split] if self.data_files is not None else f"{self.dataset_name}:{self.task.name}"

    # ---- tokenized -----------------------------------------------------------------------------

    def build_dataset(self, split: str, tokenizer: PreTrainedTokenizerBase) -> datasets.Dataset:
        """``split`` as ``{input_ids, label}`` items (``encode_split``)."""
        return encode_split(self.raw_split(split), self.task, tokenizer, self.max_length)

    def collate_fn(self) -> RightPadCollator:
        """Right-padding with the tokenizer's pad token."""
        return RightPadCollator(pad_token_id(self.tokenizer))


class RightPadCollator:
    """Stacks ``{input_ids, label}`` items into right-padded ``input_ids``, ``attention_mask``, ``labels``."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(item["input_ids"]) for item in items)
        input_ids = torch.full((len(items), longest), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(items), longest), dtype=torch.long)
        for row, item in enumerate(items):
            length = len(item["input_ids"])
            input_ids[row, :length] = torch.as_tensor(item["input_ids"], dtype=torch.long)
            attention_mask[row, :length] = 1
        labels = torch.as_tensor([int(item["label"]) for item in items], dtype=torch.long)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def pad_token_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The pad id: the tokenizer's own pad token, else its eos token (GPT-2 has no pad token)."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise ConfigError("model.tokenizer", type(tokenizer).__name__, "has neither a pad nor an eos token")
    return pad


def encode_split(
    raw: datasets.Dataset, task: GlueTask, tokenizer: PreTrainedTokenizerBase, max_length: int
) -> datasets.Dataset:
    """Tokenize a checked split into ``{input_ids, label}`` (cached by ``datasets`` for file-backed data)."""
    separator = tokenizer.eos_token_id
    if separator is None:
        raise ConfigError("model.tokenizer", type(tokenizer).__name__, "needs an eos token (pair separator)")

    def encode(batch: dict[str, list]) -> dict[str, list]:
        texts = [
            tokenizer(batch[column], add_special_tokens=False, split_special_tokens=True)["input_ids"]
            for column in task.text_columns
        ]
        ids = [join_texts(parts, separator, max_length) for parts in zip(*texts, strict=True)]
        return {"input_ids": ids, "label": [int(label) for label in batch["label"]]}

    fingerprint = hashlib.sha256(
        f"{raw._fingerprint}|{task.name}|{max_length}|{tokenizer.backend_tokenizer.to_str()}".encode()
    ).hexdigest()[:32]
    return raw.map(
        encode,
        batched=True,
        remove_columns=raw.column_names,
        features=datasets.Features(
            {"input_ids": datasets.Sequence(datasets.Value("int32")), "label": datasets.Value("int64")}
        ),
        new_fingerprint=fingerprint,
        desc=f"tokenizing {task.name}",
    )


def join_texts(parts: tuple[list[int], ...], separator: int, max_length: int) -> list[int]:
    """``a`` or ``a <sep> b``, cut to ``max_length`` tokens longest-first (ties cut ``b``); never empty."""
    if len(parts) == 1:
        return list(parts[0][:max_length]) or [separator]
    first, second = list(parts[0]), list(parts[1])
    budget = max_length - 1
    while len(first) + len(second) > budget:
        if len(first) > len(second):
            first.pop()
        else:
            second.pop()
    return [*first, separator, *second]


def check_split(raw: datasets.Dataset, task: GlueTask, field: str, source: str) -> None:
    """Columns present, texts non-null strings, labels integers of the task's label set."""
    missing = [column for column in task.columns if column not in raw.column_names]
    if missing:
        raise ConfigError(field, source, f"missing column(s) {missing}: task {task.name} needs {list(task.columns)}")
    if len(raw) == 0:
        raise ConfigError(field, source, "has no examples")
    table = raw.data.table
    for column in task.text_columns:
        if raw.features[column] not in (datasets.Value("string"), datasets.Value("large_string")):
            raise ConfigError(field, source, f"column {column!r} must hold text, found {raw.features[column]}")
        nulls = pc.is_null(table.column(column))
        if pc.any(nulls).as_py():
            row = pc.index(nulls, True).as_py()
            raise ConfigError(field, source, f"column {column!r} is empty (null) in row {row}")
    allowed = set(range(task.num_labels))
    labels = table.column("label").to_pylist()
    for row, label in enumerate(labels):
        if not _is_label(label, allowed):
            raise ConfigError(
                field,
                source,
                f"column 'label' has {label!r} in row {row}, outside task {task.name}'s label set "
                f"{sorted(allowed)} ({', '.join(f'{i}={name}' for i, name in enumerate(task.label_names))})",
            )


def _is_label(value: object, allowed: set[int]) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return float(value).is_integer() and int(value) in allowed
