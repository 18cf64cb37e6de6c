"""``RobustnessSlopeReport``: the theory's robustness slope R(T) of every linear model at train end."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import lightning as L

from robustness import ConfigError
from robustness.plots import plot_xy
from tracking.panels import log_figures


class RobustnessSlopeReport(L.Callback):
    """Writes ``robustness/robustness_slope.csv`` and ``.png`` (R(T) against T) and logs ``theory/*``.

    Works with any module exposing ``robustness_slopes()`` (``LinearMultitaskRegression``).
    """

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not hasattr(pl_module, "robustness_slopes"):
            raise ConfigError("model", type(pl_module).__name__, "has no robustness_slopes() for RobustnessSlopeReport")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        reports = pl_module.robustness_slopes()
        out_dir = Path(trainer.default_root_dir) / "robustness"
        out_dir.mkdir(parents=True, exist_ok=True)
        with (out_dir / "robustness_slope.csv").open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=[f.name for f in dataclasses.fields(reports[0])])
            writer.writeheader()
            writer.writerows(dataclasses.asdict(r) for r in reports)
        figure = plot_xy(
            [r.num_tasks for r in reports], [r.robustness_slope for r in reports], out_dir / "robustness_slope.png",
            xlabel="number of tasks T", ylabel="R(T) = Σ_{i≤k} σ_i(C)² / T", title="robustness slope",
        )  # fmt: skip
        for logger in trainer.loggers:
            logger.log_metrics({f"theory/robustness_slope_T{r.num_tasks}": r.robustness_slope for r in reports})
        log_figures(trainer.loggers, {"theory/robustness_slope": figure}, trainer.global_step)
