"""Degenerate numbers are data: inf/NaN levels are recorded, summarised, plotted and the run finishes."""

from __future__ import annotations

import math

import pytest
import torch
import yaml
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import BinaryAccuracy

from cognitive_reserve import SweepGrid, SweepSubject, read_sweep_csv, run_sweep, summarize
from cognitive_reserve.metrics import metric_direction, worst_value
from cognitive_reserve.plots import plot_sweep
from lightning_modules.lm_metrics import LanguageModelingMetric
from lightning_modules.sweepable import metric_values
from tests.helpers.cli import ROOT


def test_nan_is_recorded_as_the_metrics_worst_value():
    net = nn.Linear(2, 2)
    subject = SweepSubject(
        "diverged", net, lambda: {"perplexity": math.nan, "accuracy": math.nan, "mcc": math.nan, "mse": 1.0}
    )
    rows = run_sweep(subject, [SweepGrid("gaussian_noise", [0.0, 1e6], trials=3)], seed=0)
    recorded = {r.metric: r.value for r in rows}
    assert recorded == {"perplexity": math.inf, "accuracy": 0.0, "mcc": -1.0, "mse": 1.0}


def test_metric_directions():
    assert metric_direction("perplexity_en") == metric_direction("bits_per_byte_el") == "lower"
    for score in ("val/accuracy", "matthews_corrcoef", "binaryf1score", "multiclassaccuracy"):
        assert metric_direction(score) == "higher"
    assert metric_direction("weirdness") is None and math.isnan(worst_value("weirdness"))
    assert worst_value("mse") == math.inf and worst_value("mcc") == -1.0 and worst_value("accuracy") == 0.0


def test_nan_takes_the_worst_value_in_the_direction_a_torchmetrics_metric_declares():
    nan = torch.tensor(math.nan)
    collection = MetricCollection({"agreement": BinaryAccuracy(), "mcc": MeanMetric()})  # higher; declares none
    assert metric_values(collection, {"agreement": nan, "mcc": nan}) == {"agreement": -math.inf, "mcc": -1.0}
    assert metric_values(LanguageModelingMetric(["en"]), {"weirdness": nan}) == {"weirdness": math.inf}  # lower
    assert metric_values(MeanMetric(), nan) == {"meanmetric": pytest.approx(math.nan, nan_ok=True)}  # no one says


def test_inf_levels_are_marked_in_summary_and_plot(tmp_path):
    values = iter([1.0, 2.0, math.inf, 3.0, 4.0, 5.0, 6.0])
    subject = SweepSubject("m", nn.Linear(2, 2), lambda: {"mse": next(values)})
    rows = run_sweep(subject, [SweepGrid("random_deletion", [0.0, 0.5, 0.9], trials=3)], seed=0)
    by_level = {s.level: s for s in summarize(rows)}
    assert by_level[0.5].n_nonfinite == 1 and math.isinf(by_level[0.5].mean)
    assert by_level[0.9].n_nonfinite == 0 and by_level[0.9].mean == 5.0
    assert plot_sweep(summarize(rows), tmp_path / "p.png").stat().st_size > 0


@pytest.mark.slow
def test_run_with_overflowing_noise_finishes_and_records_inf(tmp_path):
    from run import main

    config = yaml.safe_load((ROOT / "configs/linear/digits.yaml").read_text())
    config["trainer"]["callbacks"][0]["init_args"]["perturbations"] = {
        "gaussian_noise": {"levels": [0.0, 0.1, 1e30, 1e200], "trials": 5}
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    main(["fit", "--config", str(path), f"--trainer.default_root_dir={out}", "--trainer.logger=false",
          "--data.init_args.task_grid=[1,4]"])  # fmt: skip
    rows = read_sweep_csv(out / "robustness" / "sweep_fit_epoch000.csv")
    huge = [r for r in rows if r.level == 1e200]
    assert huge and all(math.isinf(r.value) for r in huge)
    assert all(math.isfinite(r.value) for r in rows if r.level <= 0.1)
    summary = (out / "robustness" / "sweep_fit_epoch000_summary.csv").read_text()
    assert ",5,5,inf," in summary  # n=5 trials, all 5 non-finite, mean inf
    assert (out / "robustness" / "sweep_fit_epoch000.png").stat().st_size > 0
