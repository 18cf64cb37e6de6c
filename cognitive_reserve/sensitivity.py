"""Sensitivity over training (paper Figure 4 right): the summaries of the sweeps run during training as one table
and two figures.

- ``EpochSummary``: the ``LevelSummary`` of one (model, perturbation, level, metric) of the sweep at one moment of
  training: its epoch and global step.
- ``sweep_moment``: how such a sweep is named in files and W&B keys (``epoch003``, or ``epoch003_step000100`` in a
  run that validates several times per epoch).
- ``write_sensitivity_csv``: every sweep's summaries, columns ``epoch``, ``step`` + the summary columns.
- ``plot_sensitivity_curves``: one panel per (model, metric) × perturbation, one curve per sweep.
- ``plot_sensitivity_heatmap``: the same panels as images, training across (``training_axis``: the epoch, or the
  step where two sweeps share an epoch) and levels down; each cell is the change of the mean metric from the
  undamaged model of the same sweep (``cognitive_reserve.plots.draw_change_image``).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import textwrap
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from cognitive_reserve.io import write_records
from cognitive_reserve.plots import CHANGE_FLOOR, LEVEL_LABELS, draw_change_image, metric_label, save_figure
from cognitive_reserve.stats import SUMMARY_COLUMNS, LevelSummary

SENSITIVITY_COLUMNS = ("epoch", "step", *SUMMARY_COLUMNS)
#: When a sweep ran: ``(epoch, global step)``; the step is None in records written before it was kept.
Moment = tuple[int, int | None]
#: Most training moments labelled on a heatmap's axis (the others are drawn, not labelled).
MOST_TICKS = 12


def sweep_moment(epoch: int, step: int | None = None) -> str:
    """A training sweep's name in files and W&B keys: ``epoch003``; ``epoch003_step000100`` with ``step`` (given
    where the run validates several times per epoch, so two sweeps of one epoch never share a name)."""
    return f"epoch{epoch:03d}" + ("" if step is None else f"_step{step:06d}")


@dataclasses.dataclass(frozen=True)
class EpochSummary:
    """A sweep summary cell, and the epoch and global step whose weights it measured."""

    epoch: int
    summary: LevelSummary
    step: int | None = None

    @property
    def moment(self) -> Moment:
        return (self.epoch, self.step)

    def as_record(self) -> dict[str, Any]:
        """Plain values (checkpoint- and CSV-safe): ``epoch``, ``step`` and every summary column."""
        return {"epoch": self.epoch, "step": self.step, **dataclasses.asdict(self.summary)}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> EpochSummary:
        step = record.get("step")
        return cls(int(record["epoch"]), LevelSummary.from_record(record), None if step in (None, "") else int(step))


Panel = tuple[str, str, str]  # (model, metric, perturbation)


def write_sensitivity_csv(path: str | Path, history: Iterable[EpochSummary]) -> Path:
    """All sweeps' summaries in one tidy CSV (empty cells for missing closed forms)."""
    return write_records(path, SENSITIVITY_COLUMNS, (entry.as_record() for entry in history))


def panels(history: Iterable[EpochSummary]) -> dict[Panel, dict[Moment, list[LevelSummary]]]:
    """``{(model, metric, perturbation): {(epoch, step): summaries sorted by level}}``, panels in first-seen
    order, moments in training order."""
    grouped: dict[Panel, dict[Moment, list[LevelSummary]]] = defaultdict(lambda: defaultdict(list))
    for entry in history:
        s = entry.summary
        grouped[(s.model, s.metric, s.perturbation)][entry.moment].append(s)
    return {
        panel: {
            moment: sorted(cells, key=lambda s: s.level)
            for moment, cells in sorted(by_moment.items(), key=lambda item: training_order(item[0]))
        }
        for panel, by_moment in grouped.items()
    }


def training_axis(moments: Iterable[Moment | None]) -> Literal["epoch", "step"]:
    """``step`` when two sweeps share an epoch (validation several times per epoch), else ``epoch``."""
    moments = {moment for moment in moments if moment is not None}
    return "step" if len(moments) > len({epoch for epoch, _ in moments}) else "epoch"


def moment_label(moment: Moment, axis: Literal["epoch", "step"]) -> str:
    """A sweep's tick or legend label on ``axis`` (``12``); a record without a step reads ``epoch 3``."""
    epoch, step = moment
    return str(epoch) if axis == "epoch" else f"epoch {epoch}" if step is None else str(step)


