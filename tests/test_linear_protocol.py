"""The linear experiment as the paper ran it: unit-norm task vectors, MSE against c_iᵀx or the label,
the aligned and equal-data-per-task controls, and the robustness-slope outputs."""

from __future__ import annotations

import csv
import re
import warnings

import lightning as L
import pytest
import torch

from callbacks import RobustnessSlopeReport, WeightNorms
from cognitive_reserve import ConfigError, SweepGrid, read_sweep_csv, run_sweep
from cognitive_reserve.stats import summarize
from cognitive_reserve.theory import robustness_slope, svd_solution, unit_columns
from datamodules import DigitsTasksDataModule
from lightning_modules import LinearMultitaskRegression
from tests.helpers.configs import DIGITS, config_args
from tests.helpers.stats_checks import assert_monte_carlo_matches_closed_form

GRIDS = [
    SweepGrid("gaussian_noise", [0.0, 0.05, 0.1, 0.2], trials=40),
    SweepGrid("random_deletion", [0.0, 0.2, 0.5, 0.8, 1.0], trials=40),
]


def fit(model: LinearMultitaskRegression, data, tmp_path, epochs: int = 1, callbacks=()) -> L.Trainer:
    trainer = L.Trainer(
        max_epochs=epochs, default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, enable_checkpointing=False, callbacks=list(callbacks),
    )  # fmt: skip
    trainer.fit(model, datamodule=data)
    return trainer


def test_unit_norm_task_vectors_feed_the_svd_solution_and_the_slope(tmp_path):
    data = DigitsTasksDataModule(task_grid=[1, 2, 6], train_examples=120)
    model = LinearMultitaskRegression(k=2)
    norms = WeightNorms(targets=r"models\.T\d+\.c$", layer_pattern=r"T\d+", every_n_steps=1)
    fit(model, data, tmp_path, callbacks=[RobustnessSlopeReport(), norms])
    for t in (1, 2, 6):
        learned = model.models[f"T{t}"].learned_task_vectors()
        used = model.task_vectors(t)
        assert torch.allclose(used.norm(dim=0), torch.ones(t, dtype=torch.float64))
        assert torch.allclose(used, learned / learned.norm(dim=0))
        w, gamma = svd_solution(used, 2)
        swept = model.representation(t)
        assert torch.allclose(swept.w.double().T @ swept.gamma.double(), w.T @ gamma, atol=1e-6)
    with (tmp_path / "robustness" / "robustness_slope.csv").open() as file:
        rows = {int(r["num_tasks"]): r for r in csv.DictReader(file)}
    assert float(rows[1]["robustness_slope"]) == pytest.approx(1.0)  # T ≤ k: R = mean ‖c_i‖² = 1
    assert float(rows[2]["robustness_slope"]) == pytest.approx(1.0)
    raw = model.models["T6"].learned_task_vectors()
    assert float(rows[6]["robustness_slope"]) == pytest.approx(robustness_slope(unit_columns(raw), 2))
    assert float(rows[6]["robustness_slope_unnormalized"]) == pytest.approx(robustness_slope(raw, 2))
    assert float(rows[6]["mean_task_vector_sq_norm"]) == pytest.approx(float((raw**2).sum() / 6))
    assert (tmp_path / "robustness" / "robustness_slope.png").stat().st_size > 0
    with (tmp_path / "monitors" / "weight_norms.csv").open() as file:
        last = {r["name"]: float(r["value"]) for r in csv.DictReader(file) if int(r["step"]) == 1}
    assert last == pytest.approx({"T1": 1.0, "T2": 2.0, "T6": 6.0, "total": 9.0})  # the monitors see the unit-norm C


def test_sgd_solver_normalises_each_task_vector_of_its_own_factors(tmp_path):
    data = DigitsTasksDataModule(task_grid=[3], train_examples=90, batch_size=1024)
    model = LinearMultitaskRegression(k=2, solver="sgd", lr=0.05, init_seed=1)
    fit(model, data, tmp_path, epochs=5)
    trained = model.models["T3"]
    raw = (trained.w.T @ trained.gamma).detach().double()
    swept = model.representation(3)
    product = swept.w.double().T @ swept.gamma.double()
    assert torch.allclose(swept.w @ swept.w.T, torch.eye(2), atol=1e-5)
    assert torch.allclose(product, raw / raw.norm(dim=0), atol=1e-5)


@pytest.mark.parametrize("target", ["task_vector", "label"])
def test_monte_carlo_matches_both_closed_forms_for_both_targets(target, tmp_path):
    data = DigitsTasksDataModule(task_grid=[1, 6], train_examples=120)
    model = LinearMultitaskRegression(k=2, target=target)
    fit(model, data, tmp_path)
    batches = list(data.test_dataloader())
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no "Converting a tensor with requires_grad=True"
        summaries = summarize(
            row for subject in model.robustness_subjects(batches) for row in run_sweep(subject, GRIDS, seed=0)
        )
    assert {s.metric for s in summaries} == {f"mse_{target}"}
    assert_monte_carlo_matches_closed_form(summaries)
    clean = {s.num_tasks: s.mean for s in summaries if s.perturbation == "gaussian_noise" and s.level == 0.0}
    if target == "task_vector":  # T = 1 ≤ k: the rank-k model is exactly c_1; T = 6 > k: it is not
        assert clean[1] == pytest.approx(0.0, abs=1e-10) and clean[6] > 1e-3
    else:
        assert clean[1] > 0.01  # against 0/1 labels (of a rescaled c_1): never exact


