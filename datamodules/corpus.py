"""The schema of ``data.corpora`` (``TextCorpusDataModule``): per language, where its splits come from.

Each language has a train, validation and test source (``TextSource``): a local UTF-8 text file
(split into documents by ``document_separator``: blank lines, every line, or not at all) or a dataset read
through ``datasets.load_dataset`` (a hub dataset such as ``wikimedia/wikipedia``, or a builder such as
``json``/``parquet`` with ``data_files``; each record is a document). ``check_corpora`` checks the whole mapping at
construction (a file must be UTF-8 throughout: ``check_text_file``); ``read_documents`` reads one source and says
how many documents a file gave (``describe_documents``).
"""

from __future__ import annotations

import codecs
import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Annotated, Any, Literal

from cognitive_reserve.errors import ConfigError, check_text
from cognitive_reserve.fields import Field, check_fields, declared

SPLITS = ("train", "validation", "test")
#: How a text file splits into documents.
DocumentSeparator = Literal["blank_line", "newline", "none"]
#: Bytes read at a time when a text file is checked.
_CHUNK = 1 << 20


def check_text_file(field: str, file: Any) -> str:
    """An existing file whose first MiB holds some text, UTF-8 throughout."""
    path = Path(check_text(field, file))
    if not path.is_file():
        raise ConfigError(field, file, "no such text file")
    with path.open("rb") as handle:
        if not handle.read(_CHUNK).strip():
            raise ConfigError(field, file, "is an empty corpus: it has no text")
        handle.seek(0)
        _check_utf8(field, file, handle)
    return file


def _check_utf8(field: str, file: str, handle: Any) -> None:
    """``ConfigError`` naming the byte offset (and line) of the first byte that is not UTF-8."""
    done, lines, pending = 0, 0, b""
    while True:
        chunk = handle.read(_CHUNK)
        data = pending + chunk
        try:
            _, used = codecs.utf_8_decode(data, "strict", not chunk)
        except UnicodeDecodeError as err:
            offset, line = done + err.start, lines + data.count(b"\n", 0, err.start) + 1
            raise ConfigError(
                field,
                file,
                f"is not UTF-8: byte 0x{data[err.start]:02x} at offset {offset} (line {line}); convert it, e.g. "
                f"iconv -f <its encoding: latin1, cp1253, ...> -t utf-8 {file} > {file}.utf8",
            ) from None
        lines += data.count(b"\n", 0, used)
        done, pending = done + used, data[used:]
        if not chunk:
            return


@declared("data.corpora.<language>.<split>")
@dataclass
class TextSource:
    """Where one split of one language comes from: exactly one of ``file`` or ``hub``."""

    file: Annotated[
        str | None,
        Field(
            "local UTF-8 text file, split into documents by `document_separator`",
            valid="null or an existing UTF-8 file with some text (exactly one of `file`, `hub`)",
            check=check_text_file,
        ),
    ] = None
    document_separator: Annotated[
        DocumentSeparator,
        Field(
            "how `file` splits into documents: `blank_line` (paragraphs separated by an empty line), `newline` "
            "(one document per line), `none` (the whole file is one document); a run says on stderr how many "
            "documents each file gave"
        ),
    ] = "blank_line"
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

    def load_arguments(self, cache_dir: str | None) -> dict[str, Any]:
        """The keyword arguments of ``datasets.load_dataset`` for a ``hub`` source."""
        return {
            "path": self.hub,
            "name": self.name,
            "split": self.split,
            "data_files": self.data_files,
            "streaming": self.streaming,
            "cache_dir": cache_dir,
        }


#: Fields of a ``TextSource``.
SOURCE_FIELDS = tuple(f.name for f in fields(TextSource))


@dataclass
class LanguageCorpus:
    """The train, validation and test sources of one language."""

    train: TextSource
    validation: TextSource
    test: TextSource


def check_corpora(field: str, corpora: Any) -> dict[str, LanguageCorpus]:
    """``{language: {train, validation, test}}`` with every source checked (files read: they must have text)."""
    if not isinstance(corpora, Mapping) or not corpora:
        raise ConfigError(field, corpora, "give at least one language: {code: {train, validation, test}}")
    checked = {check_text(field, language): _as_corpus(language, corpus) for language, corpus in corpora.items()}
    for language, corpus in checked.items():
        for split in SPLITS:
            _check_source(f"{field}.{language}.{split}", getattr(corpus, split))
    return checked


def read_documents(
    source: TextSource, cache_dir: str | None, field_name: str, counted: Callable[[str], None] | None = None
) -> Iterator[str]:
    """Non-empty documents of ``source`` in order, after its ``skip``/``take``; ``ConfigError(field_name)`` if none.
    A ``file`` source first hands ``counted`` the line that says how many documents the file gave."""
    stop = None if source.take is None else source.skip + source.take
    found = False
    for document in itertools.islice(_records(source, cache_dir, field_name, counted), source.skip, stop):
        found = True
        yield document
    if not found:
        raise ConfigError(field_name, source.file or source.hub, "is an empty corpus: it has no text")


def split_documents(text: str, separator: DocumentSeparator) -> list[str]:
    """The non-empty documents of ``text`` (each stripped): paragraphs between blank lines, lines, or all of it."""
    if separator == "blank_line":
        pieces = re.split(r"\n[ \t\r\f\v]*\n", text)
    else:
        pieces = text.splitlines() if separator == "newline" else [text]
    return [piece.strip() for piece in pieces if piece.strip()]


def describe_documents(field_name: str, source: TextSource, documents: int, lines: int) -> str:
    """``data.corpora.en.train: 120 documents in en.txt (document_separator: blank_line)``, with a hint when a file
    of many lines gave one document (one paragraph per line read as one document)."""
    plural = "document" if documents == 1 else "documents"
    line = f"{field_name}: {documents} {plural} in {source.file} (document_separator: {source.document_separator})"
    if documents == 1 and lines > 1 and source.document_separator == "blank_line":
        line += f"; it has {lines} lines and no blank line between them: for one document per line set "
        line += "document_separator: newline"
    return line


def _records(
    source: TextSource, cache_dir: str | None, field_name: str, counted: Callable[[str], None] | None
) -> Iterator[str]:
    if source.file is not None:
        text = Path(source.file).read_text(encoding="utf-8")
        documents = split_documents(text, source.document_separator)
        if counted is not None:
            counted(describe_documents(field_name, source, len(documents), len(split_documents(text, "newline"))))
        yield from documents
        return
    import datasets

    for record in datasets.load_dataset(**source.load_arguments(cache_dir)):
        if source.column not in record:
            raise ConfigError(
                f"{field_name}.column", source.column, f"not a column of {source.hub} (columns: {sorted(record)})"
            )
        text = record[source.column]
        if isinstance(text, str) and text.strip():
            yield text


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
    if source.hub is not None and source.document_separator != "blank_line":
        raise ConfigError(
            f"{field_name}.document_separator",
            source.document_separator,
            "applies to a `file` source only (each record of a dataset is one document)",
        )
