"""Every W&B call of a sweep: robustness curves as native panels, a small run summary, tables, figures.

Why history rows keyed by the level: W&B line plots are its native, interactive panel and overlay
every run of a group or project by themselves; a custom (Vega) chart over a table needs its chart
spec stored on the server and a table query per panel. So each sweep logs, per perturbation, one
history row per damage level::

    {"robustness/<stage>/<perturbation>/level": 0.3,
     "robustness/<stage>/<model>/<perturbation>/<metric>/mean": ..., ".../ci_low": ..., ".../ci_high": ...,
     ".../expected": ...}    # expected only where a closed form exists

and declares ``define_metric(<curve key>, step_metric="robustness/<stage>/<perturbation>/level",
summary="none")`` for every key it logs. Exact names take precedence over the ``*`` glob Lightning's
``WandbLogger`` declares (step metric ``trainer/global_step``), so these keys plot against the level
and stay out of the run summary. Sweeps during training (stage ``train``) put their moment into the key
(``.../<metric>/epoch<E>/mean``; ``.../epoch<E>_step<S>/mean`` in a run that validates several times per epoch,
``cognitive_reserve.sensitivity.sweep_moment``): a curve per sweep, and a line plot with a regex over ``epoch.*``
overlays them. The 95% band is the ``ci_low``/``ci_high`` pair (W&B line plots shade only
min/max or stddev across grouped runs, not a band logged per point); a level without an honest interval
(``flag`` of the summary) logs no band there. The epoch × level heatmap of a
per-epoch view is a native custom chart on W&B's built-in grid preset (``wandb/confusion_matrix/v1``,
which colours any number on a grid of two labels): rows are epochs (steps, where two sweeps share an epoch),
columns levels, cells the mean.

The run summary holds only run-level scalars that the runs table and parallel coordinates compare:
``robustness/<stage>/<model>/<perturbation>/<metric>/auc`` (level-averaged metric) and
``robustness/<stage>/<model>/<metric>/clean`` (undamaged metric), and for a sweep of several models
``robustness/<stage>/<perturbation>/<metric>/crossover`` (where the last model overtakes the first,
also the table ``robustness/<stage>/crossover``); per-level numbers stay in the tables ``robustness/<stage>/table``
(the trials) and ``robustness/<stage>/summary`` (the summary CSV: mean, interval, its method and flag) and the
CSVs. Per-epoch sweeps log their AUC against ``epoch``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger, WandbLogger

from cognitive_reserve.crossover import CrossOver
from cognitive_reserve.perturbations import LEVEL_LABELS
from cognitive_reserve.sensitivity import SENSITIVITY_COLUMNS, EpochSummary, panels, training_axis
from cognitive_reserve.stats import SUMMARY_COLUMNS, LevelSummary, area_under_curve, clean_value, curves
from cognitive_reserve.sweep import CSV_COLUMNS, SweepRow
from tracking.wandb import ResilientWandbLogger

#: W&B key prefix of the sensitivity-over-training view (table, figures).
PER_EPOCH = "robustness/train/per_epoch"
#: Columns of the W&B cross-over table (``cognitive_reserve.crossover.CrossOver`` fields, as in ``crossover.csv``).
CROSSOVER_COLUMNS = ("perturbation", "metric", "model_a", "model_b", *CrossOver.FINDING)
#: W&B's built-in chart preset that colours a value on a grid of two labels (its confusion matrix).
GRID_PRESET = "wandb/confusion_matrix/v1"
#: The per-level statistics logged as curves.
CURVE_STATS = ("mean", "ci_low", "ci_high", "expected")
#: The statistics that are the ends of a level's 95% interval (``cognitive_reserve.intervals``).
INTERVAL_ENDS = ("ci_low", "ci_high")


def level_key(stage: str, perturbation: str) -> str:
    """The step metric of every curve of one sweep stage and perturbation."""
    return f"robustness/{stage}/{perturbation}/level"


def curve_key(stage: str, model: str, perturbation: str, metric: str, stat: str, moment: str | None = None) -> str:
    """Key of one per-level statistic; sweeps during training add their ``moment`` (``epoch<E>``, or
    ``epoch<E>_step<S>``: ``sweep_moment``) so each sweep is its own line."""
    at = "" if moment is None else f"/{moment}"
    return f"robustness/{stage}/{model}/{perturbation}/{metric}{at}/{stat}"


def auc_key(stage: str, model: str, perturbation: str, metric: str) -> str:
    return f"robustness/{stage}/{model}/{perturbation}/{metric}/auc"


def clean_key(stage: str, model: str, metric: str) -> str:
    return f"robustness/{stage}/{model}/{metric}/clean"


def curve_rows(
    stage: str, summaries: Iterable[LevelSummary], moment: str | None = None
) -> tuple[dict[str, str], list[dict[str, float]]]:
    """``({curve key: its step metric}, history rows)``: one row per (perturbation, level), all models in it."""
    points = [
        (s, lambda stat, s=s: curve_key(stage, s.model, s.perturbation, s.metric, stat, moment))
        for curve in curves(summaries).values()
        for s in curve
    ]
    return level_rows(stage, points, CURVE_STATS)


def level_rows(
    stage: str, points: Iterable[tuple[LevelSummary, Callable[[str], str]]], stats: Sequence[str]
) -> tuple[dict[str, str], list[dict[str, float]]]:
    """``({key: its step metric}, history rows)`` of curve points, each a summary and the key of each of its
    ``stats`` (those that are None are left out, and so is an interval end that is not finite: a level with no
    honest interval, or a side its trials cannot bound; the table says why): one row per (perturbation, level),
    in that order."""
    step_metrics: dict[str, str] = {}
    rows: dict[tuple[str, float], dict[str, float]] = {}
    for s, key_of in points:
        x = level_key(stage, s.perturbation)
        row = rows.setdefault((s.perturbation, s.level), {x: s.level})
        for stat in stats:
            value = getattr(s, stat)
            if value is not None and (stat not in INTERVAL_ENDS or math.isfinite(value)):
                row[key_of(stat)] = value
                step_metrics[key_of(stat)] = x
    return step_metrics, [row for _, row in sorted(rows.items(), key=lambda item: item[0])]


def run_scalars(stage: str, summaries: Iterable[LevelSummary]) -> dict[str, float]:
    """The run-level scalars of one sweep: AUC per curve, the clean metric per (model, metric)."""
    scalars: dict[str, float] = {}
    for (model, perturbation, metric), points in curves(summaries).items():
        scalars[auc_key(stage, model, perturbation, metric)] = area_under_curve(points)
        clean = clean_value(points)
        if clean is not None:
            scalars.setdefault(clean_key(stage, model, metric), clean)
    return scalars


def crossover_scalars(stage: str, crossovers: Iterable[CrossOver]) -> dict[str, float]:
    """``robustness/<stage>/<perturbation>/<metric>/crossover``: the level, where one was found."""
    return {
        f"robustness/{stage}/{c.perturbation}/{c.metric}/crossover": c.level for c in crossovers if c.level is not None
    }


def log_sweep(
    loggers: Iterable[Logger],
    stage: str,
    rows: Sequence[SweepRow],
    summaries: Sequence[LevelSummary],
    figure: Path,
    epoch: int,
    step: int,
    crossovers: Sequence[CrossOver] = (),
    moment: str | None = None,
) -> None:
    """One sweep to every logger: W&B gets curves, summary scalars, the raw and summary tables, the cross-over
    table and the figure; other loggers the run-level scalars with the epoch. ``moment``: the name of a sweep
    during training (``sweep_moment``), which its curve keys carry."""
    scalars = {**run_scalars(stage, summaries), **crossover_scalars(stage, crossovers)}
    per_epoch = stage == "train"

    def send(logger: WandbLogger) -> None:
        run = logger.experiment
        log_curves(run, *curve_rows(stage, summaries, moment), scalars, per_epoch, epoch)
        logger.log_table(key=f"robustness/{stage}/table", columns=list(CSV_COLUMNS), data=_table(rows))
        summary = [[getattr(s, column) for column in SUMMARY_COLUMNS] for s in summaries]
        logger.log_table(key=f"robustness/{stage}/summary", columns=list(SUMMARY_COLUMNS), data=summary)
        if crossovers:
            table = [[getattr(c, column) for column in CROSSOVER_COLUMNS] for c in crossovers]
            logger.log_table(key=f"robustness/{stage}/crossover", columns=list(CROSSOVER_COLUMNS), data=table)
        logger.log_image(key=f"robustness/{stage}/figure", images=[str(figure)], step=step)

    to_loggers(loggers, send, {**scalars, "epoch": epoch}, step)


def to_loggers(
    loggers: Iterable[Logger], send: Callable[[WandbLogger], None], metrics: Mapping[str, float], step: int
) -> None:
    """``send(logger)`` for every W&B logger (``guarded``), ``metrics`` to every other logger."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            guarded(logger, lambda logger=logger: send(logger))
        else:
            logger.log_metrics(dict(metrics), step=step)


