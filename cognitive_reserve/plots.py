"""Figures from sweep summaries (matplotlib object API: no global state, no display needed)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cognitive_reserve.stats import LevelSummary


class MeanCiPoint(Protocol):
    """A point of a mean ± CI curve."""

    @property
    def level(self) -> float: ...
    @property
    def mean(self) -> float: ...
    @property
    def ci_low(self) -> float: ...
    @property
    def ci_high(self) -> float: ...


LEVEL_LABELS = {
    "gaussian_noise": "noise std σ",
    "random_deletion": "deletion probability p",
    "magnitude_pruning": "pruned fraction p (smallest |w|)",
}


def plot_sweep(summaries: Iterable[LevelSummary], path: str | Path, title: str = "") -> Path:
    """One panel per (metric, perturbation); one curve per model with its 95% CI band.

    A closed-form expectation, where the summaries carry one, is drawn dashed in the curve's
    colour. Levels whose trials include non-finite values are marked with ``x`` at the top.
    """
    summaries = list(summaries)
    metrics = list(dict.fromkeys(s.metric for s in summaries))
    perturbations = list(dict.fromkeys(s.perturbation for s in summaries))
    models = list(dict.fromkeys(s.model for s in summaries))
    fig = Figure(figsize=(4.2 * len(perturbations), 3.4 * len(metrics)), layout="constrained")
    axes = fig.subplots(len(metrics), len(perturbations), squeeze=False)
    cells: dict[tuple[str, str, str], list[LevelSummary]] = defaultdict(list)
    for s in summaries:
        cells[(s.metric, s.perturbation, s.model)].append(s)
    colors = _colors(len(models))
    for row, metric in enumerate(metrics):
        for col, perturbation in enumerate(perturbations):
            ax = axes[row][col]
            for model, color in zip(models, colors, strict=True):
                points = sorted(cells.get((metric, perturbation, model), []), key=lambda s: s.level)
                if points:
                    _draw_curve(ax, points, color, model)
            ax.set_xlabel(LEVEL_LABELS.get(perturbation, perturbation))
            ax.set_ylabel(metric)
            ax.set_title(perturbation.replace("_", " "))
            ax.grid(alpha=0.3)
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside right upper", fontsize="small")
    return save_figure(fig, path, title)


def draw_mean_ci(ax: Axes, points: Iterable[MeanCiPoint], *, color: object, label: str) -> None:
    """One curve of means (dots joined by a line) with its confidence band; non-finite means are left out.

    ``points`` are anything with ``level``, ``mean``, ``ci_low`` and ``ci_high`` (a ``LevelSummary``, a
    seed-mean point, ...), in level order. Every command that draws mean ± CI curves uses this.
    """
    finite = [p for p in points if math.isfinite(p.mean)]
    levels = [p.level for p in finite]
    ax.plot(levels, [p.mean for p in finite], color=color, label=label, marker=".")
    ax.fill_between(levels, [p.ci_low for p in finite], [p.ci_high for p in finite], color=color, alpha=0.2)


def _draw_curve(ax, points: list[LevelSummary], color, label: str) -> None:
    draw_mean_ci(ax, points, color=color, label=label)
    closed = [p for p in points if p.expected is not None and math.isfinite(p.expected)]
    if closed:
        ax.plot([p.level for p in closed], [p.expected for p in closed], color=color, linestyle="--")
    broken = [p.level for p in points if not math.isfinite(p.mean)]
    if broken:
        ax.plot(broken, [1.0] * len(broken), "x", color=color, transform=ax.get_xaxis_transform(), clip_on=False)


def _colors(count: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(i / max(count - 1, 1) * 0.9) for i in range(count)]


def save_figure(fig: Figure, path: str | Path, title: str = "", dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` (parent folders created), with ``title`` as its suptitle when given."""
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
