"""Figures of the robustness slope R(T) against T: several labelled curves, optional 95% bands."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from cognitive_reserve.plots import save_figure


@dataclass(frozen=True)
class SlopeCurve:
    """One labelled curve: ``values`` at ``num_tasks``, with an optional band ``(low, high)``; ``color``
    (matplotlib's next one when ``None``) and ``linestyle`` tell curves of a grid apart."""

    num_tasks: Sequence[int]
    values: Sequence[float]
    band: tuple[Sequence[float], Sequence[float]] | None = None
    color: str | None = None
    linestyle: str = "-"


def plot_slope_curves(curves: Mapping[str, SlopeCurve], path: str | Path, *, ylabel: str, title: str = "") -> Path:
    """Every curve of ``curves`` on one axis (T on x), bands shaded; written by ``save_figure``."""
    fig = Figure(figsize=(5.2, 3.6), layout="constrained")
    ax = fig.subplots()
    for label, curve in curves.items():
        (line,) = ax.plot(
            curve.num_tasks,
            curve.values,
            marker="o",
            markersize=3,
            label=label,
            color=curve.color,
            linestyle=curve.linestyle,
        )
        if curve.band is not None:
            ax.fill_between(curve.num_tasks, *curve.band, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("number of tasks T")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return save_figure(fig, path, title)
