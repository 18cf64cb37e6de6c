"""Sensitivity over training (paper Figure 4 right): per-epoch sweep summaries as one table and two figures.

- ``EpochSummary``: the ``LevelSummary`` of one (model, perturbation, level, metric) at one epoch.
- ``write_sensitivity_csv``: every epoch's summaries, columns ``epoch`` + the summary columns.
- ``plot_sensitivity_curves``: one panel per (model, metric) × perturbation, one curve per epoch.
- ``plot_sensitivity_heatmap``: the same panels as epoch × level images of the mean metric.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from cognitive_reserve.io import write_records
from cognitive_reserve.plots import LEVEL_LABELS, save_figure
from cognitive_reserve.stats import SUMMARY_COLUMNS, LevelSummary

SENSITIVITY_COLUMNS = ("epoch", *SUMMARY_COLUMNS)


@dataclasses.dataclass(frozen=True)
class EpochSummary:
    """A sweep summary cell and the epoch whose weights it measured."""

    epoch: int
    summary: LevelSummary

    def as_record(self) -> dict[str, Any]:
        """Plain values (checkpoint- and CSV-safe): ``epoch`` and every summary column."""
        return {"epoch": self.epoch, **dataclasses.asdict(self.summary)}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> EpochSummary:
        return cls(int(record["epoch"]), LevelSummary.from_record(record))


Panel = tuple[str, str, str]  # (model, metric, perturbation)


def write_sensitivity_csv(path: str | Path, history: Iterable[EpochSummary]) -> Path:
    """All epochs' summaries in one tidy CSV (empty cells for missing closed forms)."""
    return write_records(path, SENSITIVITY_COLUMNS, (entry.as_record() for entry in history))


def panels(history: Iterable[EpochSummary]) -> dict[Panel, dict[int, list[LevelSummary]]]:
    """``{(model, metric, perturbation): {epoch: summaries sorted by level}}`` in first-seen order."""
    grouped: dict[Panel, dict[int, list[LevelSummary]]] = defaultdict(lambda: defaultdict(list))
    for entry in history:
        s = entry.summary
        grouped[(s.model, s.metric, s.perturbation)][entry.epoch].append(s)
    return {
        panel: {epoch: sorted(cells, key=lambda s: s.level) for epoch, cells in sorted(by_epoch.items())}
        for panel, by_epoch in grouped.items()
    }


def plot_sensitivity_curves(history: Sequence[EpochSummary], path: str | Path, title: str = "") -> Path:
    """Mean metric against level, one curve per epoch (dark = early, bright = late)."""
    grid = panels(history)
    fig, axes = _figure(grid)
    epochs = sorted({entry.epoch for entry in history})
    cmap = colormaps["viridis"]
    for (panel, by_epoch), ax in zip(grid.items(), axes, strict=True):
        for epoch, cells in by_epoch.items():
            shade = cmap(epochs.index(epoch) / max(len(epochs) - 1, 1) * 0.9)
            finite = [s for s in cells if math.isfinite(s.mean)]
            levels, means = [s.level for s in finite], [s.mean for s in finite]
            ax.plot(levels, means, color=shade, marker=".", label=f"epoch {epoch}")
        _label(ax, panel)
    axes[0].legend(fontsize="x-small")
    return save_figure(fig, path, title, dpi=110)


def plot_sensitivity_heatmap(history: Sequence[EpochSummary], path: str | Path, title: str = "") -> Path:
    """Mean metric as an image: epochs down, levels across (non-finite cells left blank)."""
    grid = panels(history)
    fig, axes = _figure(grid)
    for (panel, by_epoch), ax in zip(grid.items(), axes, strict=True):
        levels = sorted({s.level for cells in by_epoch.values() for s in cells})
        epochs = list(by_epoch)
        image = np.full((len(epochs), len(levels)), np.nan)
        for row, cells in enumerate(by_epoch.values()):
            for s in cells:
                image[row, levels.index(s.level)] = s.mean if math.isfinite(s.mean) else np.nan
        shown = ax.imshow(image, aspect="auto", interpolation="nearest", cmap="magma")
        ax.set_xticks(range(len(levels)), [f"{level:g}" for level in levels], fontsize="x-small")
        ax.set_yticks(range(len(epochs)), [str(epoch) for epoch in epochs], fontsize="x-small")
        fig.colorbar(shown, ax=ax, label=panel[1])
        _label(ax, panel, ylabel="epoch")
        ax.grid(False)
    return save_figure(fig, path, title, dpi=110)


def _figure(grid: dict[Panel, Any]) -> tuple[Figure, list]:
    columns = list(dict.fromkeys(perturbation for _, _, perturbation in grid))
    rows = len(grid) // len(columns) + (len(grid) % len(columns) > 0)
    fig = Figure(figsize=(4.2 * len(columns), 3.2 * rows), layout="constrained")
    axes = fig.subplots(rows, len(columns), squeeze=False).flatten().tolist()
    for ax in axes[len(grid) :]:
        ax.set_visible(False)
    return fig, axes[: len(grid)]


def _label(ax, panel: Panel, ylabel: str | None = None) -> None:
    model, metric, perturbation = panel
    ax.set_xlabel(LEVEL_LABELS.get(perturbation, perturbation))
    ax.set_ylabel(ylabel or metric)
    ax.set_title(f"{model}: {perturbation.replace('_', ' ')}", fontsize="small")
    ax.grid(alpha=0.3)