def log_curves(
    run: Any,
    step_metrics: Mapping[str, str],
    history: Sequence[Mapping[str, float]],
    scalars: Mapping[str, float],
    per_epoch: bool,
    epoch: int,
) -> None:
    """Curves (``curve_rows``: each key against its step metric, out of the summary), then run-level scalars:
    into the run summary, or against ``epoch`` for a per-epoch sweep."""
    for key in {*step_metrics.values()}:
        run.define_metric(key, summary="none")
    for key, x in step_metrics.items():
        run.define_metric(key, step_metric=x, summary="none")
    for row in history:
        run.log(dict(row))
    if per_epoch:
        for key in scalars:
            run.define_metric(key, step_metric="epoch")
        run.log({**scalars, "epoch": epoch})
    else:
        run.summary.update(scalars)


def log_sensitivity_table(loggers: Iterable[Logger], history: Sequence[EpochSummary], step: int) -> None:
    """Every per-epoch sweep so far as the W&B table ``robustness/train/per_epoch/table`` and the native
    epoch × level heatmaps (``heatmap_charts``)."""
    records = [entry.as_record() for entry in history]
    log_table_and_charts(
        loggers, f"{PER_EPOCH}/table", SENSITIVITY_COLUMNS, records, lambda: heatmap_charts(history), step
    )


