"""Layer-wise sweep results: statistics per group, as tables and as group × level / group × training images.

- ``GroupSummary``: the ``LevelSummary`` of one group (``""``: all targets together) and, for a sweep during
  training, the epoch and global step whose weights it measured.
- ``summarize_groups``: ``summarize`` within each group of a sweep's rows.
- ``write_group_summaries``: the tidy CSV, columns ``GROUP_SUMMARY_COLUMNS`` (``epoch``, ``group``, then the
  summary columns; ``epoch`` empty outside sweeps during training) or, for the history of the sweeps during
  training, ``GROUP_SENSITIVITY_COLUMNS`` (``step`` after ``epoch``).
- ``plot_group_levels``: one panel per (model, metric) × perturbation, groups down, levels across.
- ``plot_group_epochs``: one panel per (model, metric, perturbation) × level, groups down, training across (the
  epoch, or the step where two sweeps share an epoch: ``cognitive_reserve.sensitivity.training_axis``).

The images show, for each named group, how far damaging it moves the mean metric from the undamaged
model's (``change``: mean − the level-0 mean of the same model, metric and sweep; the raw mean where the
grid has no level 0), so the group × training images show sensitivity rather than training progress. The
all-targets reference is left out (damaging everything is much worse than damaging one group, and would set
the colour scale alone). Colours are centred on 0 (red: the metric grew) on a scale at least ±5 % of the
undamaged value wide (``cognitive_reserve.plots.draw_change_image``: noise-sized changes stay pale; a heavy-tailed
metric is coloured on a symmetric log scale). Non-finite cells are left blank. Levels where a perturbation
changes nothing (0) are left out of the group × training panels.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from cognitive_reserve.io import write_records
from cognitive_reserve.plots import LEVEL_LABELS, draw_change_image, metric_label, save_figure
from cognitive_reserve.rows import SweepRow
from cognitive_reserve.sensitivity import Moment, moment_label, training_axis, training_order
from cognitive_reserve.stats import SUMMARY_COLUMNS, LevelSummary, summarize

GROUP_SUMMARY_COLUMNS = ("epoch", "group", *SUMMARY_COLUMNS)
#: Columns of the history of the layer-wise sweeps during training (``sensitivity_train_groups.csv``).
GROUP_SENSITIVITY_COLUMNS = ("epoch", "step", "group", *SUMMARY_COLUMNS)
#: How the all-targets reference (empty ``group``) is labelled in figures and tables meant for people.
ALL_TARGETS = "all targets"


@dataclasses.dataclass(frozen=True)
class GroupSummary:
    """A sweep summary cell of one group, and the epoch and global step of a sweep during training (None
    otherwise)."""

    group: str
    summary: LevelSummary
    epoch: int | None = None
    step: int | None = None

    @property
    def moment(self) -> Moment | None:
        return None if self.epoch is None else (self.epoch, self.step)

    def as_record(self, columns: Sequence[str] = GROUP_SENSITIVITY_COLUMNS) -> dict[str, Any]:
        """Plain values (checkpoint- and CSV-safe) of ``columns``, in their order."""
        record = {"epoch": self.epoch, "step": self.step, "group": self.group, **dataclasses.asdict(self.summary)}
        return {column: record[column] for column in columns}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> GroupSummary:
        epoch, step = (None if record.get(key) in (None, "") else int(record[key]) for key in ("epoch", "step"))
        return cls(record["group"], LevelSummary.from_record(record), epoch, step)


def summarize_groups(rows: Iterable[SweepRow], epoch: int | None = None, step: int | None = None) -> list[GroupSummary]:
    """``summarize`` within each group, groups in first-seen order (the reference, ``""``, first)."""
    by_group: dict[str, list[SweepRow]] = defaultdict(list)
    for row in rows:
        by_group[row.group].append(row)
    return [GroupSummary(group, s, epoch, step) for group, members in by_group.items() for s in summarize(members)]


def write_group_summaries(
    path: str | Path, summaries: Iterable[GroupSummary], columns: Sequence[str] = GROUP_SUMMARY_COLUMNS
) -> Path:
    """Every group's summaries in one tidy CSV of ``columns`` (empty cells for a missing epoch, step or closed
    form)."""
    return write_records(path, columns, (entry.as_record(columns) for entry in summaries))


Panel = tuple[str, str, str]  # (model, metric, perturbation)


def group_cells(summaries: Iterable[GroupSummary]) -> dict[Panel, list[GroupSummary]]:
    """The named groups' summaries per (model, metric, perturbation), in first-seen order."""
    cells: dict[Panel, list[GroupSummary]] = defaultdict(list)
    for entry in summaries:
        if entry.group:
            s = entry.summary
            cells[(s.model, s.metric, s.perturbation)].append(entry)
    return dict(cells)


#: The undamaged model's mean per (model, metric, moment of the sweep).
Undamaged = dict[tuple[str, str, Moment | None], float]


def undamaged_means(summaries: Iterable[GroupSummary]) -> Undamaged:
    """The undamaged model's mean (any level-0 cell) per (model, metric, moment of the sweep)."""
    return {(e.summary.model, e.summary.metric, e.moment): e.summary.mean for e in summaries if e.summary.level == 0}


