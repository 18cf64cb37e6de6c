"""GLUE data: hub layout and local files read alike, the encoding of single texts and pairs, checks of bad files."""

from __future__ import annotations

import pytest
import torch

from cognitive_reserve.errors import ConfigError
from datamodules.glue import GlueDataModule, RightPadCollator, join_texts
from datamodules.glue_sample import sample_records, write_glue_sample, write_records
from datamodules.glue_tasks import GLUE_TASKS
from tests.helpers.glue_fixtures import END_OF_TEXT, tiny_tokenizer, write_hub_layout


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


def datamodule(tmp_path, tokenizer, task: str, files=None, **kwargs) -> GlueDataModule:
    data_files = {split: str(path) for split, path in files.items()} if files else None
    dm = GlueDataModule(task, data_files=data_files, cache_dir=str(tmp_path / "cache"), **kwargs)
    dm.use_tokenizer(tokenizer)
    dm.setup("fit")
    return dm


def test_every_task_names_the_hub_columns():
    columns = {name: task.text_columns for name, task in GLUE_TASKS.items()}
    assert columns == {
        "cola": ("sentence",), "sst2": ("sentence",), "mrpc": ("sentence1", "sentence2"),
        "qqp": ("question1", "question2"), "qnli": ("question", "sentence"), "rte": ("sentence1", "sentence2"),
    }  # fmt: skip
    assert {name: task.main_metric for name, task in GLUE_TASKS.items()} == {
        "cola": "mcc", "sst2": "accuracy", "mrpc": "accuracy", "qqp": "accuracy", "qnli": "accuracy", "rte": "accuracy"
    }  # fmt: skip
    assert GLUE_TASKS["mrpc"].metrics == GLUE_TASKS["qqp"].metrics == ("accuracy", "f1")


def test_hub_layout_and_local_files_give_the_same_batches(tmp_path, tokenizer):
    """`load_dataset("nyu-mll/glue", task)` pointed at a local repository with the hub's layout (parquet shards,
    ClassLabel labels, unlabeled test split) reads what JSON Lines / CSV / Parquet files of the same rows give."""
    hub = write_hub_layout(tmp_path / "glue", "rte", train=40, validation=24)
    from_hub = datamodule(tmp_path, tokenizer, "rte", dataset=str(hub), eval_batch_size=8)
    assert from_hub.raw_split("train").features["label"].names == ["entailment", "not_entailment"]
    reference = [b for b in from_hub.val_dataloader()]
    for fmt in ("jsonl", "csv", "parquet"):
        files = {
            split: write_records(sample_records("rte", count, seed), tmp_path / fmt / f"{split}.{fmt}")
            for seed, (split, count) in enumerate((("train", 40), ("validation", 24)))
        }
        local = datamodule(tmp_path, tokenizer, "rte", files, eval_batch_size=8)
        batches = list(local.val_dataloader())
        assert len(batches) == len(reference) == 3
        for got, want in zip(batches, reference, strict=True):
            assert all(torch.equal(got[key], want[key]) for key in ("input_ids", "attention_mask", "labels"))


def test_test_split_is_the_labeled_validation_split(tmp_path, tokenizer):
    dm = datamodule(tmp_path, tokenizer, "rte", dataset=str(write_hub_layout(tmp_path / "glue", "rte")))
    test, val = next(iter(dm.test_dataloader())), next(iter(dm.val_dataloader()))
    assert torch.equal(test["input_ids"], val["input_ids"]) and torch.equal(test["labels"], val["labels"])
    assert set(test["labels"].tolist()) == {0, 1}  # the hub test split's -1 labels are never used


def test_pairs_are_joined_by_eos_and_single_texts_are_not_touched(tmp_path, tokenizer):
    eos = tokenizer.eos_token_id
    pair = datamodule(tmp_path, tokenizer, "mrpc", write_glue_sample(tmp_path, "mrpc", 8, 8))
    raw, encoded = pair.raw_split("validation")[0], pair.dataset("validation")[0]
    first = tokenizer(raw["sentence1"], add_special_tokens=False)["input_ids"]
    second = tokenizer(raw["sentence2"], add_special_tokens=False)["input_ids"]
    assert encoded["input_ids"] == [*first, eos, *second] and encoded["label"] == raw["label"]
    single = datamodule(tmp_path, tokenizer, "sst2", write_glue_sample(tmp_path, "sst2", 8, 8))
    raw, encoded = single.raw_split("train")[3], single.dataset("train")[3]
    assert encoded["input_ids"] == tokenizer(raw["sentence"], add_special_tokens=False)["input_ids"]
    assert eos not in encoded["input_ids"]


