"""Theorem 2.7's Gaussian tasks (data module, R(T) over draws, noise thresholds), Figure 2's toy example and
the linear reporting commands."""

from __future__ import annotations

import csv
import math
import re

import lightning as L
import pytest
import torch

from cognitive_reserve import SweepGrid, run_sweep
from cognitive_reserve.intervals import HONEST_TRIALS
from cognitive_reserve.io import SweepCsvWriter, write_records
from cognitive_reserve.sweep import SweepRow
from cognitive_reserve.theory import (
    gaussian_slope_draws,
    gaussian_task_vectors,
    population_noise_threshold,
    robustness_slope,
    svd_solution,
)
from datamodules import GaussianTasksDataModule
from lightning_modules import LinearMultitaskRegression
from run_reports import figure2, slope_comparison, task_crossover
from run_reports.command import run_command
from tests.helpers.cli import ROOT


def test_targets_are_the_drawn_task_vectors_applied_to_gaussian_inputs():
    data = GaussianTasksDataModule(input_dim=8, task_grid=[1, 3], examples_per_task=50, eval_examples_per_task=40)
    data.setup()
    c = gaussian_task_vectors(8, 3, seed=0)
    assert torch.equal(data.task_vectors, c)
    for split in ("train", "val", "test"):
        items = data.datasets[split].tensors
        expected = (items["x"].double() * c.T[items["task"]]).sum(1)
        assert torch.allclose(items["target"].double(), expected, atol=1e-5)
    member = data.datasets["train"].tensors["member"]
    assert member[:, 0].sum() == 50 and member[:, 1].sum() == 150  # nested: T = 3 takes tasks 0, 1, 2
    assert not torch.equal(data.datasets["val"].tensors["x"], data.datasets["test"].tensors["x"])


def test_label_noise_adds_independent_noise_of_the_given_scale():
    data = GaussianTasksDataModule(input_dim=4, task_grid=[2], examples_per_task=4000, label_noise=0.5)
    data.setup()
    items = data.datasets["train"].tensors
    residual = items["target"].double() - (items["x"].double() * data.task_vectors.T[items["task"]]).sum(1)
    assert float(residual.std()) == pytest.approx(0.5, rel=0.05)


def test_svd_solver_recovers_the_unit_norm_task_vectors(tmp_path):
    data = GaussianTasksDataModule(input_dim=12, task_grid=[1, 6], examples_per_task=200)
    model = LinearMultitaskRegression(k=2, ridge=1e-6)
    L.Trainer(max_epochs=1, default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
              enable_checkpointing=False, num_sanity_val_steps=0).fit(model, datamodule=data)  # fmt: skip
    truth = data.task_vectors[:, :6]
    assert torch.allclose(model.task_vectors(6), truth / truth.norm(dim=0), atol=1e-4)


def population_mse(c: torch.Tensor, k: int, sigma: float, draws: int, seed: int = 0) -> torch.Tensor:
    """Monte Carlo over noise N of the task-averaged ‖(W+N)ᵀγ_i − c_i‖² (= E_x MSE for x ~ N(0, I_d))."""
    w, gamma = svd_solution(c, k)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(draws, *w.shape, generator=generator, dtype=torch.float64) * sigma
    approximations = (w + noise).transpose(1, 2) @ gamma  # draws × d × T
    return ((approximations - c) ** 2).sum(1).mean(1)


def test_population_noise_threshold_is_where_monte_carlo_curves_cross():
    c, k = gaussian_task_vectors(d=16, num_tasks=8, seed=1), 2
    d, t = c.shape
    threshold = population_noise_threshold(c, k)
    assert 0 < threshold < math.inf
    singular_sq = torch.linalg.svdvals(c) ** 2
    for sigma in (0.0, threshold):  # the closed form MSE_T(σ) = Σ_{i>k} σ_i²/T + σ² d R(T) against Monte Carlo
        values = population_mse(c, k, sigma, draws=4000)
        closed = float(singular_sq[k:].sum()) / t + sigma**2 * d * robustness_slope(c, k)
        half = 4 * float(values.std()) / math.sqrt(len(values)) + 1e-12
        assert float(values.mean()) == pytest.approx(closed, abs=half)
    for factor, t_wins in ((0.7, False), (1.4, True)):
        sigma = factor * threshold
        many, one = population_mse(c, k, sigma, 4000).mean(), population_mse(c[:, :1], k, sigma, 4000).mean()
        assert bool(many < one) == t_wins