def test_task_vector_target_is_the_clean_prediction_of_the_unit_norm_vector(tmp_path):
    data = DigitsTasksDataModule(task_grid=[6], train_examples=120)
    model = LinearMultitaskRegression(k=2)
    fit(model, data, tmp_path)
    (subject,) = model.robustness_subjects(list(data.test_dataloader()))
    test = data.datasets["test"].tensors
    keep = test["task"] < 6
    x, task = test["x"][keep].double(), test["task"][keep]
    c = model.task_vectors(6)
    w, gamma = (p.detach().double() for p in (subject.module.w, subject.module.gamma))
    error = ((x @ w.T @ gamma).gather(1, task[:, None]).squeeze(1) - (x * c.T[task]).sum(1)) ** 2
    by_hand = torch.stack([error[task == i].mean() for i in range(6)]).mean()
    with torch.no_grad():
        assert subject.evaluate()["mse_task_vector"] == pytest.approx(float(by_hand), rel=1e-5)


def test_bad_target_is_a_config_error():
    with pytest.raises(ConfigError, match=r"model\.target"):
        LinearMultitaskRegression(target="labels")
    with pytest.raises(ConfigError, match=r"model\.normalize_task_vectors"):
        LinearMultitaskRegression(normalize_task_vectors="yes")


def test_aligned_control_gives_every_task_the_same_pair_and_fresh_examples():
    data = DigitsTasksDataModule(task_grid=[1, 4, 10], train_examples=200, aligned_tasks=True)
    data.setup()
    assert len(set(data.pairs)) == 1 and len(data.pairs) == 10
    train = data.datasets["train"].tensors
    for column, t in enumerate(data.task_grid):
        member = train["member"][:, column]
        x, task = train["x"][member], train["task"][member]
        assert train["member"][member].sum(1).eq(1).all()  # an item belongs to one model only
        assert torch.bincount(task, minlength=t).tolist() == [200 // t] * t
        assert len(torch.unique(x, dim=0)) == len(x)  # tasks of one model never share an example
    test = data.datasets["test"].tensors
    first, second = (test["x"][test["task"] == i] for i in (0, 1))
    assert torch.equal(first, second)  # every task is scored on the same pair's test items


def test_examples_per_task_fixes_each_task_share_whatever_the_number_of_tasks():
    data = DigitsTasksDataModule(task_grid=[1, 5], examples_per_task=30)
    data.setup()
    train = data.datasets["train"].tensors
    for column, t in enumerate(data.task_grid):
        task = train["task"][train["member"][:, column]]
        assert torch.bincount(task, minlength=t).tolist() == [30] * t


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"task_grid": [1, 20], "examples_per_task": 250}, "data.examples_per_task"),
        ({"task_grid": [1, 20], "examples_per_task": 20, "aligned_tasks": True}, "data.examples_per_task"),
        ({"task_grid": [1, 5], "examples_per_task": 0}, "data.examples_per_task"),
        ({"task_grid": [1], "aligned_tasks": "no"}, "data.aligned_tasks"),
    ],
)
def test_too_little_data_for_a_control_is_a_config_error(kwargs, field):
    with pytest.raises(ConfigError, match=re.escape(field)):
        DigitsTasksDataModule(**kwargs).setup()


def test_reference_options_reproduce_the_unnormalised_label_sweep(tmp_path):
    """normalize_task_vectors=false with target=label is the pre-issue-12 model: its sweep scores the label."""
    data = DigitsTasksDataModule(task_grid=[1, 4], train_examples=80)
    model = LinearMultitaskRegression(k=2, normalize_task_vectors=False, target="label")
    fit(model, data, tmp_path)
    assert torch.equal(model.task_vectors(4), model.models["T4"].c.detach().double())
    (_, subject) = model.robustness_subjects(list(data.test_dataloader()))
    test = data.datasets["test"].tensors
    keep = test["task"] < 4
    with torch.no_grad():
        prediction = subject.module(test["x"][keep]).gather(1, test["task"][keep][:, None]).squeeze(1)
        error = (prediction.double() - test["target"][keep].double()) ** 2
        by_hand = torch.stack([error[test["task"][keep] == i].mean() for i in range(4)]).mean()
        assert subject.evaluate()["mse_label"] == pytest.approx(float(by_hand), rel=1e-6)


@pytest.mark.parametrize("config", ["digits_aligned.yaml", "digits_equal_per_task.yaml"])
def test_control_configs_run_through_the_cli(config, tmp_path):
    from run import main

    main([
        "fit", *config_args([DIGITS, DIGITS.with_name(config)]), f"--trainer.default_root_dir={tmp_path}",
        "--trainer.logger=false", "--data.init_args.task_grid=[1,5,10]",
    ])  # fmt: skip
    rows = read_sweep_csv(tmp_path / "robustness" / "sweep_fit_epoch000.csv")
    assert {r.metric for r in rows} == {"mse_task_vector"} and {r.num_tasks for r in rows} == {1, 5, 10}
    with (tmp_path / "robustness" / "robustness_slope.csv").open() as file:
        header = next(csv.reader(file))
    assert header[:2] == ["num_tasks", "robustness_slope"] and "robustness_slope_unnormalized" in header
