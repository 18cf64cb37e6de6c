"""Tiny offline fixtures for the encoder experiments, written by the tests themselves.

- CIFAR-10 in torchvision's python-pickle layout (``cifar-10-batches-py/data_batch_1..5``,
  ``test_batch``, ``batches.meta``); each class has its own mean colour so features carry signal.
- 20 Newsgroups in the "bydate" folder layout, posts with headers, quotes and a signature.
- A tiny randomly initialised BERT with a WordPiece vocabulary of the fixture's words, saved to a folder.
"""

from __future__ import annotations

import codecs
import pickle
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
NEWSGROUPS = [
    "alt.atheism", "comp.graphics", "comp.os.ms-windows.misc", "comp.sys.ibm.pc.hardware", "comp.sys.mac.hardware",
    "comp.windows.x", "misc.forsale", "rec.autos", "rec.motorcycles", "rec.sport.baseball", "rec.sport.hockey",
    "sci.crypt", "sci.electronics", "sci.med", "sci.space", "soc.religion.christian", "talk.politics.guns",
    "talk.politics.mideast", "talk.politics.misc", "talk.religion.misc",
]  # fmt: skip
COMMON_WORDS = ["the", "a", "of", "and", "is", "in", "to", "it", "this", "that", "i", "think", "about"]


def write_cifar10(root: Path, train_per_class: int = 20, test_per_class: int = 10, seed: int = 0) -> Path:
    """Write a tiny CIFAR-10 copy under ``root/cifar-10-batches-py``; returns ``root``."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    colours = rng.integers(40, 216, size=(10, 3))

    def images(per_class: int) -> tuple[np.ndarray, list[int]]:
        labels = np.repeat(np.arange(10), per_class)
        rng.shuffle(labels)
        pixels = colours[labels][:, :, None] + rng.normal(0, 30, size=(len(labels), 3, 1024))
        return np.clip(pixels, 0, 255).astype(np.uint8).reshape(len(labels), 3072), labels.tolist()

    data, labels = images(train_per_class)
    for i, part in enumerate(np.array_split(np.arange(len(labels)), 5), start=1):
        entry = {"batch_label": f"training batch {i} of 5", "labels": [labels[j] for j in part], "data": data[part]}
        _dump(folder / f"data_batch_{i}", {**entry, "filenames": [f"img{j}.png" for j in part]})
    data, labels = images(test_per_class)
    _dump(folder / "test_batch", {"batch_label": "testing batch 1 of 1", "labels": labels, "data": data,
                                  "filenames": [f"test{j}.png" for j in range(len(labels))]})  # fmt: skip
    _dump(folder / "batches.meta", {"label_names": CIFAR_CLASSES, "num_cases_per_batch": len(labels), "num_vis": 3072})
    return root


def _dump(path: Path, entry: dict) -> None:
    with path.open("wb") as file:
        pickle.dump(entry, file, protocol=2)  # the release's protocol


def topic_words(index: int) -> list[str]:
    """Five words only posts of newsgroup ``index`` use."""
    return [f"topic{index}word{j}" for j in range(5)]


def write_newsgroups(root: Path, train_per_group: int = 12, test_per_group: int = 6, seed: int = 0) -> Path:
    """Write ``root/20news-bydate-{train,test}/<group>/<id>`` posts; returns ``root``."""
    rng = np.random.default_rng(seed)
    post_id = 10000
    for split, count in (("train", train_per_group), ("test", test_per_group)):
        for index, group in enumerate(NEWSGROUPS):
            folder = root / f"20news-bydate-{split}" / group
            folder.mkdir(parents=True, exist_ok=True)
            for _ in range(count):
                words = rng.choice(COMMON_WORDS + topic_words(index), size=rng.integers(8, 30)).tolist()
                post = (
                    f"From: user{post_id}@example.edu\nSubject: post {post_id}\nNewsgroups: {group}\n"
                    f"Lines: 4\n\n{' '.join(words)}\n> quoted reply text\n\n--\nsignature line\n"
                )
                (folder / str(post_id)).write_text(post, encoding="latin1")
                post_id += 1
    return root


def write_tiny_bert(folder: Path, seed: int = 0, hidden_size: int = 32) -> Path:
    """A randomly initialised 2-layer BERT and its WordPiece tokenizer, saved with ``save_pretrained``."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    words = COMMON_WORDS + [w for i in range(len(NEWSGROUPS)) for w in topic_words(i)] + ["quoted", "reply", "text"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(words))]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True).save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=hidden_size, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=2 * hidden_size, max_position_embeddings=64,
    )  # fmt: skip
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(folder)
    return folder


def write_sklearn_newsgroups_cache(directory_copy: Path, data_home: Path) -> Path:
    """What scikit-learn's fetcher stores after downloading (``load_files`` of both splits, zlib-compressed
    pickle in ``data_home``), built from a local copy: lets ``source: sklearn`` run offline."""
    from sklearn.datasets import load_files
    from sklearn.datasets._twenty_newsgroups import CACHE_NAME, _pkl_filepath

    cache = {
        split: load_files(directory_copy / f"20news-bydate-{split}", encoding="latin1") for split in ("train", "test")
    }
    data_home.mkdir(parents=True, exist_ok=True)
    Path(_pkl_filepath(str(data_home), CACHE_NAME)).write_bytes(codecs.encode(pickle.dumps(cache), "zlib_codec"))
    return data_home


def publish_to_hub_cache(folder: Path, hub_cache: Path, repo_id: str, commit: str) -> None:
    """Place a saved model in a Hugging Face hub cache as commit ``commit`` of ``repo_id``, now its ``main``:
    what a download leaves behind, so offline loading by hub id works."""
    repo = hub_cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)


@dataclass(frozen=True)
class TinyFixtures:
    cifar_root: Path
    newsgroups_root: Path
    bert: Path


def tiny_fixtures(base: Path) -> TinyFixtures:
    """All fixtures under ``base``, written on the first call only."""
    fixtures = TinyFixtures(base / "cifar", base / "newsgroups", base / "tiny-bert")
    if not (base / "complete").exists():
        write_cifar10(fixtures.cifar_root)
        write_newsgroups(fixtures.newsgroups_root)
        write_tiny_bert(fixtures.bert)
        (base / "complete").touch()
    return fixtures


@contextmanager
def count_forward_calls(module_type: type) -> Iterator[list[int]]:
    """Counts forward calls of every module of ``module_type`` (a global hook: real modules, no mocks)."""
    calls = [0]

    def hook(module: torch.nn.Module, args: object, output: object) -> None:
        if isinstance(module, module_type):
            calls[0] += 1

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        yield calls
    finally:
        handle.remove()
