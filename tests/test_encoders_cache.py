"""Feature cache: computed once, reused without calling the encoder, invalidated by any change of encoder or data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from torchvision.models import ResNet
from transformers import BertModel

from datamodules.cifar10 import Cifar10TasksDataModule
from datamodules.feature_cache import FeatureCache
from datamodules.newsgroups import NewsgroupsTasksDataModule
from tests.helpers.encoder_fixtures import count_forward_calls, publish_to_hub_cache, tiny_fixtures, write_tiny_bert


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    return tiny_fixtures(tmp_path_factory.getbasetemp() / "encoder_fixtures")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny matrices: one thread avoids oversubscribing a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def cifar(fixtures, cache: Path, **overrides) -> Cifar10TasksDataModule:
    options = dict(
        root=str(fixtures.cifar_root), download=False, check_md5=False, encoder="resnet18", weights=None,
        image_size=32, cache_dir=str(cache), task_grid=[1, 2], train_examples=10, progress=False,
    )  # fmt: skip
    return Cifar10TasksDataModule(**{**options, **overrides})


def newsgroups(fixtures, cache: Path, **overrides) -> NewsgroupsTasksDataModule:
    options = dict(
        source="directory", root=str(fixtures.newsgroups_root), encoder=str(fixtures.bert), max_tokens=16,
        cache_dir=str(cache), task_grid=[1, 2], train_examples=10, progress=False,
    )  # fmt: skip
    return NewsgroupsTasksDataModule(**{**options, **overrides})


def files(cache: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}


def test_second_run_reuses_image_features_without_calling_the_encoder(fixtures, tmp_path):
    with count_forward_calls(ResNet) as calls:
        first = cifar(fixtures, tmp_path)
        first.prepare_data()
        first.setup("fit")
    assert calls[0] == 4 + 2  # 200 train and 100 test images, batches of 64: one forward per batch
    written = files(tmp_path)
    assert sorted(name.split("-")[:3] for name in written) == [["cifar10", s, "resnet18"] for s in ("test", "train")]
    with count_forward_calls(ResNet) as calls:
        second = cifar(fixtures, tmp_path)
        second.prepare_data()
        second.setup("fit")
    assert calls[0] == 0
    assert files(tmp_path) == written  # nothing rewritten
    for split in ("train", "val", "test"):
        assert torch.equal(first.datasets[split].tensors["x"], second.datasets[split].tensors["x"])
    assert second.num_features == 512 + 1  # resnet18's penultimate features + bias


def test_changed_encoder_or_data_misses_the_cache(fixtures, tmp_path):
    base = cifar(fixtures, tmp_path)
    reference = base.load_split("test").features
    changes = {
        "init_seed": dict(init_seed=1),  # other random weights
        "image_size": dict(image_size=40),  # other preprocessing
        "encoder": dict(encoder="resnet34"),
        "data": dict(max_per_class=5),  # other images
    }
    for name, change in changes.items():
        before = set(files(tmp_path))
        with count_forward_calls(ResNet) as calls:
            features = cifar(fixtures, tmp_path, **change).load_split("test").features
        assert calls[0] > 0, name
        assert len(set(files(tmp_path)) - before) == 1, name
        assert features.shape != reference.shape or not torch.allclose(features, reference), name


def test_text_features_are_cached_and_a_changed_model_folder_or_pooling_misses(fixtures, tmp_path):
    model = tmp_path / "bert"
    write_tiny_bert(model, seed=0)
    cache = tmp_path / "cache"
    with count_forward_calls(BertModel) as calls:
        first = newsgroups(fixtures, cache, encoder=str(model)).load_split("train").features
    assert calls[0] > 0
    with count_forward_calls(BertModel) as calls:
        again = newsgroups(fixtures, cache, encoder=str(model)).load_split("train").features
    assert calls[0] == 0 and torch.equal(first, again)
    with count_forward_calls(BertModel) as calls:
        pooled = newsgroups(fixtures, cache, encoder=str(model), pooling="pooler").load_split("train").features
    assert calls[0] > 0 and not torch.allclose(pooled, first)
    write_tiny_bert(model, seed=1)  # same folder, retrained (here: re-initialised) weights
    with count_forward_calls(BertModel) as calls:
        retrained = newsgroups(fixtures, cache, encoder=str(model)).load_split("train").features
    assert calls[0] > 0 and not torch.allclose(retrained, first)


def test_hub_model_is_keyed_by_the_commit_its_branch_points_to(fixtures, tmp_path, monkeypatch):
    """A hub id (like bert-base-uncased) whose main branch moves to a new commit misses the cache."""
    import huggingface_hub

    hub = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    first, second = "a" * 40, "b" * 40
    publish_to_hub_cache(write_tiny_bert(tmp_path / "v1", seed=0), hub, "tiny-org/tiny-bert", first)
    data = newsgroups(fixtures, tmp_path / "cache", encoder="tiny-org/tiny-bert")
    assert data.encoder.identity()["commit"] == first
    before = data.load_split("test").features
    publish_to_hub_cache(write_tiny_bert(tmp_path / "v2", seed=1), hub, "tiny-org/tiny-bert", second)
    with count_forward_calls(BertModel) as calls:
        data = newsgroups(fixtures, tmp_path / "cache", encoder="tiny-org/tiny-bert")
        after = data.load_split("test").features
    assert data.encoder.identity()["commit"] == second and calls[0] > 0 and not torch.allclose(after, before)
    assert len(list((tmp_path / "cache").iterdir())) == 2


def test_mean_pooling_ignores_padding(fixtures, tmp_path):
    """A text's features do not depend on the other texts of its batch (padding is masked out)."""
    data = newsgroups(fixtures, tmp_path)
    texts = ["the topic1word0", "a topic2word3 of the topic2word1 and it is this", "i think"]  # 4, 11, 4 tokens
    device = torch.device("cpu")
    together = data.encoder.encode(texts, device)
    alone = torch.cat([data.encoder.encode([text], device) for text in texts])
    assert torch.allclose(together, alone, atol=1e-5)


def test_cache_files_are_safetensors_with_their_key_and_damaged_files_are_recomputed(fixtures, tmp_path):
    data = cifar(fixtures, tmp_path)
    features = data.load_split("test").features
    (path,) = tmp_path.iterdir()
    with safe_open(str(path), framework="pt") as file:
        assert '"split":"test"' in file.metadata()["key"] and set(file.keys()) == {"features", "labels"}
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a torn write
    with pytest.warns(UserWarning, match="unreadable cache file"), count_forward_calls(ResNet) as calls:
        recomputed = cifar(fixtures, tmp_path).load_split("test").features
    assert calls[0] > 0 and torch.equal(recomputed, features)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # rewritten in place, no temporary left


def test_a_file_written_for_another_key_is_not_trusted(tmp_path):
    cache = FeatureCache(tmp_path)
    key = {"dataset": "d", "split": "train", "data": "x", "encoder": {"name": "e"}}
    cache.save(key, features_of(3))
    other = {**key, "data": "y"}
    cache.path(key).rename(cache.path(other))  # e.g. a copied or renamed file
    with pytest.warns(UserWarning, match="written for another key"):
        assert cache.load(other) is None


def features_of(n: int):
    from datamodules.label_pairs import LabeledFeatures

    return LabeledFeatures(torch.randn(n, 4), torch.arange(n))
