"""Every W&B call of a layer-wise sweep: per-group curves, group × level and group × epoch heatmaps, tables.

Keys (``<g>`` is the group's name with ``.`` written ``_``, since W&B reads dots in a metric definition
as nesting: ``h.0.attn.c_attn.q`` → ``h_0_attn_c_attn_q``; tables and heatmaps keep the real names):

- curves, one history row per (perturbation, level), against the same step metric as the all-targets
  curves (``robustness/<stage>/<perturbation>/level``)::

      robustness/<stage>/<model>/<perturbation>/<metric>/groups/<g>/{mean,ci_low,ci_high}
      (sweeps during training: .../groups/<g>/epoch<E>/{mean,ci_low,ci_high}, or .../epoch<E>_step<S>/...)

- ``.../groups/<g>/auc``: each group's level-averaged metric (run summary; per-epoch sweeps: against ``epoch``);
- ``robustness/<stage>/groups/table``: every group's summaries (``GROUP_SUMMARY_COLUMNS``);
- ``robustness/<stage>/groups/heatmaps/<model>/<perturbation>/<metric>``: a native group × level heatmap on
  W&B's built-in grid preset, as ``tracking.panels`` logs the epoch × level one; each cell is the group's
  change of the mean metric from the undamaged model (``cognitive_reserve.layerwise.change``);
- ``robustness/<stage>/groups/figure``: the ``<stem>_groups.png`` figure;
- sweeps during training, after each: ``robustness/train/per_epoch/groups/table`` (all sweeps so far) and a
  native group × epoch (× step, where two sweeps share an epoch) heatmap (the same changes) per damaging level,
  ``robustness/train/per_epoch/groups/heatmaps/<model>/<perturbation>/<metric>/level<L>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger, WandbLogger

from cognitive_reserve.layerwise import (
    GROUP_SENSITIVITY_COLUMNS,
    GROUP_SUMMARY_COLUMNS,
    GroupSummary,
    change,
    group_cells,
    undamaged_means,
)
from cognitive_reserve.perturbations import LEVEL_LABELS
from cognitive_reserve.sensitivity import training_axis
from cognitive_reserve.stats import area_under_curve
from tracking.panels import (
    PER_EPOCH,
    auc_key,
    curve_key,
    grid_chart,
    level_rows,
    log_curves,
    log_table_and_charts,
    moment_row,
    to_loggers,
)

#: The per-level statistics of a group's curve.
GROUP_CURVE_STATS = ("mean", "ci_low", "ci_high")
#: The value column of the heatmaps' tables: the mean metric minus the undamaged model's.
CHANGE = "change"


def key_segment(group: str) -> str:
    """A group's name as one segment of a W&B key (dots would read as nesting)."""
    return group.replace(".", "_")


def group_curve_key(
    stage: str, model: str, perturbation: str, metric: str, group: str, stat: str, moment: str | None = None
) -> str:
    """``curve_key`` of the metric's per-group curve (``<metric>/groups/<group>``)."""
    return curve_key(stage, model, perturbation, group_metric(metric, group), stat, moment)


def group_auc_key(stage: str, model: str, perturbation: str, metric: str, group: str) -> str:
    return auc_key(stage, model, perturbation, group_metric(metric, group))


def group_metric(metric: str, group: str) -> str:
    """The key segment of a metric measured with one group damaged: ``<metric>/groups/<group>``."""
    return f"{metric}/groups/{key_segment(group)}"


def group_curve_rows(
    stage: str, summaries: Iterable[GroupSummary], moment: str | None = None
) -> tuple[dict[str, str], list[dict[str, float]]]:
    """``({curve key: its step metric}, history rows)``: one row per (perturbation, level), every group in it."""
    points = [
        (
            e.summary,
            lambda stat, s=e.summary, g=e.group: group_curve_key(
                stage, s.model, s.perturbation, s.metric, g, stat, moment
            ),
        )
        for entries in group_cells(summaries).values()
        for e in entries
    ]
    return level_rows(stage, points, GROUP_CURVE_STATS)


