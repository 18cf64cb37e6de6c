"""The schema of ``data.corpora`` (``TextCorpusDataModule``): per language, where its splits come from.

Each language has a train, validation and test source (``TextSource``): a local UTF-8 text file
(documents are separated by blank lines) or a dataset read through ``datasets.load_dataset`` (a hub
dataset such as ``wikimedia/wikipedia``, or a builder such as ``json``/``parquet`` with ``data_files``).
``check_corpora`` checks the whole mapping at construction; ``read_documents`` reads one source.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Annotated, Any

from cognitive_reserve.errors import ConfigError, check_text
from cognitive_reserve.fields import Field, check_fields, declared

SPLITS = ("train", "validation", "test")


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

    def load_arguments(self, cache_dir: str | None) -> dict[str, Any]:
        """The keyword arguments of ``datasets.load_dataset`` for a ``hub`` source."""
        return {
            "path": self.hub, "name": self.name, "split": self.split, "data_files": self.data_files,
            "streaming": self.streaming, "cache_dir": cache_dir,
        }  # fmt: skip


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


def read_documents(source: TextSource, cache_dir: str | None, field_name: str) -> Iterator[str]:
    """Non-empty documents of ``source`` in order, after its ``skip``/``take``; ``ConfigError(field_name)`` if none."""
    stop = None if source.take is None else source.skip + source.take
    found = False
    for document in itertools.islice(_records(source, cache_dir, field_name), source.skip, stop):
        found = True
        yield document
    if not found:
        raise ConfigError(field_name, source.file or source.hub, "is an empty corpus: it has no text")


def _records(source: TextSource, cache_dir: str | None, field_name: str) -> Iterator[str]:
    if source.file is not None:
        text = Path(source.file).read_text(encoding="utf-8")
        for paragraph in re.split(r"\n[ \t\r\f\v]*\n", text):
            if paragraph.strip():
                yield paragraph.strip()
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
