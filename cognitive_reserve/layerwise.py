"""Layer-wise sweep results: statistics per group, as tables and as group × level / group × epoch images.

- ``GroupSummary``: the ``LevelSummary`` of one group (``""``: all targets together) and, for a per-epoch
  sweep, the epoch whose weights it measured.
- ``summarize_groups``: ``summarize`` within each group of a sweep's rows.
- ``write_group_summaries``: the tidy CSV, columns ``GROUP_SUMMARY_COLUMNS`` (``epoch``, ``group``, then the
  summary columns; ``epoch`` empty outside per-epoch sweeps).
- ``plot_group_levels``: one panel per (model, metric) × perturbation, groups down, levels across.
- ``plot_group_epochs``: one panel per (model, metric, perturbation) × level, groups down, epochs across.

The images show, for each named group, how far damaging it moves the mean metric from the undamaged
model's (``change``: mean − the level-0 mean of the same model, metric and epoch; the raw mean where the
grid has no level 0), so the group × epoch images show sensitivity rather than training progress. The
all-targets reference is left out (damaging everything is much worse than damaging one group, and would set
the colour scale alone). Colours are centred on 0 (red: the metric grew); a heavy-tailed metric (perplexity,
largest change above 100 times the median one) is coloured on a symmetric log scale. Non-finite cells are
left blank. Levels where a perturbation changes nothing (0) are left out of the group × epoch panels.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import Normalize, SymLogNorm
from matplotlib.figure import Figure

from cognitive_reserve.io import write_records
from cognitive_reserve.plots import LEVEL_LABELS, save_figure
from cognitive_reserve.rows import SweepRow
from cognitive_reserve.stats import SUMMARY_COLUMNS, LevelSummary, summarize

GROUP_SUMMARY_COLUMNS = ("epoch", "group", *SUMMARY_COLUMNS)
#: How the all-targets reference (empty ``group``) is labelled in figures and tables meant for people.
ALL_TARGETS = "all targets"


@dataclasses.dataclass(frozen=True)
class GroupSummary:
    """A sweep summary cell of one group, and the epoch of a per-epoch sweep (None otherwise)."""

    group: str
    summary: LevelSummary
    epoch: int | None = None

    def as_record(self) -> dict[str, Any]:
        """Plain values (checkpoint- and CSV-safe), in ``GROUP_SUMMARY_COLUMNS`` order."""
        return {"epoch": self.epoch, "group": self.group, **dataclasses.asdict(self.summary)}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> GroupSummary:
        epoch = record.get("epoch")
        return cls(record["group"], LevelSummary.from_record(record), None if epoch in (None, "") else int(epoch))


def summarize_groups(rows: Iterable[SweepRow], epoch: int | None = None) -> list[GroupSummary]:
    """``summarize`` within each group, groups in first-seen order (the reference, ``""``, first)."""
    by_group: dict[str, list[SweepRow]] = defaultdict(list)
    for row in rows:
        by_group[row.group].append(row)
    return [GroupSummary(group, s, epoch) for group, members in by_group.items() for s in summarize(members)]


def write_group_summaries(path: str | Path, summaries: Iterable[GroupSummary]) -> Path:
    """Every group's summaries in one tidy CSV (empty cells for a missing epoch or closed form)."""
    return write_records(path, GROUP_SUMMARY_COLUMNS, (entry.as_record() for entry in summaries))


Panel = tuple[str, str, str]  # (model, metric, perturbation)


def group_cells(summaries: Iterable[GroupSummary]) -> dict[Panel, list[GroupSummary]]:
    """The named groups' summaries per (model, metric, perturbation), in first-seen order."""
    cells: dict[Panel, list[GroupSummary]] = defaultdict(list)
    for entry in summaries:
        if entry.group:
            s = entry.summary
            cells[(s.model, s.metric, s.perturbation)].append(entry)
    return dict(cells)


def undamaged_means(summaries: Iterable[GroupSummary]) -> dict[tuple[str, str, int | None], float]:
    """The undamaged model's mean (any level-0 cell) per (model, metric, epoch)."""
    return {(e.summary.model, e.summary.metric, e.epoch): e.summary.mean for e in summaries if e.summary.level == 0}


