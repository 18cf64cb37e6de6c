"""CIFAR-10 and 20 Newsgroups readers, encoder choices, and bad input (one-line errors naming the field)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torchvision.datasets import CIFAR10

from cognitive_reserve import ConfigError
from datamodules import cifar10 as cifar_module
from datamodules.cifar10 import Cifar10TasksDataModule
from datamodules.encoders import TorchvisionImageEncoder
from datamodules.newsgroups import NewsgroupsTasksDataModule
from tests.helpers.cli import ROOT
from tests.helpers.encoder_fixtures import tiny_fixtures, write_sklearn_newsgroups_cache


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    return tiny_fixtures(tmp_path_factory.getbasetemp() / "encoder_fixtures")


def cifar(fixtures, **overrides) -> Cifar10TasksDataModule:
    options = dict(root=str(fixtures.cifar_root), download=False, check_md5=False, encoder="resnet18", weights=None)
    return Cifar10TasksDataModule(**{**options, **overrides, "task_grid": [1, 2], "train_examples": 10})


def newsgroups(fixtures, **overrides) -> NewsgroupsTasksDataModule:
    options = dict(source="directory", root=str(fixtures.newsgroups_root), encoder=str(fixtures.bert))
    return NewsgroupsTasksDataModule(**{**options, **overrides, "task_grid": [1, 2], "train_examples": 10})


def test_cifar_reader_agrees_with_torchvision_on_the_same_files(fixtures, monkeypatch):
    """torchvision's own parser (its md5 check switched off, as the tiny files are not the release) reads
    the fixture's pickles into exactly the images and labels our safe reader returns."""
    monkeypatch.setattr(CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda path, md5=None: True)
    data = cifar(fixtures)
    for split in ("train", "test"):
        reference = CIFAR10(str(fixtures.cifar_root), train=split == "train")
        raw = data.load_raw(split)
        assert torch.equal(raw.inputs, torch.from_numpy(reference.data).permute(0, 3, 1, 2))
        assert raw.labels.tolist() == reference.targets
    assert raw.inputs.shape[1:] == (3, 32, 32) and raw.inputs.dtype == torch.uint8


def test_cifar_files_must_match_the_official_md5_unless_told_otherwise(fixtures):
    with pytest.raises(ConfigError, match=r"^data.root='[^']*': \S*/data_batch_1 does not match torchvision's md5"):
        cifar(fixtures, check_md5=True)
    assert cifar(fixtures, check_md5=False).load_raw("test").labels.numel() == 100


