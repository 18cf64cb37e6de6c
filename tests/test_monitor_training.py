"""All three monitors on a real tiny HF GPT-2 trained by a real Trainer, read back from disk and from W&B."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger

from callbacks.perturbation_sweep import PerturbationSweep
from callbacks.spectral_monitor import SpectralMonitor
from callbacks.weight_norms import WeightNorms
from cognitive_reserve import read_sweep_csv
from cognitive_reserve.history import HistoryCsv
from tests.helpers.tiny_gpt2 import CountingSequences, TinyGPT2
from tests.helpers.wandb_offline import find_runs, read_run

pytestmark = pytest.mark.slow  # end to end: every test reads one real training run with every callback

EPOCHS, STEPS_PER_EPOCH, EVERY = 3, 6, 2  # 96 training sequences in batches of 16


class WeightsAt(L.Callback):
    """Copies every parameter at validation epoch end; placed before or after the sweep callback."""

    def __init__(self) -> None:
        self.by_epoch: dict[int, dict[str, torch.Tensor]] = {}

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.by_epoch[trainer.current_epoch] = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("monitored")
    before, after = WeightsAt(), WeightsAt()
    spectral = SpectralMonitor(every_n_steps=EVERY, spectrum_every_n_steps=3 * EVERY, top_k=3, histogram=True)
    norms = WeightNorms(every_n_steps=EVERY)
    sweep = PerturbationSweep(
        {"magnitude_pruning": {"levels": [0.0, 0.5, 0.9]}, "random_deletion": {"levels": [0.0, 0.3], "trials": 2}},
        every_n_epochs=1, at_train_end=False, at_test=False, max_eval_samples=16, progress=False,
    )  # fmt: skip
    checkpoints = ModelCheckpoint(
        dirpath=root / "checkpoints", filename="e{epoch}", save_top_k=-1, auto_insert_metric_name=False
    )
    logger = WandbLogger(save_dir=str(root), project="monitor-test", offline=True)
    trainer = L.Trainer(
        max_epochs=EPOCHS, default_root_dir=root, logger=logger, log_every_n_steps=1, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[before, sweep, after, spectral, norms, checkpoints],
    )  # fmt: skip
    L.seed_everything(0)
    model = TinyGPT2()
    trainer.fit(model, datamodule=CountingSequences())
    logger.experiment.finish()
    return SimpleNamespace(root=root, model=model, before=before, after=after, spectral=spectral)


def history(root: Path, monitor: str) -> dict[tuple[int, str, str], float]:
    return {(r.step, r.name, r.quantity): r.value for r in HistoryCsv(root / "monitors" / f"{monitor}.csv").read()}


def test_per_epoch_sweeps_leave_weights_bitwise_and_checkpoints_hold_the_trained_weights(trained):
    root, before, after = trained.root, trained.before, trained.after
    assert sorted(after.by_epoch) == list(range(EPOCHS))
    for epoch in range(EPOCHS):
        for name, value in before.by_epoch[epoch].items():
            assert torch.equal(after.by_epoch[epoch][name], value), (epoch, name)
        saved = torch.load(root / "checkpoints" / f"e{epoch}.ckpt", weights_only=True)["state_dict"]
        assert saved.keys() == before.by_epoch[epoch].keys()
        for name, value in saved.items():
            assert torch.equal(value, before.by_epoch[epoch][name]), (epoch, name)
    rows = read_sweep_csv(root / "robustness" / "sweep_train_epoch001.csv")
    pruned = [r.value for r in rows if r.perturbation == "magnitude_pruning" and r.level == 0.9]
    clean = [r.value for r in rows if r.level == 0.0]
    assert pruned[0] > max(clean)  # the sweep really damaged the model (its weights are back: see above)


def test_power_iteration_agrees_with_svdvals_on_every_monitored_matrix(trained):
    root, spectral = trained.root, trained.spectral
    values = history(root, "spectral")
    last = EPOCHS * STEPS_PER_EPOCH
    steps = sorted({step for step, _, _ in values})
    assert steps == list(range(0, last + 1, EVERY))
    assert spectral.method == "power" and len(spectral._bases) == 8  # warm starts were used after step 0
    for matrix in spectral.matrices:  # the weights have not changed since the last measurement
        exact = torch.linalg.svdvals(matrix.value())
        assert values[(last, matrix.name, "sigma_max")] == pytest.approx(exact[0].item(), rel=1e-3)
        for i in range(3):
            assert values[(last, matrix.name, f"sigma_{i + 1}")] == pytest.approx(exact[i].item(), rel=1e-6)
        assert values[(last, matrix.name, "fro2")] == pytest.approx(exact.pow(2).sum().item(), rel=1e-5)
        for step in range(0, last + 1, 3 * EVERY):  # also along the way: the exact spectrum of the same step
            power, svd = values[(step, matrix.name, "sigma_max")], values[(step, matrix.name, "sigma_1")]
            assert power == pytest.approx(svd, rel=1e-3) and power <= svd * (1 + 1e-6)


def test_weight_norms_are_sums_of_squares_per_layer_and_total(trained):
    root, model = trained.root, trained.model
    values = history(root, "weight_norms")
    last = EPOCHS * STEPS_PER_EPOCH
    by_layer: dict[str, float] = defaultdict(float)
    for name, param in model.named_parameters():
        if "attn" in name:
            by_layer[name.split(".")[2] + "." + name.split(".")[3]] += param.detach().double().pow(2).sum().item()
    assert set(by_layer) == {"h.0", "h.1"}
    for layer, expected in by_layer.items():
        assert values[(last, layer, "sum_sq")] == pytest.approx(expected, rel=1e-9)
    assert values[(last, "total", "sum_sq")] == pytest.approx(sum(by_layer.values()), rel=1e-9)


def test_wandb_run_holds_spectral_series_weight_norms_and_the_per_epoch_table(trained):
    root = trained.root
    [path] = find_runs(root)
    run = read_run(path)
    measurements = EPOCHS * STEPS_PER_EPOCH // EVERY + 1
    for key in ("spectral/h.0.attn.c_attn.q/sigma_max", "spectral/h.1.attn.c_proj/fro2", "weight_norms/total/sum_sq"):
        assert len(run.series(key)) == measurements, key
    assert len(run.series("spectral/h.0.attn.c_attn.v/sigma_3")) == EPOCHS * STEPS_PER_EPOCH // (3 * EVERY) + 1
    assert run.series("spectral/h.0.attn.c_attn.k/spectrum/_type")[0] == "histogram"
    assert run.series("weight_norms/h.1/sum_sq")
    tables = run.series("robustness/train/per_epoch/table/path")
    assert len(tables) == EPOCHS  # the whole table again after every epoch's sweep
    table = json.loads((path.parent / "files" / tables[-1]).read_text())
    epoch_column = table["columns"].index("epoch")
    assert sorted({row[epoch_column] for row in table["data"]}) == list(range(EPOCHS))
    logged = run.logged_keys()
    for epoch in range(EPOCHS):  # one curve per epoch, keyed by the level
        curve = run.curve(f"robustness/train/tiny-gpt2/magnitude_pruning/meanmetric/epoch{epoch:03d}/mean",
                          "robustness/train/magnitude_pruning/level")  # fmt: skip
        assert len(curve) > 1, epoch
    assert "robustness/train/per_epoch/heatmap/filenames" in logged
    assert "robustness/train/tiny-gpt2/magnitude_pruning/meanmetric/auc" in logged
    with_epoch = [row for row in run.history if "robustness/train/tiny-gpt2/magnitude_pruning/meanmetric/auc" in row]
    assert [row["epoch"] for row in with_epoch] == list(range(EPOCHS))


def test_per_epoch_view_and_monitor_histories_are_on_disk(trained):
    root = trained.root
    with (root / "robustness" / "sensitivity_train.csv").open() as file:
        epochs = sorted({int(r["epoch"]) for r in csv.DictReader(file)})
    assert epochs == list(range(EPOCHS))
    for name in ("robustness/sensitivity_train.png", "robustness/sensitivity_train_heatmap.png",
                 "monitors/spectral.png", "monitors/weight_norms.png"):  # fmt: skip
        assert (root / name).read_bytes()[:4] == b"\x89PNG", name