def test_slope_draws_summarise_independent_draws():
    rows = gaussian_slope_draws(d=216, k=1, task_grid=[1, 2, 4, 6], num_draws=5, seed=3)
    assert [r.num_tasks for r in rows] == [1, 2, 4, 6]
    direct = [robustness_slope(gaussian_task_vectors(216, 6, 3 + j)[:, :4], 1) for j in range(5)]
    assert rows[2].mean == pytest.approx(sum(direct) / 5)
    assert rows[2].ci_low < rows[2].mean < rows[2].ci_high
    assert [r.fraction_decreasing for r in rows] == [1.0, 1.0, 1.0, None]  # d = T³: R falls at every step
    assert rows[0].threshold_median is None and rows[3].threshold_median > 0


def noise_rows(model: str, tasks: int, clean: float, slope: float, levels: list[float]) -> list[SweepRow]:
    return [
        SweepRow(
            model,
            tasks,
            "gaussian_noise",
            s,
            trial,
            trial,
            "mse_task_vector",
            clean + slope * s**2 + 0.01 * (trial - 1),
            clean + slope * s**2,
        )
        for s in levels
        for trial in range(3)
    ]


def test_closed_form_threshold_solves_the_two_quadratics():
    levels = [0.0, 0.1, 0.2, 0.3]
    one, many = noise_rows("T1", 1, 0.0, 64.0, levels), noise_rows("T8", 8, 0.5, 32.0, levels)
    assert task_crossover.closed_form_threshold(one, many) == pytest.approx(math.sqrt(0.5 / 32))
    (record,) = task_crossover.crossovers(one + many)
    assert record["num_tasks"] == 8 and record["status"] == "crossing"
    assert 0.1 < record["measured"] < 0.2  # the exact crossing 0.125 lies between the grid levels 0.1 and 0.2


def noisy_run(root, trials: int):
    """A run directory whose noise sweep has T = 1 (``64σ²``, exact) and T = 8 (``0.5 + 32σ²``, ±0.5 trial noise):
    they cross at σ = 0.125, between the grid's last two levels."""
    rows = [
        SweepRow(model, tasks, "gaussian_noise", s, trial, trial, "mse_task_vector",
                 clean + slope * s**2 + (0.5 * (-1) ** trial if tasks > 1 else 0.0), clean + slope * s**2)
        for model, tasks, clean, slope in (("T1", 1, 0.0, 64.0), ("T8", 8, 0.5, 32.0))
        for s in (0.0, 0.05, 0.1, 0.15)
        for trial in range(1 if s == 0 else trials)
    ]  # fmt: skip
    with SweepCsvWriter(root / "robustness" / "sweep_fit_epoch000.csv") as writer:
        writer.write(rows)
    return root


def test_crossover_report_prints_an_open_bound_and_too_few_trials_in_words(tmp_path, capsys):
    task_crossover.main(["--run", str(noisy_run(tmp_path / "open", HONEST_TRIALS))])
    (line, _) = capsys.readouterr().out.splitlines()
    # the noise leaves σ = 0.15 plausible, and beyond it: the upper bound is open
    assert re.fullmatch(r"T=8: measured 0\.12\d \[0\.\d+, > 0\.15\], closed form 0\.125", line), line
    task_crossover.main(["--run", str(noisy_run(tmp_path / "few", 3))])
    (line, _) = capsys.readouterr().out.splitlines()
    assert line.startswith("T=8: measured 0.1") and line.endswith(
        f"(95%: not identified (no interval: 3 trials at level 0.05, fewer than the {HONEST_TRIALS} it needs)), "
        "closed form 0.125"
    )


def test_measured_crossover_agrees_with_the_closed_form_on_gaussian_tasks(tmp_path):
    data = GaussianTasksDataModule(input_dim=32, task_grid=[1, 12], examples_per_task=256)
    model = LinearMultitaskRegression(k=2, ridge=0.01)
    L.Trainer(max_epochs=1, default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
              enable_checkpointing=False, num_sanity_val_steps=0).fit(model, datamodule=data)  # fmt: skip
    grid = SweepGrid("gaussian_noise", [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3], trials=30)
    rows = [r for s in model.robustness_subjects(list(data.test_dataloader())) for r in run_sweep(s, [grid], seed=0)]
    (record,) = task_crossover.crossovers(rows)
    assert record["status"] == "crossing"
    assert record["measured_ci_low"] <= record["closed_form"] <= record["measured_ci_high"]


