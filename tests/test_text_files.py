"""Local text files as a run reads them (issue 28, items 4, 6, 10): how a file splits into documents
(``document_separator``) and how many it gave, said on stderr; a file that is not UTF-8, or too short to train the
tokenizer, refused in one line before anything is created."""

from __future__ import annotations

from pathlib import Path

import pytest

from cognitive_reserve.errors import ConfigError
from datamodules.corpus import LanguageCorpus, TextSource
from datamodules.text import TextCorpusDataModule
from tests.helpers.cli import ROOT

#: Real paragraphs, one per line (the layout the issue met), in Greek and in English.
GREEK = [
    "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας και μία από τις αρχαιότερες πόλεις του κόσμου.",
    "Το καλοκαίρι οι παραλίες γεμίζουν κόσμο, ενώ τον χειμώνα τα χωριά των βουνών ησυχάζουν.",
    "Η ελληνική γλώσσα γράφεται με το ελληνικό αλφάβητο εδώ και σχεδόν τρεις χιλιάδες χρόνια.",
    "Στο λιμάνι του Πειραιά τα πλοία φεύγουν κάθε πρωί για τα νησιά του Αιγαίου.",
]
ENGLISH = [
    "The river runs through the old town, under seven stone bridges built over three centuries.",
    "In spring the market square fills with stalls selling cheese, honey and early strawberries.",
    "Most of the town's children learn to swim in the lake before they learn to ride a bicycle.",
]


def write(path: Path, paragraphs: list[str], separator: str) -> Path:
    path.write_text(separator.join(paragraphs) + "\n", encoding="utf-8")
    return path


def datamodule(train: Path, validation: Path, separator: str = "blank_line") -> TextCorpusDataModule:
    sources = {
        split: TextSource(file=str(path), document_separator=separator)
        for split, path in (("train", train), ("validation", validation), ("test", validation))
    }
    return TextCorpusDataModule({"el": LanguageCorpus(**sources)}, train_tokens=64, block_size=16)


def test_one_paragraph_per_line_is_one_document_by_default_and_the_run_says_so(tmp_path, capsys):
    per_line = write(tmp_path / "el.txt", GREEK, "\n")
    data = datamodule(per_line, write(tmp_path / "en.txt", ENGLISH, "\n\n"))
    assert list(data.documents("el", "train")) == ["\n".join(GREEK)]
    assert list(data.documents("el", "validation")) == ENGLISH
    list(data.documents("el", "train"))  # said once per file
    assert capsys.readouterr().err.splitlines() == [
        f"data.corpora.el.train: 1 document in {per_line} (document_separator: blank_line); it has 4 lines and no "
        "blank line between them: for one document per line set document_separator: newline",
        f"data.corpora.el.validation: 3 documents in {tmp_path / 'en.txt'} (document_separator: blank_line)",
    ]


def test_document_separator_newline_reads_a_line_per_document_and_none_the_whole_file(tmp_path, capsys):
    greek = write(tmp_path / "el.txt", GREEK, "\n")
    english = write(tmp_path / "en.txt", [ENGLISH[0], "", *ENGLISH[1:]], "\n")  # an empty line is no document
    data = datamodule(greek, english, separator="newline")
    assert list(data.documents("el", "train")) == GREEK
    assert list(data.documents("el", "validation")) == ENGLISH
    assert f"data.corpora.el.train: 4 documents in {greek} (document_separator: newline)" in capsys.readouterr().err
    whole = datamodule(greek, english, separator="none")
    assert list(whole.documents("el", "train")) == ["\n".join(GREEK)]


def test_document_separator_is_declared_and_checked(tmp_path):
    text = write(tmp_path / "el.txt", GREEK, "\n")
    with pytest.raises(ConfigError) as err:
        datamodule(text, text, separator="paragraph")
    assert err.value.field == "data.corpora.el.train.document_separator"
    assert "'blank_line', 'newline', 'none'" in err.value.reason
    hub = TextSource(hub="json", data_files=str(text), document_separator="newline")
    corpus = LanguageCorpus(train=hub, validation=TextSource(file=str(text)), test=TextSource(file=str(text)))
    with pytest.raises(ConfigError, match="applies to a `file` source only") as err:
        TextCorpusDataModule({"el": corpus}, train_tokens=64, block_size=16)
    assert err.value.field == "data.corpora.el.train.document_separator"
    reference = (ROOT / "docs" / "config_reference.md").read_text(encoding="utf-8")
    assert "| `document_separator` |" in reference


def test_a_file_that_is_not_utf8_is_refused_at_construction_with_the_byte_offset(tmp_path):
    good = write(tmp_path / "en.txt", ENGLISH, "\n\n")
    latin1 = tmp_path / "fr.txt"
    latin1.write_bytes("Il était une fois.\n\nUn café au lait.\n".encode("latin-1"))
    greek_8bit = tmp_path / "el.txt"  # Greek in Windows-1253, then a long UTF-8 head so the bad byte is far in
    greek_8bit.write_bytes(("x" * (1 << 20) + "\n").encode() + GREEK[0].encode("cp1253"))
    with pytest.raises(ConfigError) as err:
        datamodule(latin1, good)
    assert err.value.field == "data.corpora.el.train.file" and err.value.value == str(latin1)
    assert err.value.reason.startswith("is not UTF-8: byte 0xe9 at offset 3 (line 1); convert it, e.g. iconv -f")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError) as err:
        datamodule(good, greek_8bit)
    assert err.value.field == "data.corpora.el.validation.file"
    assert f"byte 0xc7 at offset {(1 << 20) + 1} (line 2)" in err.value.reason


def test_too_little_text_for_the_tokenizer_is_found_before_training(tmp_path):
    one_line = write(tmp_path / "el.txt", GREEK[:1], "")
    data = datamodule(one_line, write(tmp_path / "en.txt", ENGLISH, "\n\n"))
    with pytest.raises(ConfigError) as err:
        data.check_tokenizer_text(512)
    assert (err.value.field, err.value.value) == ("data.corpora.el.train", str(one_line))
    assert "too little text to train the tokenizer" in err.value.reason and "of the 512 tokens" in err.value.reason
    data.check_tokenizer_text(300)  # enough text for 300 tokens: no error (the bound is an upper bound)


@pytest.mark.slow  # the real CLI, in-process
@pytest.mark.parametrize("problem", ["one_line", "latin1"])
def test_cli_refuses_bad_training_text_in_one_line_and_creates_nothing(tmp_path, capsys, problem):
    from run import main

    validation = write(tmp_path / "validation.txt", ENGLISH, "\n\n")
    train = tmp_path / "train.txt"
    if problem == "one_line":
        write(train, ENGLISH[:1], "")
    else:
        train.write_bytes("Il était une fois.\n".encode("latin-1"))
    root = tmp_path / "run"
    files = [f"--data.corpora.en.{split}.file={validation}" for split in ("validation", "test")]
    with pytest.raises(SystemExit) as exit_status:
        main([
            "fit", "--config", str(ROOT / "configs" / "gpt2" / "tiny_monolingual.yaml"),
            f"--trainer.default_root_dir={root}", f"--data.corpora.en.train.file={train}", *files,
        ])  # fmt: skip
    assert exit_status.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    expected = "too little text to train the tokenizer" if problem == "one_line" else "is not UTF-8: byte 0xe9"
    assert line.startswith("error: data.corpora.en.train") and expected in line
    assert not root.exists()