def group_scalars(stage: str, summaries: Iterable[GroupSummary]) -> dict[str, float]:
    """Each named group's AUC (level-averaged metric) per (model, perturbation, metric)."""
    scalars = {}
    for (model, metric, perturbation), entries in group_cells(summaries).items():
        for group in dict.fromkeys(e.group for e in entries):
            points = sorted((e.summary for e in entries if e.group == group), key=lambda s: s.level)
            scalars[group_auc_key(stage, model, perturbation, metric, group)] = area_under_curve(points)
    return scalars


def group_level_charts(stage: str, summaries: Sequence[GroupSummary]) -> dict[str, Any]:
    """One native W&B heatmap per (model, perturbation, metric): groups down, levels across, each cell the
    change of the mean metric from the undamaged model."""
    charts, undamaged = {}, undamaged_means(summaries)
    for (model, metric, perturbation), entries in group_cells(summaries).items():
        data = [[e.group, f"{e.summary.level:g}", change(e, undamaged)] for e in entries]
        title = f"{model}: {metric} − undamaged, group × {LEVEL_LABELS.get(perturbation, perturbation)}"
        charts[f"robustness/{stage}/groups/heatmaps/{model}/{perturbation}/{metric}"] = grid_chart(
            ("group", "level", CHANGE), data, title
        )
    return charts


def group_epoch_charts(history: Sequence[GroupSummary]) -> dict[str, Any]:
    """One native W&B heatmap per (model, perturbation, metric, damaging level): groups down, sweeps across
    (epochs, or steps where two sweeps share an epoch), each cell the change of the mean metric from that sweep's
    undamaged model."""
    charts, undamaged = {}, undamaged_means(history)
    axis = training_axis(entry.moment for entry in history)
    for (model, metric, perturbation), entries in group_cells(history).items():
        label = LEVEL_LABELS.get(perturbation, perturbation)
        for level in sorted({e.summary.level for e in entries} - {0.0}):
            data = [
                [e.group, moment_row(e.moment, axis), change(e, undamaged)]
                for e in entries
                if e.summary.level == level and e.moment is not None
            ]
            key = f"{PER_EPOCH}/groups/heatmaps/{model}/{perturbation}/{metric}/level{level:g}"
            title = f"{model}: {metric} − undamaged, group × {axis} at {label} = {level:g}"
            charts[key] = grid_chart(("group", axis, CHANGE), data, title)
    return charts


def log_group_sweep(
    loggers: Iterable[Logger],
    stage: str,
    summaries: Sequence[GroupSummary],
    figure: Path,
    epoch: int,
    step: int,
    moment: str | None = None,
) -> None:
    """One layer-wise sweep to every logger: W&B gets the per-group curves, AUCs, table, heatmaps and figure;
    other loggers the AUCs with the epoch. ``moment``: the name of a sweep during training, which its curve keys
    carry."""
    scalars = group_scalars(stage, summaries)
    per_epoch = stage == "train"

    def send(logger: WandbLogger) -> None:
        run = logger.experiment
        log_curves(run, *group_curve_rows(stage, summaries, moment), scalars, per_epoch, epoch)
        table = [list(entry.as_record(GROUP_SUMMARY_COLUMNS).values()) for entry in summaries]
        logger.log_table(key=f"robustness/{stage}/groups/table", columns=list(GROUP_SUMMARY_COLUMNS), data=table)
        run.log(group_level_charts(stage, summaries))
        logger.log_image(key=f"robustness/{stage}/groups/figure", images=[str(figure)], step=step)

    to_loggers(loggers, send, {**scalars, "epoch": epoch}, step)


def log_group_sensitivity(loggers: Iterable[Logger], history: Sequence[GroupSummary], step: int) -> None:
    """Every per-epoch layer-wise sweep so far: the table ``robustness/train/per_epoch/groups/table`` and the
    native group × epoch heatmaps (``group_epoch_charts``)."""
    records = [entry.as_record() for entry in history]
    key = f"{PER_EPOCH}/groups/table"
    log_table_and_charts(loggers, key, GROUP_SENSITIVITY_COLUMNS, records, lambda: group_epoch_charts(history), step)
