"""Label-pair tasks: constant training budget in T, nested tasks, [0, 1] targets, MNIST from IDX files."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import torch

from cognitive_reserve import ConfigError, read_sweep_csv
from datamodules import DigitsTasksDataModule, MnistTasksDataModule
from tests.helpers.cli import ROOT


def test_total_training_examples_constant_in_t_and_tasks_nested():
    data = DigitsTasksDataModule(task_grid=[1, 2, 3, 5, 10], train_examples=120)
    data.setup()
    train = data.datasets["train"].tensors
    for column, t in enumerate(data.task_grid):
        member = train["member"][:, column]
        assert member.sum() == 120 // t * t
        tasks = train["task"][member]
        assert set(tasks.tolist()) == set(range(t))
        assert all((tasks == i).sum() == 120 // t for i in range(t))
    assert set(train["target"].unique().tolist()) == {0.0, 1.0}
    bigger = DigitsTasksDataModule(task_grid=[1, 20], train_examples=120)
    assert bigger.pairs[:10] == data.pairs  # the first tasks of every model are the same


def test_targets_encode_the_pair_and_test_split_is_held_out():
    data = DigitsTasksDataModule(task_grid=[3])
    data.setup()
    test = data.datasets["test"].tensors
    assert len(test["task"]) > 0 and test["x"].shape[1] == data.num_features == 65
    assert torch.all(test["x"][:, -1] == 1.0)  # bias feature
    train_x = data.datasets["train"].tensors["x"]
    overlap = (test["x"][:, None, :] == train_x[None, :, :]).all(-1).any()
    assert not overlap


def test_too_few_examples_for_a_task_is_a_config_error():
    data = DigitsTasksDataModule(task_grid=[1], train_examples=1000)
    with pytest.raises(ConfigError, match=r"^data.train_examples=1000: task 0 \(\d vs \d\) has only \d+"):
        data.setup()


def write_idx(path: Path, array: torch.Tensor) -> None:
    """IDX format: zero bytes, type 0x08 (ubyte), number of dims, big-endian sizes, raw bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.dim()) + struct.pack(f">{array.dim()}I", *array.shape)
    path.write_bytes(header + array.to(torch.uint8).numpy().tobytes())


@pytest.fixture
def tiny_mnist(tmp_path: Path) -> Path:
    """Ten blob-like digit classes, 40 train and 10 test images each, in torchvision's raw layout."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    centers = torch.rand(10, 28, 28, generator=generator) * 200
    for prefix, per_class in (("train", 40), ("t10k", 10)):
        labels = torch.arange(10).repeat_interleave(per_class)
        images = centers[labels] + torch.rand(len(labels), 28, 28, generator=generator) * 55
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return tmp_path


@pytest.mark.slow
def test_mnist_config_runs_on_local_idx_files(tiny_mnist, tmp_path):
    from run import main

    out = tmp_path / "out"
    main([
        "fit", "--config", str(ROOT / "configs/linear/mnist.yaml"), f"--trainer.default_root_dir={out}",
        "--trainer.logger=false", f"--data.init_args.root={tiny_mnist}", "--data.init_args.download=false",
        "--data.init_args.task_grid=[1,2,4]", "--data.init_args.train_examples=60",
    ])  # fmt: skip
    rows = read_sweep_csv(out / "robustness" / "sweep_fit_epoch000.csv")
    assert {r.num_tasks for r in rows} == {1, 2, 4}
    assert {r.perturbation for r in rows} == {"gaussian_noise", "random_deletion", "magnitude_pruning"}
    clean = [r.value for r in rows if r.level == 0.0]
    assert max(clean) < 0.1  # the blobs are separable: the linear tasks are learned
    assert (out / "robustness" / "robustness_slope.png").exists()


def test_mnist_without_files_and_download_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=rf"^data.root='{tmp_path}': no MNIST IDX files"):
        MnistTasksDataModule(root=str(tmp_path), download=False)