def log_table_and_charts(
    loggers: Iterable[Logger],
    key: str,
    columns: Sequence[str],
    records: Sequence[Mapping[str, Any]],
    charts: Callable[[], Mapping[str, Any]],
    step: int,
) -> None:
    """A W&B table of ``records`` (``columns`` in order) under ``key``, and the custom charts ``charts()``,
    to every W&B logger."""
    for logger in wandb_loggers(loggers):
        data = [[record[column] for column in columns] for record in records]
        logger.log_table(key=key, columns=list(columns), data=data, step=step)
        logger.log_metrics(dict(charts()), step=step)


def heatmap_charts(history: Sequence[EpochSummary]) -> dict[str, Any]:
    """One W&B heatmap per (model, perturbation, metric) under ``robustness/train/per_epoch/heatmaps/...``:
    sweeps down (``epoch 003``, or ``step 000100`` where two sweeps share an epoch), levels across, the mean metric
    in each cell (non-finite cells left empty)."""
    axis = training_axis(entry.moment for entry in history)
    charts = {}
    for (model, metric, perturbation), by_moment in panels(history).items():
        data = [
            [moment_row(moment, axis), f"{s.level:g}", s.mean if math.isfinite(s.mean) else None]
            for moment, cells in by_moment.items()
            for s in cells
        ]
        title = f"{model}: mean {metric}, {axis} × {LEVEL_LABELS.get(perturbation, perturbation)}"
        charts[f"{PER_EPOCH}/heatmaps/{model}/{perturbation}/{metric}"] = grid_chart(
            (axis, "level", metric), data, title
        )
    return charts


def moment_row(moment: tuple[int, int | None], axis: str) -> str:
    """A sweep's row label in a native heatmap, zero-padded so W&B's text order is training order."""
    epoch, step = moment
    return f"step {step:06d}" if axis == "step" and step is not None else f"epoch {epoch:03d}"


def grid_chart(columns: tuple[str, str, str], data: list[list[Any]], title: str) -> Any:
    """A native W&B heatmap (``GRID_PRESET``) of ``data`` rows ``[row label, column label, value]``; ``columns``
    names the three."""
    import wandb

    rows, across, value = columns
    fields = {"Actual": rows, "Predicted": across, "nPredictions": value}
    return wandb.plot_table(GRID_PRESET, wandb.Table(columns=list(columns), data=data), fields, {"title": title})


def log_figures(loggers: Iterable[Logger], figures: Mapping[str, Path], step: int) -> None:
    """Figures (PNG paths) as W&B images, one key each."""
    for logger in wandb_loggers(loggers):
        for key, path in figures.items():
            logger.log_image(key=key, images=[str(path)], step=step)


def wandb_loggers(loggers: Iterable[Logger]) -> list[WandbLogger]:
    """The W&B loggers among ``loggers``."""
    return [logger for logger in loggers if isinstance(logger, WandbLogger)]


def guarded(logger: WandbLogger, send: Callable[[], None]) -> None:
    """Run ``send``; a ``ResilientWandbLogger`` turns a W&B failure into its one warning."""
    if isinstance(logger, ResilientWandbLogger):
        logger.guarded(send)
    else:
        send()


def _table(rows: Sequence[SweepRow]) -> list[list[Any]]:
    """CSV columns for a W&B table: ``None`` for empty cells, the 63-bit seed as text (JS-safe)."""
    return [[str(row.seed) if column == "seed" else getattr(row, column) for column in CSV_COLUMNS] for row in rows]