def plot_sensitivity_curves(history: Sequence[EpochSummary], path: str | Path, title: str = "") -> Path:
    """Mean metric against level, one curve per sweep (dark = early, bright = late)."""
    grid, axis = panels(history), training_axis(entry.moment for entry in history)
    fig, axes = _figure(grid)
    moments = sorted({entry.moment for entry in history}, key=training_order)
    cmap = colormaps["viridis"]
    for (panel, by_moment), ax in zip(grid.items(), axes, strict=True):
        for moment, cells in by_moment.items():
            shade = cmap(moments.index(moment) / max(len(moments) - 1, 1) * 0.9)
            finite = [s for s in cells if math.isfinite(s.mean)]
            levels, means = [s.level for s in finite], [s.mean for s in finite]
            ax.plot(levels, means, color=shade, marker=".", label=f"{axis} {moment_label(moment, axis)}")
        _label(ax, panel)
    axes[0].legend(fontsize="x-small")
    return save_figure(fig, path, title, dpi=110)


def plot_sensitivity_heatmap(history: Sequence[EpochSummary], path: str | Path, title: str = "") -> Path:
    """``sensitivity_heatmap(history)`` written to ``path``."""
    return save_figure(sensitivity_heatmap(history), path, title, dpi=110)


def sensitivity_heatmap(history: Sequence[EpochSummary]) -> Figure:
    """Each sweep's damage as an image: training across (``training_axis``), levels up, each cell the mean
    metric minus that sweep's undamaged mean (its level-0 cell; its lowest level where the grid has no 0), so the
    image shows sensitivity rather than training progress. Non-finite cells are left blank."""
    grid, axis = panels(history), training_axis(entry.moment for entry in history)
    fig, axes = _figure(grid)
    for (panel, by_moment), ax in zip(grid.items(), axes, strict=True):
        levels = sorted({s.level for cells in by_moment.values() for s in cells}, reverse=True)  # largest on top
        moments = list(by_moment)
        image = np.full((len(levels), len(moments)), np.nan)
        references = []
        for column, cells in enumerate(by_moment.values()):
            reference = cells[0].mean
            references.append(reference)
            for s in cells:
                change = s.mean - reference
                image[levels.index(s.level), column] = change if math.isfinite(change) else np.nan
        finite = [abs(r) for r in references if math.isfinite(r)]
        undamaged = statistics.median(finite) if finite else None
        baseline = "undamaged" if levels[-1] == 0 else f"level {levels[-1]:g}"
        draw_change_image(fig, ax, image, undamaged, f"{metric_label(panel[1])} − {baseline}")
        shown = range(0, len(moments), math.ceil(len(moments) / MOST_TICKS))
        ax.set_xticks(list(shown), [moment_label(moments[i], axis) for i in shown], fontsize="x-small")
        ax.set_yticks(range(len(levels)), [f"{level:g}" for level in levels], fontsize="x-small")
        ax.set_xlabel(f"training {axis}" + (" (one sweep per epoch)" if axis == "epoch" else ""))
        ax.set_ylabel(LEVEL_LABELS.get(panel[2], panel[2]))
        ax.set_title(f"{panel[0]}: {metric_label(panel[1])}, {panel[2].replace('_', ' ')}", fontsize="small")
    note = (
        f"Each cell: the sweep's mean metric at that level minus its undamaged mean (same {axis}). Colours centred "
        f"on 0 (red: the metric grew), the scale at least ±{CHANGE_FLOOR:.0%} of the undamaged value wide."
    )
    fig.supxlabel(textwrap.fill(note, int(fig.get_figwidth() * 14)), fontsize="x-small")
    return fig


def training_order(moment: Moment) -> tuple[int, int]:
    """Training order: by epoch, then step."""
    epoch, step = moment
    return (epoch, -1 if step is None else step)


def _figure(grid: dict[Panel, Any]) -> tuple[Figure, list]:
    columns = list(dict.fromkeys(perturbation for _, _, perturbation in grid))
    rows = len(grid) // len(columns) + (len(grid) % len(columns) > 0)
    fig = Figure(figsize=(max(4.6 * len(columns), 6.4), 3.4 * rows + 0.5), layout="constrained")
    axes = fig.subplots(rows, len(columns), squeeze=False).flatten().tolist()
    for ax in axes[len(grid) :]:
        ax.set_visible(False)
    return fig, axes[: len(grid)]


def _label(ax, panel: Panel) -> None:
    model, metric, perturbation = panel
    ax.set_xlabel(LEVEL_LABELS.get(perturbation, perturbation))
    ax.set_ylabel(metric_label(metric))
    ax.set_title(f"{model}: {perturbation.replace('_', ' ')}", fontsize="small")
    ax.grid(alpha=0.3)
