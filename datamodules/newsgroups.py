"""20 Newsgroups label-pair tasks on the features of a frozen Hugging Face text encoder (paper §3).

Two sources of the same posts, chosen by ``source``:
- ``sklearn``: scikit-learn's ``fetch_20newsgroups`` (downloads the "bydate" release once into
  its ``data_home``; the default ``~/scikit_learn_data``);
- ``directory``: a local folder in the release's layout, ``<root>/20news-bydate-train/<newsgroup>/<post>``
  and ``<root>/20news-bydate-test/...`` (what scikit-learn itself extracts), read as Latin-1 text.
Both strip the same parts of every post (``remove``, scikit-learn's own functions) and order posts
by (newsgroup, file name), so the two sources give identical inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from sklearn.datasets import fetch_20newsgroups, load_files
from sklearn.datasets._twenty_newsgroups import (  # the fetcher's own `remove` steps
    strip_newsgroup_footer,
    strip_newsgroup_header,
    strip_newsgroup_quoting,
)

from cognitive_reserve.errors import ConfigError, check_choice, check_text
from cognitive_reserve.fields import Field, check_fields, declared
from datamodules.encoded_tasks import EncodedTasksDataModule, RawSplit, prefixed
from datamodules.encoders import HuggingFaceTextEncoder, Pooling

SPLIT_FOLDERS = {"train": "20news-bydate-train", "test": "20news-bydate-test"}
STRIPPERS = {"headers": strip_newsgroup_header, "footers": strip_newsgroup_footer, "quotes": strip_newsgroup_quoting}
Source = Literal["sklearn", "directory"]


def check_parts(field: str, remove: Any) -> list[str]:
    """A list of post parts to strip (may be empty)."""
    if isinstance(remove, str) or not isinstance(remove, Sequence):
        raise ConfigError(field, remove, "give a list of parts: headers, footers, quotes (or [])")
    return [check_choice(field, part, tuple(STRIPPERS)) for part in remove]


@declared("data")
class NewsgroupsTasksDataModule(EncodedTasksDataModule):
    """Label-pair tasks on 20 Newsgroups through a frozen Hugging Face text encoder; every field of
    ``EncodedTasksDataModule`` and ``LabelPairTasksDataModule`` too."""

    num_classes = 20
    dataset_name = "newsgroups"

    def __init__(
        self,
        source: Annotated[
            Source,
            Field(
                "`sklearn` (scikit-learn's fetcher) or `directory` (a local copy in the release's layout under `root`)"
            ),
        ] = "sklearn",
        root: Annotated[
            str | None,
            Field(
                "`directory`: the folder holding `20news-bydate-train/` and `20news-bydate-test/`; `sklearn`: its "
                "`data_home` (null: `~/scikit_learn_data`)",
                later="`directory`: the same ≥ 2 newsgroup folders in both; `sklearn` without download: a copy "
                "there: at construction",
            ),
        ] = None,
        download: Annotated[
            bool, Field("let scikit-learn download the posts when they are missing (needs network)")
        ] = True,
        remove: Annotated[
            Sequence[str],
            Field(
                "parts stripped from every post: `headers` (they name the newsgroup: a label leak), `footers` "
                "(signatures), `quotes` (quoted replies)",
                valid="list of `headers`, `footers`, `quotes` (may be empty)",
                check=check_parts,
            ),
        ] = ("headers", "footers", "quotes"),
        encoder: Annotated[
            str,
            Field(
                "Hugging Face hub id or local folder of the text encoder",
                valid="a local folder or hub id of a Hugging Face model whose config has `hidden_size`",
                check=check_text,
                later="config loaded at construction, weights in `prepare_data`",
            ),
        ] = "bert-base-uncased",
        pooling: Annotated[
            Pooling,
            Field(
                "`mean` (mean of the last hidden state over real tokens) or `pooler`",
                later="the model has a pooled output: at encoding",
            ),
        ] = "mean",
        max_tokens: Annotated[int, Field("keep the first N tokens of every post", ge=2)] = 256,
        revision: Annotated[str | None, Field("hub revision (branch, tag or commit) of `encoder`")] = None,
        **kwargs: Any,
    ) -> None:
        check_fields(NewsgroupsTasksDataModule, locals())
        self.source, self.root, self.download_missing, self.remove = source, root, download, list(remove)
        if source == "directory":
            self.categories = self._directory_categories()
            self.num_classes = len(self.categories)
        super().__init__(**kwargs)
        try:
            self.encoder = HuggingFaceTextEncoder(encoder, pooling, max_tokens, revision)
        except ConfigError as err:
            raise prefixed(err) from None
        if source == "sklearn" and not download:
            self._fetch("train")  # fails now, naming data.root, when the posts are not there

    def download(self) -> None:
        if self.source == "sklearn":
            self._fetch("train")

    def load_raw(self, split: str) -> RawSplit:
        if self.source == "sklearn":
            bunch = self._fetch(split)
        else:
            bunch = load_files(Path(self.root) / SPLIT_FOLDERS[split], encoding="latin1", shuffle=False)
        texts = list(bunch.data)
        for part in self.remove:
            texts = [STRIPPERS[part](text) for text in texts]
        order = sorted(range(len(texts)), key=lambda i: (int(bunch.target[i]), Path(bunch.filenames[i]).name))
        return RawSplit([texts[i] for i in order], torch.as_tensor(bunch.target[order], dtype=torch.long))

    def _fetch(self, split: str) -> Any:
        try:
            return fetch_20newsgroups(
                data_home=self.root, subset=split, shuffle=False, download_if_missing=self.download_missing
            )
        except OSError as err:
            if not self.download_missing:
                raise ConfigError(
                    "data.root",
                    self.root,
                    f"scikit-learn has no 20 Newsgroups copy there ({err}); set data.download=true, "
                    "or data.source=directory with a local copy",
                ) from None
            raise ConfigError("data.download", True, f"cannot download 20 Newsgroups: {err}") from None

    def _directory_categories(self) -> list[str]:
        if self.root is None:
            raise ConfigError("data.root", None, "source=directory needs the folder of the 20news-bydate-* copies")
        found = {}
        for split, folder in SPLIT_FOLDERS.items():
            path = Path(self.root) / folder
            found[split] = sorted(p.name for p in path.iterdir() if p.is_dir()) if path.is_dir() else []
            if len(found[split]) < 2:
                raise ConfigError(
                    "data.root", self.root, f"expected {path} with one folder of posts per newsgroup (at least 2)"
                )
        if found["train"] != found["test"]:
            raise ConfigError("data.root", self.root, "20news-bydate-train and -test hold different newsgroups")
        return found["train"]