def test_literal_end_of_text_in_a_text_stays_text(tmp_path, tokenizer):
    records = [{"sentence": f"good {END_OF_TEXT}", "label": 1}, {"sentence": "", "label": 0}]
    files = {split: write_records(records, tmp_path / f"{split}.jsonl") for split in ("train", "validation")}
    dm = datamodule(tmp_path, tokenizer, "sst2", files)
    injected, empty = dm.dataset("train")["input_ids"]
    assert tokenizer.eos_token_id not in injected and tokenizer.decode(injected) == f"good {END_OF_TEXT}"
    assert empty == [tokenizer.eos_token_id]  # an empty text is one eos, never a zero-length sequence


def test_truncation_keeps_max_length_cutting_the_longer_text_first():
    assert join_texts(([1, 2, 3, 4, 5, 6], [7, 8]), separator=0, max_length=6) == [1, 2, 3, 0, 7, 8]
    assert join_texts(([1, 2], [3, 4, 5, 6, 7]), separator=0, max_length=5) == [1, 2, 0, 3, 4]
    assert join_texts(([1, 2, 3], [4, 5, 6]), separator=0, max_length=4) == [1, 2, 0, 4]
    assert join_texts(([1, 2, 3, 4],), separator=0, max_length=3) == [1, 2, 3]


def test_max_length_128_bounds_every_example(tmp_path, tokenizer):
    long = " ".join(["brilliant"] * 400)
    records = [
        {"question1": long, "question2": "dull " * 300, "label": 1},
        {"question1": "a", "question2": long, "label": 0},
    ]
    files = {split: write_records(records, tmp_path / f"{split}.jsonl") for split in ("train", "validation")}
    dm = datamodule(tmp_path, tokenizer, "qqp", files)
    assert dm.max_length == 128
    lengths = [len(ids) for ids in dm.dataset("train")["input_ids"]]
    assert lengths == [128, 128]
    assert dm.dataset("train")[1]["input_ids"][:2] == [*tokenizer("a")["input_ids"], tokenizer.eos_token_id]


def test_batches_are_right_padded_with_eos_and_masked():
    batch = RightPadCollator(pad_id=0)([{"input_ids": [5, 6, 7], "label": 1}, {"input_ids": [8], "label": 0}])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [1, 0]


BAD_FILES = {
    "missing column": (
        "mrpc", [{"sentence1": "a", "label": 1}],
        "data.data_files.train='{path}': missing column(s) ['sentence2']: task mrpc needs",
    ),
    "label outside the label set": (
        "sst2", [{"sentence": "a", "label": 1}, {"sentence": "b", "label": 2}],
        "data.data_files.train='{path}': column 'label' has 2 in row 1, outside task sst2's label set [0, 1]",
    ),
    "negative label (an unlabeled test split)": (
        "cola", [{"sentence": "a", "label": -1}],
        "data.data_files.train='{path}': column 'label' has -1 in row 0, outside task cola's label set [0, 1]",
    ),
    "text label": (
        "sst2", [{"sentence": "a", "label": "positive"}],
        "data.data_files.train='{path}': column 'label' has 'positive' in row 0",
    ),
    "null text": (
        "qnli", [{"question": "q", "sentence": "s", "label": 0}, {"question": None, "sentence": "s", "label": 1}],
        "data.data_files.train='{path}': column 'question' is empty (null) in row 1",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_local_files_are_one_line_errors_naming_file_and_field(case, tmp_path, tokenizer):
    task, records, expected = BAD_FILES[case]
    good = sample_records(task, 4, seed=0)
    files = {
        "train": write_records(records, tmp_path / "train.jsonl"),
        "validation": write_records(good, tmp_path / "v.jsonl"),
    }
    with pytest.raises(ConfigError) as info:
        datamodule(tmp_path, tokenizer, task, files)
    message = str(info.value)
    assert "\n" not in message and message.startswith(expected.format(path=files["train"])), message


def test_bad_arguments_fail_at_construction(tmp_path):
    files = write_glue_sample(tmp_path, "sst2", 4, 4)
    with pytest.raises(ConfigError, match=r"^data.task='mnli': unknown GLUE task; choose one of \['cola', "):
        GlueDataModule("mnli")
    with pytest.raises(ConfigError, match=r"^data.data_files.validation=None: missing"):
        GlueDataModule("sst2", data_files={"train": str(files["train"])})
    with pytest.raises(ConfigError, match=r"^data.data_files.train='.*train.txt': unsupported file type"):
        GlueDataModule(
            "sst2", data_files={"train": str(tmp_path / "train.txt"), "validation": str(files["validation"])}
        )
    with pytest.raises(ConfigError, match=r"^data.data_files.train='.*nope.csv': no such file"):
        GlueDataModule("sst2", data_files={"train": str(tmp_path / "nope.csv"), "validation": str(files["validation"])})