def test_cifar_batches_cannot_run_code(fixtures, tmp_path):
    """A pickle that would call os.system is refused, and nothing runs."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "batches.meta"):
        (folder / name).write_bytes((fixtures.cifar_root / "cifar-10-batches-py" / name).read_bytes())
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    (folder / "test_batch").write_bytes(pickle.dumps({"data": Payload(), "labels": []}, protocol=2))
    data = cifar(fixtures, root=str(tmp_path))
    with pytest.raises(ConfigError, match=r"test_batch is not a CIFAR-10 python batch: refusing to load posix.system"):
        data.load_raw("test")
    assert not marker.exists()
    assert cifar_module.read_batch(folder / "data_batch_1", "x")[0].shape == (40, 3, 32, 32)


def test_newsgroups_directory_and_sklearn_sources_give_the_same_posts(fixtures, tmp_path):
    data_home = write_sklearn_newsgroups_cache(fixtures.newsgroups_root, tmp_path / "scikit_learn_data")
    directory = newsgroups(fixtures)
    fetched = newsgroups(fixtures, source="sklearn", root=str(data_home), download=False)
    for split in ("train", "test"):
        a, b = directory.load_raw(split), fetched.load_raw(split)
        assert a.inputs == b.inputs and torch.equal(a.labels, b.labels)
    assert directory.num_classes == 20 and len(a.inputs) == 20 * 6
    assert not any("Newsgroups:" in t or "signature" in t or "quoted" in t for t in a.inputs)  # stripped
    kept = newsgroups(fixtures, remove=[]).load_raw("test").inputs
    assert all("Newsgroups: " in t and "> quoted reply" in t for t in kept)


def test_any_torchvision_model_gives_penultimate_features():
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    for name, dim in (("resnet18", 512), ("mobilenet_v3_small", 1024)):
        encoder = TorchvisionImageEncoder(name, weights=None, image_size=32)
        assert encoder.num_features == dim  # known before the network is built
        assert encoder.encode(images, torch.device("cpu")).shape == (2, dim)
    default = TorchvisionImageEncoder()  # ResNet-50 ImageNet V2: its own preprocessing, weights not loaded yet
    assert default.weights.name == "IMAGENET1K_V2" and "crop_size=[224]" in default.identity()["preprocess"]
    assert TorchvisionImageEncoder("resnet50", "DEFAULT").weights == default.weights


BAD_INPUT = {
    "unknown image encoder": (
        lambda f, tmp: cifar(f, encoder="resnet500"),
        "data.encoder='resnet500': not a torchvision image classifier; did you mean resnet50",
    ),
    "weights the model does not have": (
        lambda f, tmp: cifar(f, encoder="resnet18", weights="IMAGENET1K_V2"),
        "data.weights='IMAGENET1K_V2': resnet18 has no such weights; choose one of IMAGENET1K_V1, DEFAULT or null",
    ),
    "cifar root without the batches": (
        lambda f, tmp: cifar(f, root=str(tmp)),
        "data.root='{tmp}': no CIFAR-10 python batches in {tmp}/cifar-10-batches-py (missing data_batch_1,",
    ),
    "unknown text encoder": (
        lambda f, tmp: newsgroups(f, encoder="no-such/encoder-xyz"),
        "data.encoder='no-such/encoder-xyz': not a local model folder nor a Hugging Face hub model",
    ),
    "newsgroups root without the layout": (
        lambda f, tmp: newsgroups(f, root=str(tmp)),
        "data.root='{tmp}': expected {tmp}/20news-bydate-train with one folder of posts per newsgroup",
    ),
    "sklearn copy missing offline": (
        lambda f, tmp: newsgroups(f, source="sklearn", root=str(tmp), download=False),
        "data.root='{tmp}': scikit-learn has no 20 Newsgroups copy there",
    ),
    "pooling": (lambda f, tmp: newsgroups(f, pooling="cls"), "data.pooling='cls': must be one of 'mean', 'pooler'"),
    "device": (lambda f, tmp: cifar(f, device="tpu9"), "data.device='tpu9': "),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_a_one_line_config_error_at_construction(case, fixtures, tmp_path):
    build, expected = BAD_INPUT[case]
    with pytest.raises(ConfigError) as info:
        build(fixtures, tmp_path)
    message = str(info.value)
    assert message.startswith(expected.format(tmp=tmp_path)) and "\n" not in message, message


def test_a_model_folder_without_weights_fails_naming_the_field_before_training(fixtures, tmp_path):
    (tmp_path / "config.json").write_bytes((fixtures.bert / "config.json").read_bytes())
    data = newsgroups(fixtures, encoder=str(tmp_path), cache_dir=str(tmp_path / "cache"))  # the config is enough here
    with pytest.raises(ConfigError, match=rf"^data.encoder='{tmp_path}': cannot load: ") as info:
        data.prepare_data()
    assert "\n" not in str(info.value) and not (tmp_path / "cache").exists()


CLI_BAD_INPUT = {
    "cifar10": ("--data.init_args.encoder=resnet_50", "error: data.encoder='resnet_50': not a torchvision"),
    "newsgroups": ("--data.init_args.root=/nowhere", "error: data.root='/nowhere': expected /nowhere/20news-bydate"),
}


@pytest.mark.slow
@pytest.mark.parametrize("dataset", list(CLI_BAD_INPUT))
def test_bad_input_through_the_cli_exits_2_before_training(dataset, fixtures, tmp_path, capsys):
    from run import main

    config = yaml.safe_load((ROOT / "configs" / "linear" / f"{dataset}.yaml").read_text())
    if dataset == "newsgroups":
        config["data"]["init_args"].update(download=False, source="directory")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    bad, expected = CLI_BAD_INPUT[dataset]
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", str(path), f"--trainer.default_root_dir={tmp_path / 'out'}", "--trainer.logger=false",
              f"--data.init_args.cache_dir={tmp_path / 'cache'}", bad])  # fmt: skip
    assert info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(expected)
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_subset_per_class_is_seeded_and_stratified(fixtures):
    raw = cifar(fixtures, max_per_class=3)._subset(cifar(fixtures).load_raw("train"))
    assert np.bincount(raw.labels.numpy()).tolist() == [3] * 10
    again = cifar(fixtures, max_per_class=3)._subset(cifar(fixtures).load_raw("train"))
    assert torch.equal(raw.inputs, again.inputs)
    other = cifar(fixtures, max_per_class=3, subset_seed=1)._subset(cifar(fixtures).load_raw("train"))
    assert not torch.equal(raw.inputs, other.inputs)


def test_default_cache_dir_is_outside_the_run(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    from datamodules.encoded_tasks import default_cache_dir

    assert default_cache_dir() == Path(tmp_path) / "cognitive-reserve" / "features"