def change(entry: GroupSummary, undamaged: Undamaged) -> float | None:
    """``entry``'s mean minus the undamaged model's (its mean where there is none); None when not finite."""
    s = entry.summary
    value = s.mean - undamaged.get((s.model, s.metric, entry.moment), 0.0)
    return value if math.isfinite(value) else None


def plot_group_levels(summaries: Sequence[GroupSummary], path: str | Path, title: str = "") -> Path:
    """``group_levels_figure(summaries)`` written to ``path``."""
    return save_figure(group_levels_figure(summaries), path, title, dpi=110)


def group_levels_figure(summaries: Sequence[GroupSummary]) -> Figure:
    """Change of the mean metric of each group (rows) at each level (columns): a row of panels per (model, metric),
    a column per perturbation."""
    cells, undamaged = group_cells(summaries), undamaged_means(summaries)
    perturbations = list(dict.fromkeys(perturbation for _, _, perturbation in cells))
    places = {panel: ((panel[0], panel[1]), perturbations.index(panel[2])) for panel in cells}
    fig, axes = _figure(places, rows_per_panel=_most_groups(cells))
    for panel, entries in cells.items():
        ax = axes[panel]
        levels = sorted({e.summary.level for e in entries})
        image, groups = _image(entries, levels, lambda e: e.summary.level, undamaged)
        _draw(fig, ax, image, groups, [f"{level:g}" for level in levels], panel, undamaged)
        ax.set_xlabel(LEVEL_LABELS.get(panel[2], panel[2]))
        ax.set_title(f"{panel[0]}: {panel[2].replace('_', ' ')}", fontsize="small")
    return fig


def plot_group_epochs(history: Sequence[GroupSummary], path: str | Path, title: str = "") -> Path:
    """Mean metric of each group (rows) at each sweep during training (columns: ``training_axis``): a row of panels
    per (model, metric, perturbation), a column per damaging level."""
    cells, undamaged = group_cells(history), undamaged_means(history)
    axis = training_axis(entry.moment for entry in history)
    places, entries_of = {}, {}
    for panel, entries in cells.items():
        for column, level in enumerate(sorted({e.summary.level for e in entries} - {0.0})):
            places[(panel, level)] = (panel, column)
            entries_of[(panel, level)] = [e for e in entries if e.summary.level == level]
    fig, axes = _figure(places, rows_per_panel=_most_groups(cells))
    for (panel, level), entries in entries_of.items():
        ax = axes[(panel, level)]
        moments = sorted({e.moment for e in entries if e.moment is not None}, key=training_order)
        image, groups = _image(entries, moments, lambda e: e.moment, undamaged)
        _draw(fig, ax, image, groups, [moment_label(moment, axis) for moment in moments], panel, undamaged)
        ax.set_xlabel(f"training {axis}")
        ax.set_title(f"{panel[0]}: {panel[2].replace('_', ' ')} {level:g}", fontsize="small")
    return save_figure(fig, path, title, dpi=110)


def _image(
    entries: list[GroupSummary], columns: list[Any], column_of, undamaged: Undamaged
) -> tuple[np.ndarray, list[str]]:
    """``(groups × columns array of changes, NaN where missing or non-finite; the groups in order)``."""
    groups = list(dict.fromkeys(e.group for e in entries))
    image = np.full((len(groups), len(columns)), np.nan)
    for e in entries:
        value = change(e, undamaged)
        if value is not None:
            image[groups.index(e.group), columns.index(column_of(e))] = value
    return image, groups


def _draw(
    fig: Figure, ax, image: np.ndarray, groups: list[str], ticks: list[str], panel: Panel, undamaged: Undamaged
) -> None:
    """The changes of one panel (``draw_change_image``, its floor from the panel's typical undamaged mean)."""
    model, metric, _ = panel
    means = [abs(mean) for (m, name, _), mean in undamaged.items() if (m, name) == (model, metric)]
    finite = [mean for mean in means if math.isfinite(mean)]
    label = f"{metric_label(metric)} − undamaged" if means else f"mean {metric_label(metric)}"
    draw_change_image(fig, ax, image, statistics.median(finite) if finite else None, label)
    ax.set_xticks(range(len(ticks)), ticks, fontsize="x-small")
    ax.set_yticks(range(len(groups)), groups, fontsize="x-small")


def _most_groups(cells: dict[Panel, list[GroupSummary]]) -> int:
    return max((len({e.group for e in entries}) for entries in cells.values()), default=1)


def _figure(places: dict[Any, tuple[Any, int]], rows_per_panel: int) -> tuple[Figure, dict[Any, Any]]:
    """A figure with one panel per key of ``places`` (``key → (row key, column)``); unused cells hidden."""
    rows = list(dict.fromkeys(row for row, _ in places.values())) or [None]
    columns = max((column + 1 for _, column in places.values()), default=1)
    height = 1.2 + 0.22 * rows_per_panel
    fig = Figure(figsize=(4.4 * columns, height * len(rows) + 0.6), layout="constrained")
    grid = fig.subplots(len(rows), columns, squeeze=False)
    axes = {key: grid[rows.index(row)][column] for key, (row, column) in places.items()}
    used = {id(ax) for ax in axes.values()}
    for ax in grid.flatten():
        ax.set_visible(id(ax) in used)
    return fig, axes
