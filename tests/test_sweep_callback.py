"""PerturbationSweep inside a real Trainer: any SweepableMixin module, test-stage sweeps, weights untouched."""

from __future__ import annotations

import dataclasses
import shutil

import lightning as L
import pytest
import torch
import torchmetrics
from torch import nn

from callbacks import PerturbationSweep
from cognitive_reserve import ConfigError, read_sweep_csv
from lightning_modules import SweepableMixin
from tests.helpers.blobs import Blobs
from tests.helpers.cli import ROOT


class BlobClassifier(SweepableMixin, L.LightningModule):
    """The manual's 'your own model' example (docs/extending.md), on separable blobs."""

    robustness_targets = r"body\..*weight"
    robustness_name = "blobs"

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.05)

    def robustness_metric(self):
        return torchmetrics.classification.MulticlassAccuracy(num_classes=3, average="micro")

    def robustness_update(self, metric, batch):
        x, y = batch
        metric.update(self(x).argmax(-1), y)


class Snapshot(L.Callback):
    """Records the weights when training ends, before the sweep callback (registered after it) runs."""

    def on_train_end(self, trainer, pl_module):
        self.weights = {k: v.clone() for k, v in pl_module.state_dict().items()}


def test_any_sweepable_module_gets_swept_and_weights_are_untouched(tmp_path):
    snapshot = Snapshot()
    sweep = PerturbationSweep(
        {"random_deletion": {"levels": [0.0, 0.5, 0.9], "trials": 5}, "magnitude_pruning": {"levels": [0.0, 0.5]}},
        max_eval_samples=120,
        progress=False,
    )
    trainer = L.Trainer(
        max_epochs=3, default_root_dir=tmp_path, logger=False, callbacks=[snapshot, sweep],
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    model = BlobClassifier()
    trainer.fit(model, datamodule=Blobs())
    for key, value in model.state_dict().items():
        assert torch.equal(value, snapshot.weights[key]), key
    checkpoint = torch.load(next(tmp_path.rglob("*.ckpt")), weights_only=True)
    for key, value in checkpoint["state_dict"].items():
        assert torch.equal(value, snapshot.weights[key]), key
    rows = read_sweep_csv(tmp_path / "robustness" / "sweep_fit_epoch002.csv")
    clean = [r.value for r in rows if r.level == 0.0]
    heavy = [r.value for r in rows if r.perturbation == "random_deletion" and r.level == 0.9]
    assert clean and min(clean) > 0.95 and sum(heavy) / len(heavy) < 0.9
    assert {(r.model, r.metric) for r in rows} == {("blobs", "multiclassaccuracy")}


def test_unsweepable_module_is_rejected_before_training(tmp_path):
    class Plain(L.LightningModule):  # trains, but has no sweep hook
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(4, 3)

        def training_step(self, batch, batch_idx):
            return self.layer(batch[0]).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    trainer = L.Trainer(max_epochs=1, default_root_dir=tmp_path, logger=False, callbacks=[
        PerturbationSweep({"gaussian_noise": {"levels": [0.1]}})
    ])  # fmt: skip
    with pytest.raises(ConfigError, match=r"^model='Plain': is not sweepable"):
        trainer.fit(Plain(), datamodule=Blobs())


class NoTraining(L.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        raise AssertionError("training started")


class InPlaceOnlyBlobClassifier(BlobClassifier):
    """Hand-written subjects without stacked scoring (``SweepableMixin``'s own get it through vmap)."""

    def robustness_subjects(self, batches):
        return [dataclasses.replace(s, evaluate_stack=None) for s in super().robustness_subjects(batches)]


def test_trial_batch_on_a_model_without_stacked_scoring_is_refused_before_training(tmp_path):
    sweep = PerturbationSweep({"gaussian_noise": {"levels": [0.1]}}, trial_batch=8)
    trainer = L.Trainer(
        max_epochs=1, default_root_dir=tmp_path, logger=False, callbacks=[sweep, NoTraining()],
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"^PerturbationSweep.trial_batch=8: model blobs scores one trial at a time"):
        trainer.fit(InPlaceOnlyBlobClassifier(), datamodule=Blobs())


@pytest.mark.slow
def test_run_py_test_sweeps_a_checkpoint(tmp_path):
    """`run.py test --ckpt_path` restores the trained linear models and sweeps the test split."""
    from run import main

    config = str(ROOT / "configs/linear/digits.yaml")
    fit_dir, test_dir = tmp_path / "fit", tmp_path / "test"
    common = ["--trainer.logger=false", "--data.init_args.task_grid=[1,5]"]
    main(["fit", "--config", config, f"--trainer.default_root_dir={fit_dir}", *common])
    checkpoint = next(fit_dir.rglob("*.ckpt"))
    main(["test", "--config", config, f"--trainer.default_root_dir={test_dir}", f"--ckpt_path={checkpoint}", *common])
    fit_rows = read_sweep_csv(fit_dir / "robustness" / "sweep_fit_epoch000.csv")
    test_rows = read_sweep_csv(test_dir / "robustness" / "sweep_test_epoch000.csv")
    assert [(r.model, r.perturbation, r.level, r.trial, r.value) for r in test_rows] == [
        (r.model, r.perturbation, r.level, r.trial, r.value) for r in fit_rows
    ]  # the fit-end sweep used the test split too: same models, same seeds, same numbers
    assert {r.stage for r in test_rows} == {"test"}
    sweep_csv = test_dir / "robustness" / "sweep_test_epoch000.csv"
    before = sweep_csv.read_bytes()
    main(["test", "--config", config, f"--trainer.default_root_dir={test_dir}", f"--ckpt_path={checkpoint}", *common])
    assert sweep_csv.read_bytes() == before  # the same sweep again: every trial reused, none duplicated


@pytest.mark.slow
def test_a_test_sweep_is_named_after_the_epoch_of_its_checkpoint(tmp_path):
    """Checkpoints of epochs 0 and 2 tested into one directory: two tables side by side, epochs in rows."""
    from run import main

    config = str(ROOT / "configs/linear/digits.yaml")
    test_dir = tmp_path / "test"
    common = ["--config", config, "--trainer.logger=false", "--data.init_args.task_grid=[2]"]
    for epoch in (0, 2):
        fit_dir = tmp_path / f"fit{epoch}"
        main(["fit", *common, f"--trainer.default_root_dir={fit_dir}", f"--trainer.max_epochs={epoch + 1}"])
        checkpoint = fit_dir / "checkpoints" / "last.ckpt"
        main(["test", *common, f"--trainer.default_root_dir={test_dir}", f"--ckpt_path={checkpoint}"])
        assert {row.epoch for row in read_sweep_csv(test_dir / "robustness" / f"sweep_test_epoch{epoch:03d}.csv")} == {
            epoch
        }
    assert sorted(p.name for p in (test_dir / "robustness").glob("sweep_test_epoch???.csv")) == [
        "sweep_test_epoch000.csv", "sweep_test_epoch002.csv"
    ]  # fmt: skip


@pytest.mark.slow
def test_a_different_model_never_reuses_an_old_sweep_file(tmp_path):
    """Same output directory, other weights: the old CSV is moved aside, not mixed in or deleted. (A second fit
    into a directory that holds a checkpoint is refused: here the first run's checkpoints are gone.)"""
    from run import main

    config = str(ROOT / "configs/linear/digits.yaml")
    for ridge in ("1.0", "5.0"):
        shutil.rmtree(tmp_path / "checkpoints", ignore_errors=True)
        main(["fit", "--config", config, f"--trainer.default_root_dir={tmp_path}", "--trainer.logger=false",
              "--data.init_args.task_grid=[2]", f"--model.init_args.ridge={ridge}"])  # fmt: skip
    robustness = tmp_path / "robustness"
    old, new = robustness / "sweep_fit_epoch000.csv.stale-1", robustness / "sweep_fit_epoch000.csv"
    assert old.exists() and new.exists()
    assert read_sweep_csv(old) != read_sweep_csv(new) and len(read_sweep_csv(old)) == len(read_sweep_csv(new))
