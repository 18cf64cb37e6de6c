"""``RobustnessSlopeReport``: the theory's robustness slope R(T) of every linear model at train end."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import lightning as L

from cognitive_reserve import ConfigError
from cognitive_reserve.io import write_records
from run_outputs.slope_figures import SlopeCurve, plot_slope_curves
from tracking.panels import log_figures

#: Line styles of the k grid in ``slope_draws.png`` (colours tell the d grid apart).
LINESTYLES = ("-", "--", ":", "-.")


class RobustnessSlopeReport(L.Callback):
    """Writes ``robustness/robustness_slope.csv`` and ``.png`` (R(T) against T) and logs ``theory/*``.

    The CSV's ``robustness_slope`` is R(T) of the ``C`` the model uses (unit-norm task vectors when
    ``normalize_task_vectors``), ``robustness_slope_unnormalized`` that of the learned ``C``; the figure
    shows both. With a data module that has ``slope_draws()`` (``GaussianTasksDataModule``) it also
    writes ``robustness/slope_draws.{csv,png}``: R(T) over independent draws of ``C``.
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
        records = [dataclasses.asdict(r) for r in reports]
        write_records(out_dir / "robustness_slope.csv", list(records[0]), records)
        tasks = [r.num_tasks for r in reports]
        figure = plot_slope_curves(
            {
                "C the model uses": SlopeCurve(tasks, [r.robustness_slope for r in reports]),
                "unnormalised C": SlopeCurve(tasks, [r.robustness_slope_unnormalized for r in reports]),
            },
            out_dir / "robustness_slope.png",
            ylabel="R(T) = Σ_{i≤k} σ_i(C)² / T",
            title="robustness slope",
        )
        metrics = {f"theory/robustness_slope_T{r.num_tasks}": r.robustness_slope for r in reports}
        metrics |= {
            f"theory/robustness_slope_unnormalized_T{r.num_tasks}": r.robustness_slope_unnormalized for r in reports
        }
        figures = {"theory/robustness_slope": figure}
        if hasattr(trainer.datamodule, "slope_draws"):
            figures["theory/slope_draws"] = write_slope_draws(trainer.datamodule.slope_draws(), out_dir)
        for logger in trainer.loggers:
            logger.log_metrics(metrics)
        log_figures(trainer.loggers, figures, trainer.global_step)


def write_slope_draws(rows: list, out_dir: Path) -> Path:
    """``slope_draws.csv`` (one row per d, k, T) and ``slope_draws.png`` (mean R(T), 95% band over draws)."""
    records = [dataclasses.asdict(row) for row in rows]
    write_records(out_dir / "slope_draws.csv", list(records[0]), records)
    dims, ks = list(dict.fromkeys(row.d for row in rows)), list(dict.fromkeys(row.k for row in rows))
    curves = {}
    for d, k in dict.fromkeys((row.d, row.k) for row in rows):
        group = [row for row in rows if (row.d, row.k) == (d, k)]
        curves[f"d={d}, k={k}"] = SlopeCurve(
            [row.num_tasks for row in group],
            [row.mean for row in group],
            ([row.ci_low for row in group], [row.ci_high for row in group]),
            color=f"C{dims.index(d) % 10}",
            linestyle=LINESTYLES[ks.index(k) % len(LINESTYLES)],
        )
    draws = rows[0].num_draws
    return plot_slope_curves(
        curves, out_dir / "slope_draws.png", ylabel="R(T), mean and 95% CI", title=f"Gaussian C, {draws} draws"
    )
