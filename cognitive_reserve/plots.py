"""Figures from sweep summaries (matplotlib object API: no global state, no display needed)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from cognitive_reserve.perturbations import LEVEL_LABELS  # each perturbation's own label (reports import it here)
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


#: Human names of metric keys; a suffix after the name is its language or variant (``bits_per_byte_en``).
METRIC_NAMES = {
    "bits_per_byte": "bits per byte", "perplexity": "perplexity", "mse": "MSE", "mcc": "Matthews correlation",
    "accuracy": "accuracy", "f1": "F1", "loss": "loss",
}  # fmt: skip
#: Colours that neighbours never share; with more models than colours the markers tell them apart.
PALETTE = tuple(f"C{i}" for i in range(10))
MARKERS = ("o", "s", "^", "D", "v")
#: The proxies of the style legend: what a line style or a band means.
STYLE_MEASURED = "measured: mean over trials"
STYLE_CLOSED_FORM = "closed form (expected value)"
STYLE_NONFINITE = "a trial gave a non-finite value"


def metric_label(metric: str) -> str:
    """A human name for a metric key: ``bits_per_byte_en`` → ``bits per byte (en)``, ``mse_task_vector`` →
    ``MSE (task vector)``, ``val/accuracy`` → ``accuracy``."""
    name = metric.rsplit("/", 1)[-1]
    for key, words in METRIC_NAMES.items():
        if name == key:
            return words
        if name.startswith(f"{key}_"):
            return f"{words} ({name[len(key) + 1 :].replace('_', ' ')})"
    return name.replace("_", " ")


def band_label(trials: int) -> str:
    """What a sweep's band is: the 95% CI of the mean over its trials."""
    return f"95% CI of the mean over {trials} trials (Student t, within the metric's range)"


def plot_sweep(summaries: Iterable[LevelSummary], path: str | Path, title: str = "") -> Path:
    """One panel per (metric, perturbation); one curve per model with its 95% CI band.

    A closed-form expectation, where the summaries carry one, is drawn dashed in the curve's
    colour. Levels whose trials include non-finite values are marked with ``x`` at the top. Two legends:
    the models (colour and marker), and what the line styles and the band mean.
    """
    summaries = list(summaries)
    metrics = list(dict.fromkeys(s.metric for s in summaries))
    perturbations = list(dict.fromkeys(s.perturbation for s in summaries))
    models = list(dict.fromkeys(s.model for s in summaries))
    fig = Figure(figsize=(4.2 * len(perturbations) + 1.6, 3.4 * len(metrics) + 0.8), layout="constrained")
    axes = fig.subplots(len(metrics), len(perturbations), squeeze=False)
    cells: dict[tuple[str, str, str], list[LevelSummary]] = defaultdict(list)
    for s in summaries:
        cells[(s.metric, s.perturbation, s.model)].append(s)
    for row, metric in enumerate(metrics):
        for col, perturbation in enumerate(perturbations):
            ax = axes[row][col]
            for index, model in enumerate(models):
                points = sorted(cells.get((metric, perturbation, model), []), key=lambda s: s.level)
                if points:
                    _draw_curve(ax, points, model_style(index), model)
            ax.set_xlabel(LEVEL_LABELS.get(perturbation, perturbation))
            ax.set_ylabel(metric_label(metric))
            ax.set_title(perturbation.replace("_", " "))
            ax.grid(alpha=0.3)
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside right upper", fontsize="small", title="model")
    fig.legend(handles=style_handles(summaries), loc="outside lower center", ncols=4, fontsize="small")
    return save_figure(fig, path, title)


def model_style(index: int) -> dict[str, object]:
    """Colour and marker of the ``index``-th model: ten distinct colours, then the next marker."""
    return {"color": PALETTE[index % len(PALETTE)], "marker": MARKERS[index // len(PALETTE) % len(MARKERS)]}


def style_handles(summaries: Sequence[LevelSummary]) -> list[Artist]:
    """Legend entries for what the styles mean: solid = measured mean, dashed = closed form, band = 95% CI."""
    trials = max((s.n for s in summaries), default=1)
    handles: list[Artist] = [
        Line2D([], [], color="black", marker="o", markersize=3, label=STYLE_MEASURED),
        Patch(color="black", alpha=0.2, label=band_label(trials)),
    ]
    if any(s.expected is not None and math.isfinite(s.expected) for s in summaries):
        handles.insert(1, Line2D([], [], color="black", linestyle="--", label=STYLE_CLOSED_FORM))
    if any(not math.isfinite(s.mean) for s in summaries):
        handles.append(Line2D([], [], color="black", marker="x", linestyle="", label=STYLE_NONFINITE))
    return handles


def draw_mean_ci(ax: Axes, points: Iterable[MeanCiPoint], *, color: object, label: str, marker: object = ".") -> None:
    """One curve of means (dots joined by a line) with its confidence band; non-finite means are left out.

    ``points`` are anything with ``level``, ``mean``, ``ci_low`` and ``ci_high`` (a ``LevelSummary``, a
    seed-mean point, ...), in level order. Every command that draws mean ± CI curves uses this.
    """
    finite = [p for p in points if math.isfinite(p.mean)]
    levels = [p.level for p in finite]
    ax.plot(levels, [p.mean for p in finite], color=color, label=label, marker=marker, markersize=3)
    ax.fill_between(levels, [p.ci_low for p in finite], [p.ci_high for p in finite], color=color, alpha=0.2)


def _draw_curve(ax: Axes, points: list[LevelSummary], style: dict[str, object], label: str) -> None:
    color = style["color"]
    draw_mean_ci(ax, points, color=color, label=label, marker=style["marker"])
    closed = [p for p in points if p.expected is not None and math.isfinite(p.expected)]
    if closed:
        ax.plot([p.level for p in closed], [p.expected for p in closed], color=color, linestyle="--", linewidth=1)
    broken = [p.level for p in points if not math.isfinite(p.mean)]
    if broken:
        ax.plot(broken, [1.0] * len(broken), "x", color=color, transform=ax.get_xaxis_transform(), clip_on=False)


def save_figure(fig: Figure, path: str | Path, title: str = "", dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` (parent folders created), with ``title`` as its suptitle when given."""
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
