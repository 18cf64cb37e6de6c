"""Generated text corpora and tiny GPT-2 pieces shared by the GPT-2 tests (nothing is downloaded)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerFast

from datamodules.corpus import LanguageCorpus, TextSource
from datamodules.sample_corpus import write_corpus
from datamodules.text import TextCorpusDataModule
from datamodules.tokenization import train_byte_level_bpe
from lightning_modules import GPT2LanguageModel

#: Greek with accents, diaeresis, final sigma, capitals; mixed English/Greek lines.
GREEK_SAMPLES = [
    "Η γλώσσα μας είναι ελληνική, με τόνους: άέήίόύώ, διαλυτικά ϊϋ ΐΰ και τελικό σίγμα ς.",
    "Ο ΉΛΙΟΣ ΛΆΜΠΕΙ ΠΆΝΩ ΑΠΌ ΤΗΝ ΑΚΡΌΠΟΛΗ· οι άνθρωποι περπατούν αργά.",
    "Mixed line: the museum of Αθήνα opens at 9:00 — ευχαριστώ πολύ, see you soon!",
    "Αϊνστάιν; Προϊστορικός! «Εισαγωγικά» και ερωτηματικό;",
]
ENGLISH_SAMPLES = [
    "The quick brown fox jumps over the lazy dog, doesn't it?",
    "  Leading spaces, tabs\tand\nnew lines survive a round trip.",
    "Numbers 3.14159 and symbols #@$%^&*() [brackets] {braces}.",
]

TINY_GPT2 = {"n_layer": 2, "n_head": 2, "n_embd": 32, "n_positions": 32, "vocab_size": 320}


def tiny_corpus(directory: Path, kilobytes: int = 8) -> dict[str, Path]:
    """``<lang>.<split>.txt`` for en and el (synthetic sentences plus the samples above)."""
    paths = write_corpus(directory, kilobytes)
    for name, path in paths.items():
        samples = GREEK_SAMPLES if name.startswith("el") else ENGLISH_SAMPLES
        path.write_text(path.read_text("utf-8") + "\n" + "\n\n".join(samples) + "\n", "utf-8")
    return paths


def corpora_from_files(paths: dict[str, Path], languages: tuple[str, ...]) -> dict[str, LanguageCorpus]:
    """``TextCorpusDataModule.corpora`` reading the files of ``tiny_corpus``."""
    return {
        language: LanguageCorpus(
            **{split: TextSource(file=str(paths[f"{language}.{split}"])) for split in ("train", "validation", "test")}
        )
        for language in languages
    }


def tiny_datamodule(paths: dict[str, Path], languages: tuple[str, ...] = ("en",), **overrides) -> TextCorpusDataModule:
    """A small datamodule over the generated files (block size 32)."""
    arguments = {"train_tokens": 640, "block_size": 32, "batch_size": 4, "tokenizer_train_bytes": 100_000}
    return TextCorpusDataModule(corpora_from_files(paths, languages), **{**arguments, **overrides})


def data_file_args(paths: dict[str, Path], languages: tuple[str, ...]) -> list[str]:
    """CLI overrides pointing a tiny config's ``data.corpora`` at generated files."""
    args = []
    for language in languages:
        for split in ("train", "validation", "test"):
            args += [f"--data.corpora.{language}.{split}.file", str(paths[f"{language}.{split}"])]
    return args


def write_jsonl(path: Path, records: list[dict]) -> Path:
    """One JSON record per line (the schema of a hub dataset, read by the ``json`` builder)."""
    path.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records), "utf-8")
    return path


def wikipedia_records(paths: dict[str, Path], language: str, split: str) -> list[dict]:
    """Documents of a generated file in the schema of ``wikimedia/wikipedia`` (id, url, title, text)."""
    documents = [p.strip() for p in paths[f"{language}.{split}"].read_text("utf-8").split("\n\n") if p.strip()]
    return [
        {"id": str(i), "url": f"https://{language}.wikipedia.org/wiki?curid={i}", "title": f"T{i}", "text": text}
        for i, text in enumerate(documents)
    ]


def evaluation_setup(
    directory: Path, documents: list[str], block: int, vocab: int
) -> tuple[GPT2LanguageModel, LanguageCorpus, PreTrainedTokenizerFast]:
    """A tiny random GPT-2 holding a tokenizer trained on a tiny corpus, and an English corpus whose
    validation split is ``documents`` (one per paragraph)."""
    paths = tiny_corpus(directory, kilobytes=4)
    validation = directory / "validation.txt"
    validation.write_text("\n\n".join(documents) + "\n", "utf-8")
    tokenizer = train_byte_level_bpe([paths["en.train"].read_text("utf-8"), *GREEK_SAMPLES], vocab)
    source = TextSource(file=str(paths["en.train"]))
    corpus = LanguageCorpus(train=source, validation=TextSource(file=str(validation)), test=source)
    torch.manual_seed(0)
    model = GPT2LanguageModel(
        gpt2_config={"n_layer": 1, "n_head": 2, "n_embd": 16, "n_positions": block, "vocab_size": vocab},
        tokenizer="train",
    )
    model.tokenizer_owner.restore(tokenizer)  # use this tokenizer as is (no training, no re-initialisation)
    return model, corpus, tokenizer
