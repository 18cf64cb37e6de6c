"""Structural perturbations everywhere the entry-wise ones go: per-epoch sweeps and the sensitivity over training,
layer-wise groups, subsampled and adaptive trials, W&B curves read back from an offline run, the panel preview and
the dashboard's panels; one-line errors at fit start."""

from __future__ import annotations

import csv

import lightning as L
import pytest
import torch

from callbacks import PerturbationSweep
from cognitive_reserve import ConfigError, SweepGrid, read_sweep_csv, run_sweep
from cognitive_reserve.layout import MLP, ModelLayout, Projection
from lightning_modules import families
from tests.helpers.tiny_gpt2 import CountingSequences, TinyGPT2
from tests.helpers.unit_regression import ITEMS, Regression
from tracking.dashboard import ENTRYWISE, build_workspace

GROUPS = r"\.(attn|mlp)\."


@pytest.fixture(scope="module")
def structural_run(tmp_path_factory):
    """Two epochs of the tiny GPT-2: per-epoch head and neuron deletion, attention and MLP apart; at the end of
    training, activation faults (stuck offsets) and bit flips with adaptive trials."""
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    root = tmp_path_factory.mktemp("structural_run")
    per_epoch = PerturbationSweep(
        {
            "head_deletion": {"levels": [0.0, 0.5], "select": "norm"},
            "neuron_deletion": {"levels": [0.0, 0.25], "trials": 2, "scope": "per_layer"},
        },
        every_n_epochs=1, at_train_end=False, at_test=False, targets=["attn", "mlp"], groups=GROUPS, progress=False,
    )  # fmt: skip
    at_end = PerturbationSweep(
        {
            "activation_fault": {"levels": [0.0, 0.5], "trials": 3, "mode": "noise"},
            "bit_flip": {
                "levels": [0.0, 0.01, 0.5], "bits": "mantissa", "trials": {"ci_half_width": 10.0, "min": 2, "max": 12}
            },
        },
        at_test=False, targets=["attn", "mlp"], progress=False,
    )  # fmt: skip
    trainer = L.Trainer(
        max_epochs=2, limit_train_batches=2, default_root_dir=root, callbacks=[per_epoch, at_end],
        logger=WandbLogger(save_dir=str(root), project="structural-test", offline=True),
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    torch.manual_seed(0)
    trainer.fit(TinyGPT2(), datamodule=CountingSequences(val=64, batch_size=16))
    wandb.finish()
    return root


@pytest.mark.slow  # a Trainer with a W&B service
def test_per_epoch_structural_sweeps_build_the_sensitivity_over_training_per_group(structural_run):
    robustness = structural_run / "robustness"
    for epoch in (0, 1):
        rows = read_sweep_csv(robustness / f"sweep_train_epoch{epoch:03d}.csv")
        swept = {(r.group, r.perturbation) for r in rows}
        assert swept == {
            ("", "head_deletion"), ("", "neuron_deletion"), ("attn", "head_deletion"), ("mlp", "neuron_deletion")
        }  # fmt: skip
        heads = [r for r in rows if r.perturbation == "head_deletion" and r.level == 0.5]
        assert {r.trial for r in heads} == {0}  # by norm: deterministic, one trial
        assert [r.value for r in heads if not r.group] == [r.value for r in heads if r.group == "attn"]
    with (robustness / "sensitivity_train.csv").open() as file:
        assert {row["perturbation"] for row in csv.DictReader(file)} == {"head_deletion", "neuron_deletion"}
    assert (robustness / "sensitivity_train_groups.csv").exists() and (robustness / "sensitivity_train.png").exists()


@pytest.mark.slow  # a Trainer with a W&B service
def test_activation_faults_and_adaptive_bit_flips_at_the_end_of_training(structural_run):
    rows = read_sweep_csv(structural_run / "robustness" / "sweep_fit_epoch001.csv")
    faults = [r for r in rows if r.perturbation == "activation_fault" and r.level == 0.5]
    assert {r.trial for r in faults} == {0, 1, 2} and len({r.value for r in faults}) == 3
    flips = {p: {r.trial for r in rows if (r.perturbation, r.level) == ("bit_flip", p)} for p in (0.01, 0.5)}
    assert flips[0.5] == set(range(10))  # adaptive: settled at the first honest interval (10 trials), before max 12
    assert flips[0.01] == set(range(12))  # rare_events until 321 trials (docs/intervals.md): never settled, max 12


def test_subsampled_trials_of_a_structural_perturbation():
    """Neuron deletion on a model whose units of evaluation data can be scored alone: each trial scores a seeded
    half of them, and the weights come back bit for bit."""
    model = Regression()
    subject = model.subject()
    subject.layout = ModelLayout(mlps=(MLP(len(model.module.w), (Projection("w"),), ()),))  # w's entries: units
    before = model.module.w.detach().clone()
    rows = run_sweep(subject, [SweepGrid("neuron_deletion", [0.0, 0.5], trials=4, eval_fraction=0.5)], seed=0)
    damaged = [r for r in rows if r.level == 0.5]
    assert len(damaged) == 4 and all(r.eval_examples == len(model.x) * ITEMS // 2 for r in damaged)
    assert all(r.value > rows[0].value for r in damaged)
    assert torch.equal(model.module.w.detach(), before)


@pytest.mark.slow  # a Trainer with a W&B service
def test_structural_curves_reach_wandb_and_the_panel_preview(structural_run, tmp_path):
    from tests.helpers.wandb_offline import find_runs, read_run, read_run_until
    from tracking.preview import logged_perturbations, render

    (run_file,) = find_runs(structural_run)
    key = "robustness/train/tiny-gpt2/head_deletion/meanmetric/epoch001/mean"
    logged = read_run_until(run_file, lambda r: bool(r.series(key)))
    rows = read_sweep_csv(structural_run / "robustness" / "sweep_train_epoch001.csv")
    expected = {r.level: r.value for r in rows if r.perturbation == "head_deletion" and not r.group}
    assert logged.curve(key, "robustness/train/head_deletion/level") == pytest.approx(expected)
    run = read_run(run_file)
    assert logged_perturbations([run], "fit") == ["activation_fault", "bit_flip"]
    assert render([run], tmp_path / "panels.png", "fit", "meanmetric").read_bytes()[:4] == b"\x89PNG"


def test_dashboard_panels_of_the_perturbations_asked_for():
    assert ENTRYWISE == ("gaussian_noise", "random_deletion", "magnitude_pruning")
    workspace = build_workspace("e", "p", "gpt2-tiny", families()["gpt2"], perturbations=["head_deletion"])
    xs = {getattr(panel, "x", None) for section in workspace.sections for panel in section.panels}
    assert "robustness/test/head_deletion/level" in xs and "robustness/test/random_deletion/level" not in xs


def test_a_structural_perturbation_without_units_in_the_targets_stops_fit_before_training(tmp_path):
    sweep = PerturbationSweep({"neuron_deletion": {"levels": [0.5], "trials": 1}}, progress=False)  # targets: attn
    trainer = L.Trainer(max_epochs=1, default_root_dir=tmp_path, callbacks=[sweep], logger=False)
    with pytest.raises(ConfigError, match=r"^PerturbationSweep.targets='attn': neuron_deletion: the targets hold"):
        trainer.fit(TinyGPT2(), datamodule=CountingSequences())
    assert not list(tmp_path.rglob("*.ckpt"))
    with pytest.raises(ConfigError, match=r"^PerturbationSweep.trial_batch=4: activation_fault hooks the model"):
        PerturbationSweep({"activation_fault": {"levels": [0.5]}}, trial_batch=4)


def test_the_progress_total_counts_only_the_groups_a_perturbation_reaches():
    from cognitive_reserve.groups import run_grouped_sweep

    sweep = PerturbationSweep(
        {"head_deletion": {"levels": [0.0, 0.5], "trials": 2}, "random_deletion": {"levels": [0.3], "trials": 2}},
        targets=["attn", "mlp"], groups=GROUPS, progress=False,
    )  # fmt: skip
    (subject,) = TinyGPT2().robustness_subjects([])
    subject.targets, subject.evaluate = ["attn", "mlp"], lambda: {"loss": 1.0}
    rows = run_grouped_sweep(subject, sweep.grids, 0, GROUPS)
    # all targets: 3 head + 2 random trials; attn: the same 5; mlp: the 2 random ones (no head there)
    assert sweep._planned(subject) == len({(r.group, r.perturbation, r.level, r.trial) for r in rows}) == 12