def test_figure2_prints_and_plots_the_shrinking_approximation(tmp_path, capsys):
    records = figure2.toy_records()
    by_tasks = {r["num_tasks"]: r for r in records}
    assert by_tasks[2]["c_hat_sq_norm"] == pytest.approx(1 / 2) and by_tasks[3]["c_hat_sq_norm"] == pytest.approx(1 / 3)
    assert [by_tasks[2][f"c_hat_{j}"] for j in (1, 2, 3)] == pytest.approx([0.5, 0.5, 0.0], abs=1e-12)
    assert [by_tasks[3][f"c_hat_{j}"] for j in (1, 2, 3)] == pytest.approx([1 / 3] * 3)
    figure2.main(["--out", str(tmp_path)])
    assert "‖ĉ‖² = 0.3333" in capsys.readouterr().out
    assert (tmp_path / "figure2.png").stat().st_size > 0
    with (tmp_path / "figure2.csv").open() as file:
        assert len(list(csv.DictReader(file))) == 5  # 2 + 3 tasks


def test_slope_comparison_puts_runs_side_by_side(tmp_path, capsys):
    for label, slopes in (("diverse", [1.0, 0.8, 0.6]), ("aligned", [1.0, 0.9, 0.7])):
        records = [{"num_tasks": t, "robustness_slope": r} for t, r in zip((1, 5, 10), slopes, strict=True)]
        write_records(
            tmp_path / label / "robustness" / "robustness_slope.csv", ["num_tasks", "robustness_slope"], records
        )
    out = tmp_path / "cmp"
    slope_comparison.main(["--run", f"diverse={tmp_path / 'diverse'}", "--run", f"aligned={tmp_path / 'aligned'}",
                           "--out", str(out)])  # fmt: skip
    assert "aligned: R(1) = 1.000, R(10) = 0.700, ratio 0.70" in capsys.readouterr().out
    assert out.with_suffix(".png").stat().st_size > 0
    with out.with_suffix(".csv").open() as file:
        assert [float(r["ratio_to_first"]) for r in csv.DictReader(file)][:3] == pytest.approx([1.0, 0.8, 0.6])


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        (slope_comparison.main, ["--run", "x={dir}", "--out", "{dir}/o"]),
        (slope_comparison.main, ["--run", "no-label", "--out", "{dir}/o"]),
        (task_crossover.main, ["--run", "{dir}"]),
    ],
)
def test_reporting_commands_reject_bad_input_in_one_line(command, argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        run_command(command, [arg.format(dir=tmp_path) for arg in argv])
    error = capsys.readouterr().err
    assert exited.value.code == 2 and error.startswith("error: --run=") and error.count("\n") == 1


def test_gaussian_config_runs_through_the_cli_and_its_crossover_report(tmp_path, capsys):
    from run import main

    main([
        "fit", "--config", str(ROOT / "configs" / "linear" / "gaussian_tasks.yaml"),
        f"--trainer.default_root_dir={tmp_path}", "--trainer.logger=false", "--data.init_args.task_grid=[1,10]",
        "--data.init_args.slope_dims=[64]", "--data.init_args.num_draws=5",
    ])  # fmt: skip
    with (tmp_path / "robustness" / "slope_draws.csv").open() as file:
        draws = list(csv.DictReader(file))
    assert {(r["d"], r["k"]) for r in draws} == {("64", "1"), ("64", "2"), ("64", "4")}
    assert (tmp_path / "robustness" / "slope_draws.png").stat().st_size > 0
    task_crossover.main(["--run", str(tmp_path)])
    assert "T=10: measured" in capsys.readouterr().out
    with (tmp_path / "robustness" / "crossover_vs_T1.csv").open() as file:
        (record,) = csv.DictReader(file)
    assert float(record["measured_ci_low"]) <= float(record["closed_form"]) <= float(record["measured_ci_high"])