def change(entry: GroupSummary, undamaged: dict[tuple[str, str, int | None], float]) -> float | None:
    """``entry``'s mean minus the undamaged model's (its mean where there is none); None when not finite."""
    s = entry.summary
    value = s.mean - undamaged.get((s.model, s.metric, entry.epoch), 0.0)
    return value if math.isfinite(value) else None


def plot_group_levels(summaries: Sequence[GroupSummary], path: str | Path, title: str = "") -> Path:
    """Mean metric of each group (rows) at each level (columns): a row of panels per (model, metric), a
    column per perturbation."""
    cells, undamaged = group_cells(summaries), undamaged_means(summaries)
    perturbations = list(dict.fromkeys(perturbation for _, _, perturbation in cells))
    places = {panel: ((panel[0], panel[1]), perturbations.index(panel[2])) for panel in cells}
    fig, axes = _figure(places, rows_per_panel=_most_groups(cells))
    for panel, entries in cells.items():
        ax = axes[panel]
        levels = sorted({e.summary.level for e in entries})
        image, groups = _image(entries, levels, lambda e: e.summary.level, undamaged)
        _draw(fig, ax, image, groups, [f"{level:g}" for level in levels], _label(panel, undamaged))
        ax.set_xlabel(LEVEL_LABELS.get(panel[2], panel[2]))
        ax.set_title(f"{panel[0]}: {panel[2].replace('_', ' ')}", fontsize="small")
    return save_figure(fig, path, title, dpi=110)


def plot_group_epochs(history: Sequence[GroupSummary], path: str | Path, title: str = "") -> Path:
    """Mean metric of each group (rows) at each epoch (columns): a row of panels per (model, metric,
    perturbation), a column per damaging level."""
    cells, undamaged = group_cells(history), undamaged_means(history)
    places, entries_of = {}, {}
    for panel, entries in cells.items():
        for column, level in enumerate(sorted({e.summary.level for e in entries} - {0.0})):
            places[(panel, level)] = (panel, column)
            entries_of[(panel, level)] = [e for e in entries if e.summary.level == level]
    fig, axes = _figure(places, rows_per_panel=_most_groups(cells))
    for (panel, level), entries in entries_of.items():
        ax = axes[(panel, level)]
        epochs = sorted({e.epoch for e in entries if e.epoch is not None})
        image, groups = _image(entries, epochs, lambda e: e.epoch, undamaged)
        _draw(fig, ax, image, groups, [str(epoch) for epoch in epochs], _label(panel, undamaged))
        ax.set_xlabel("epoch")
        ax.set_title(f"{panel[0]}: {panel[2].replace('_', ' ')} {level:g}", fontsize="small")
    return save_figure(fig, path, title, dpi=110)


def _image(
    entries: list[GroupSummary], columns: list[Any], column_of, undamaged: dict[tuple[str, str, int | None], float]
) -> tuple[np.ndarray, list[str]]:
    """``(groups × columns array of changes, NaN where missing or non-finite; the groups in order)``."""
    groups = list(dict.fromkeys(e.group for e in entries))
    image = np.full((len(groups), len(columns)), np.nan)
    for e in entries:
        value = change(e, undamaged)
        if value is not None:
            image[groups.index(e.group), columns.index(column_of(e))] = value
    return image, groups


def _label(panel: Panel, undamaged: dict[tuple[str, str, int | None], float]) -> str:
    model, metric, _ = panel
    has_clean = any(key[:2] == (model, metric) for key in undamaged)
    return f"{metric} − undamaged" if has_clean else f"mean {metric}"


def _draw(fig: Figure, ax, image: np.ndarray, groups: list[str], ticks: list[str], label: str) -> None:
    finite = np.abs(image[np.isfinite(image)])
    largest = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    typical = float(np.median(finite[finite > 0])) if (finite > 0).any() else largest
    heavy = largest > 100 * typical
    norm = SymLogNorm(largest / 100, vmin=-largest, vmax=largest) if heavy else Normalize(-largest, largest)
    shown = ax.imshow(image, aspect="auto", interpolation="nearest", cmap="RdBu_r", norm=norm)
    ax.set_xticks(range(len(ticks)), ticks, fontsize="x-small")
    ax.set_yticks(range(len(groups)), groups, fontsize="x-small")
    fig.colorbar(shown, ax=ax, label=label + (" (symlog)" if heavy else ""))
    ax.grid(False)


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
