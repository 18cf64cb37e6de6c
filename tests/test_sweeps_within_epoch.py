"""Sweeps during training in a real Trainer that validates twice per epoch (``val_check_interval``): every sweep
keeps its own file, named by epoch and step, the sensitivity view runs over steps, and a re-run finds its own
sweep (issue 28, item 3). A run that validates once per epoch keeps the contract's names."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L
import torch
from torch import nn

from callbacks import PerturbationSweep
from cognitive_reserve import read_sweep_csv
from tests.helpers.blobs import BlobClassifier, Blobs

STEPS_PER_EPOCH = 10  # 300 blobs in training batches of 32
STEPPED = [
    "sweep_train_epoch000_step000005.csv", "sweep_train_epoch000_step000010.csv",
    "sweep_train_epoch001_step000015.csv", "sweep_train_epoch001_step000020.csv",
]  # fmt: skip


class TrainedBlobs(BlobClassifier):
    """The blob classifier, trained (so every sweep sees other weights)."""

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        pass

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05)


def fit(root: Path, val_check_interval: int | float) -> None:
    """Two epochs with a random-deletion sweep after every validation (seeded: a second call repeats the first)."""
    L.seed_everything(0, verbose=False)
    sweep = PerturbationSweep(
        {"random_deletion": {"levels": [0.0, 0.5], "trials": 3}}, every_n_epochs=1, at_train_end=False,
        at_test=False, max_eval_samples=60, progress=False,
    )  # fmt: skip
    trainer = L.Trainer(
        max_epochs=2, val_check_interval=val_check_interval, limit_val_batches=1, default_root_dir=root,
        logger=False, callbacks=[sweep], enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(TrainedBlobs(), datamodule=Blobs())


def sweep_files(root: Path) -> list[str]:
    return sorted(path.name for path in (root / "robustness").glob("sweep_train_*.csv") if "_summary" not in path.name)


def sensitivity_rows(root: Path) -> list[dict[str, str]]:
    with (root / "robustness" / "sensitivity_train.csv").open(newline="") as file:
        return list(csv.DictReader(file))


def test_two_validations_per_epoch_keep_two_sweeps_named_by_step_and_a_rerun_finds_its_own(tmp_path):
    fit(tmp_path, val_check_interval=5)
    robustness = tmp_path / "robustness"
    assert sweep_files(tmp_path) == STEPPED
    assert not list(robustness.glob("*.stale-*")), "a sweep was moved aside as another sweep's"
    for name in STEPPED:
        epoch = int(name.split("epoch")[1][:3])
        assert {row.epoch for row in read_sweep_csv(robustness / name)} == {epoch}
        assert (robustness / name.replace(".csv", "_summary.csv")).is_file()
        assert (robustness / name.replace(".csv", ".png")).is_file()
    rows = sensitivity_rows(tmp_path)
    assert list(rows[0])[:3] == ["epoch", "step", "model"]
    assert sorted({(int(r["epoch"]), int(r["step"])) for r in rows}) == [(0, 5), (0, 10), (1, 15), (1, 20)]
    assert len(rows) == 4 * 2  # every sweep's two levels
    assert (robustness / "sensitivity_train_heatmap.png").stat().st_size > 0

    # A run killed during the step-5 sweep, run again: that sweep finds its own CSV (same weights, same name) and
    # reuses the trials it holds (the marked value survives); no sweep is moved aside.
    first = robustness / STEPPED[0]
    whole = read_sweep_csv(first)
    lines = first.read_text().splitlines()
    header, kept = lines[0], lines[1:3]
    value = header.split(",").index("value")
    marked = kept[0].split(",")
    marked[value] = "123.0"
    first.write_text("\n".join([header, ",".join(marked), kept[1]]) + "\n")
    fit(tmp_path, val_check_interval=5)
    again = read_sweep_csv(first)
    assert again[0].value == 123.0 and len(again) == len(whole)
    assert [r.value for r in again[1:]] == [r.value for r in whole[1:]]
    assert sweep_files(tmp_path) == STEPPED and not list(robustness.glob("*.stale-*"))


def test_one_validation_per_epoch_keeps_the_epoch_names_and_axis(tmp_path):
    fit(tmp_path, val_check_interval=1.0)
    assert sweep_files(tmp_path) == ["sweep_train_epoch000.csv", "sweep_train_epoch001.csv"]
    rows = sensitivity_rows(tmp_path)
    assert sorted({(int(r["epoch"]), int(r["step"])) for r in rows}) == [(0, STEPS_PER_EPOCH), (1, 2 * STEPS_PER_EPOCH)]
