"""The per-epoch heatmap is a native W&B chart: a custom chart on W&B's built-in grid preset over a
table of (epoch, level, mean), read back from a real offline run."""

from __future__ import annotations

import wandb

from cognitive_reserve.sensitivity import EpochSummary
from cognitive_reserve.stats import LevelSummary
from tests.helpers.wandb_offline import find_runs, read_run_until
from tracking.panels import GRID_PRESET, PER_EPOCH, heatmap_charts


def _history() -> list[EpochSummary]:
    return [
        EpochSummary(epoch, LevelSummary("m", 1, "magnitude_pruning", level, "mse", 1, 0, mean, 0.0, mean, mean, None))
        for epoch, means in ((0, (0.1, 0.5)), (1, (0.1, float("inf"))))
        for level, mean in zip((0.0, 0.5), means, strict=True)
    ]


def test_heatmap_table_has_a_cell_per_epoch_and_level_with_the_mean():
    ((key, chart),) = heatmap_charts(_history()).items()
    assert key == f"{PER_EPOCH}/heatmaps/m/magnitude_pruning/mse"
    assert chart.spec.spec_name == GRID_PRESET
    assert chart.spec.fields == {"Actual": "epoch", "Predicted": "level", "nPredictions": "mse"}
    assert chart.spec.string_fields == {"title": "m: mean mse, epoch × pruned fraction p (smallest |w|)"}  # declared
    assert chart.table.data == [["epoch 000", "0", 0.1], ["epoch 000", "0.5", 0.5], ["epoch 001", "0", 0.1],
                                ["epoch 001", "0.5", None]]  # fmt: skip


def test_heatmap_is_logged_as_a_custom_chart_of_an_offline_run(tmp_path):
    run = wandb.init(mode="offline", dir=str(tmp_path), project="heatmap-test")
    run.log(heatmap_charts(_history()))
    run.finish()
    (path,) = find_runs(tmp_path)
    key = f"{PER_EPOCH}/heatmaps/m/magnitude_pruning/mse"
    logged = read_run_until(path, lambda run: bool(run.series(f"{key}_table/_type")))
    assert logged.series(f"{key}_table/_type") == ["table-file"]
    panel = logged.config[f"_wandb/visualize/{key}"]
    assert panel["panel_type"] == "Vega2" and panel["panel_config"]["panelDefId"] == GRID_PRESET
