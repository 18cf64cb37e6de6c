"""TextCorpusDataModule: equal token budgets, hub sources read through `datasets` from local files, bad input."""

from __future__ import annotations

import pytest
import torch

from cognitive_reserve.errors import ConfigError
from datamodules.corpus import LanguageCorpus, TextSource
from datamodules.text import TextCorpusDataModule
from datamodules.tokenization import train_byte_level_bpe
from datamodules.windows import IGNORE_INDEX
from tests.helpers.gpt2_fixtures import corpora_from_files, tiny_corpus, tiny_datamodule, wikipedia_records, write_jsonl

BLOCK = 32


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny_corpus(tmp_path_factory.mktemp("corpus"), kilobytes=8)


def own_tokenizer(datamodule: TextCorpusDataModule, vocab_size: int = 320):
    tokenizer = train_byte_level_bpe(datamodule.tokenizer_training_text(), vocab_size)
    datamodule.use_tokenizer(tokenizer)
    return tokenizer


def predicted_tokens(dataset) -> dict[int, int]:
    counts: dict[int, int] = {}
    for item in dataset:
        counts[item["language"]] = counts.get(item["language"], 0) + int((item["targets"] != IGNORE_INDEX).sum())
    return counts


@pytest.mark.parametrize("train_tokens", [640, 650, 999])
def test_monolingual_and_bilingual_train_on_the_same_number_of_tokens(corpus, train_tokens):
    mono = tiny_datamodule(corpus, ("en",), train_tokens=train_tokens)
    bi = tiny_datamodule(corpus, ("en", "el"), train_tokens=train_tokens)
    own_tokenizer(mono), own_tokenizer(bi)  # each model counts in its own tokenizer

    mono_counts, bi_counts = predicted_tokens(mono.dataset("train")), predicted_tokens(bi.dataset("train"))

    total = train_tokens // BLOCK * BLOCK
    assert sum(mono_counts.values()) == sum(bi_counts.values()) == total
    assert abs(bi_counts[0] - bi_counts[1]) <= BLOCK  # half / half, within one block


def test_language_ratio_splits_the_budget(corpus):
    bi = tiny_datamodule(corpus, ("en", "el"), train_tokens=8 * BLOCK, language_ratio={"en": 3, "el": 1})
    own_tokenizer(bi)
    assert bi.train_blocks_per_language() == {"en": 6, "el": 2}
    assert predicted_tokens(bi.dataset("train")) == {0: 6 * BLOCK, 1: 2 * BLOCK}


def test_evaluation_blocks_cover_every_document_byte_once(corpus):
    datamodule = tiny_datamodule(corpus, ("en", "el"))
    tokenizer = own_tokenizer(datamodule)
    for index, language in enumerate(("en", "el")):
        documents = [p.strip() for p in corpus[f"{language}.test"].read_text("utf-8").split("\n\n") if p.strip()]
        stream = [tokenizer.eos_token_id]
        for document in documents:
            stream += tokenizer(document, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        items = [item for item in datamodule.dataset("test") if item["language"] == index]
        targets = torch.cat([item["targets"] for item in items])
        assert targets[targets != IGNORE_INDEX].tolist() == stream[1:]
        assert sum(int(item["num_bytes"]) for item in items) == sum(len(d.encode("utf-8")) for d in documents)


def test_hub_sources_read_through_datasets_from_local_files(corpus, tmp_path):
    """Wikipedia- and IMDB-shaped records behind the same load_dataset path the hub names use."""
    wiki = write_jsonl(tmp_path / "wiki_en.jsonl", wikipedia_records(corpus, "en", "train"))
    imdb = write_jsonl(tmp_path / "imdb.jsonl", [{"text": f"Review {i}: a film.", "label": i % 2} for i in range(10)])
    wiki_source = {"hub": "json", "data_files": str(wiki), "split": "train", "column": "text", "streaming": True}
    corpora = {
        "en": LanguageCorpus(
            train=TextSource(**wiki_source, skip=4),
            validation=TextSource(**wiki_source, take=4),
            test=TextSource(hub="json", data_files={"test": str(imdb)}, split="test[:2]+test[-2:]"),
        )
    }
    datamodule = TextCorpusDataModule(corpora, train_tokens=4 * BLOCK, block_size=BLOCK, cache_dir=str(tmp_path / "hf"))
    datamodule.prepare_data()  # downloads (here: converts) the non-streaming source only

    records = wikipedia_records(corpus, "en", "train")
    assert list(datamodule.documents("en", "validation")) == [r["text"] for r in records[:4]]
    assert next(datamodule.documents("en", "train")) == records[4]["text"]
    assert list(datamodule.documents("en", "test")) == [f"Review {i}: a film." for i in (0, 1, 8, 9)]
    own_tokenizer(datamodule)
    assert predicted_tokens(datamodule.dataset("train")) == {0: 4 * BLOCK}


def test_missing_text_file_names_the_field(corpus):
    corpora = corpora_from_files(corpus, ("en",))
    corpora["en"].validation = TextSource(file="/nonexistent/en.validation.txt")
    with pytest.raises(ConfigError) as err:
        TextCorpusDataModule(corpora, train_tokens=640, block_size=BLOCK)
    assert err.value.field == "data.corpora.en.validation.file"
    assert "\n" not in str(err.value)


def test_empty_corpus_names_the_field(corpus, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n   \n\t\n", "utf-8")
    corpora = corpora_from_files(corpus, ("en", "el"))
    corpora["el"].train = TextSource(file=str(empty))
    with pytest.raises(ConfigError) as err:
        TextCorpusDataModule(corpora, train_tokens=640, block_size=BLOCK)
    assert err.value.field == "data.corpora.el.train.file" and "empty" in err.value.reason

    blank_records = write_jsonl(tmp_path / "blank.jsonl", [{"text": "  "}, {"text": ""}])
    corpora = corpora_from_files(corpus, ("en",))
    corpora["en"].test = TextSource(hub="json", data_files=str(blank_records), streaming=True)
    datamodule = TextCorpusDataModule(corpora, train_tokens=640, block_size=BLOCK)
    own_tokenizer(datamodule)
    with pytest.raises(ConfigError) as err:
        datamodule.dataset("test")
    assert err.value.field == "data.corpora.en.test" and "empty" in err.value.reason


def test_budget_larger_than_corpus_names_the_field(corpus):
    datamodule = tiny_datamodule(corpus, ("en", "el"), train_tokens=10_000_000)
    own_tokenizer(datamodule)
    with pytest.raises(ConfigError) as err:
        datamodule.dataset("train")
    assert err.value.field == "data.train_tokens"
    assert "'en'" in err.value.reason and "only" in err.value.reason


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"language_ratio": {"en": 1.0}}, "data.language_ratio"),
        ({"language_ratio": {"en": 1.0, "el": -1.0}}, "data.language_ratio.el"),
        ({"train_tokens": 10}, "data.train_tokens"),
        ({"block_size": 0}, "data.block_size"),
    ],
)
def test_bad_settings_name_the_field(corpus, overrides, field):
    with pytest.raises(ConfigError) as err:
        tiny_datamodule(corpus, ("en", "el"), **overrides)
    assert err.value.field == field


def test_without_a_handed_over_tokenizer_the_data_says_how_to_give_one(tmp_path):
    datamodule = tiny_datamodule(tiny_corpus(tmp_path))
    with pytest.raises(ConfigError, match="use_tokenizer") as err:
        datamodule.dataset("train")
    assert err.value.field == "data"
