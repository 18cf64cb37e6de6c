"""Figures from sweep summaries (matplotlib object API: no global state, no display needed)."""

from __future__ import annotations

import math
import textwrap
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.colors import Normalize, SymLogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from cognitive_reserve.intervals import BOOTSTRAP_T, CLOPPER_PEARSON
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
    "bits_per_byte": "bits per byte",
    "perplexity": "perplexity",
    "mse": "MSE",
    "mcc": "Matthews correlation",
    "accuracy": "accuracy",
    "f1": "F1",
    "loss": "loss",
}
#: Colours that neighbours never share; with more models than colours the markers tell them apart.
PALETTE = tuple(f"C{i}" for i in range(10))
MARKERS = ("o", "s", "^", "D", "v")
#: The proxies of the style legend: what a line style or a band means.
STYLE_MEASURED = "measured: mean over trials"
STYLE_CLOSED_FORM = "closed form (expected value)"
STYLE_NONFINITE = "a trial gave a non-finite value"
#: The least half-range of a colour scale of changes from the undamaged model, as a fraction of the undamaged
#: value: smaller changes stay pale instead of being stretched to full contrast.
CHANGE_FLOOR = 0.05
#: A change image whose largest change exceeds this many times its median one is coloured on a symmetric log scale.
HEAVY_TAIL = 100
STYLE_NO_INTERVAL = "hollow: no honest 95% CI (too few trials, or unbounded)"
#: Legend labels longer than this many characters are wrapped (the legend would overflow a narrow figure).
LEGEND_LINE = 90
#: How a band's legend names each interval method of ``cognitive_reserve.intervals``.
METHOD_WORDS = {BOOTSTRAP_T: BOOTSTRAP_T, CLOPPER_PEARSON: "Clopper–Pearson where all trials tied"}


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


def band_label(trials: int, methods: Iterable[str] = (BOOTSTRAP_T,)) -> str:
    """What a sweep's band is: the 95% CI of the mean over its trials, by the ``methods`` its levels used
    (``cognitive_reserve.intervals``: bootstrap-t, and Clopper–Pearson where all trials tied)."""
    label = f"95% CI of the mean over up to {trials} trials ({method_words(methods)}, within the metric's range)"
    return label if len(label) <= LEGEND_LINE else textwrap.fill(label, LEGEND_LINE * 2 // 3)


def method_words(methods: Iterable[str]) -> str:
    """The interval methods among ``methods`` in words (``METHOD_WORDS``; bootstrap-t where none is named)."""
    used = set(methods)
    return ", ".join([words for method, words in METHOD_WORDS.items() if method in used] or [BOOTSTRAP_T])


def interval_handles(points: Sequence[MeanCiPoint], band: str) -> list[Artist]:
    """Legend entries for the intervals of ``points``: the band (labelled ``band``), and the hollow marker of a
    level without an honest interval where one is drawn (``draw_mean_ci``)."""
    handles: list[Artist] = [Patch(color="black", alpha=0.2, label=band)]
    if any(math.isfinite(p.mean) and not _bounded(p) for p in points):
        handles.append(
            Line2D([], [], color="black", marker="o", fillstyle="none", linestyle="", label=STYLE_NO_INTERVAL)
        )
    return handles


def trial_band_label(summaries: Sequence[LevelSummary]) -> str:
    """``band_label`` of per-level summaries over trials: their largest trial count, the methods they used."""
    return band_label(max((s.n for s in summaries), default=1), (s.method for s in summaries if _bounded(s)))


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
    band, *hollow = interval_handles(summaries, trial_band_label(summaries))
    handles: list[Artist] = [Line2D([], [], color="black", marker="o", markersize=3, label=STYLE_MEASURED), band]
    if any(s.expected is not None and math.isfinite(s.expected) for s in summaries):
        handles.insert(1, Line2D([], [], color="black", linestyle="--", label=STYLE_CLOSED_FORM))
    if any(not math.isfinite(s.mean) for s in summaries):
        handles.append(Line2D([], [], color="black", marker="x", linestyle="", label=STYLE_NONFINITE))
    return handles + hollow


def draw_mean_ci(ax: Axes, points: Iterable[MeanCiPoint], *, color: object, label: str, marker: object = ".") -> None:
    """One curve of means (dots joined by a line) with its confidence band; non-finite means are left out.

    ``points`` are anything with ``level``, ``mean``, ``ci_low`` and ``ci_high`` (a ``LevelSummary``, a
    seed-mean point, ...), in level order. Every command that draws mean ± CI curves uses this. A level without
    a finite interval (flagged: NaN ends; or a side the trials cannot bound) breaks the band there and gets a
    hollow marker.
    """
    finite = [p for p in points if math.isfinite(p.mean)]
    levels = [p.level for p in finite]
    ax.plot(levels, [p.mean for p in finite], color=color, label=label, marker=marker, markersize=3)
    bounded = [_bounded(p) for p in finite]
    low = [p.ci_low if ok else math.nan for p, ok in zip(finite, bounded, strict=True)]
    high = [p.ci_high if ok else math.nan for p, ok in zip(finite, bounded, strict=True)]
    ax.fill_between(levels, low, high, color=color, alpha=0.2)
    open_levels = [p for p, ok in zip(finite, bounded, strict=True) if not ok]
    if open_levels:
        ax.plot([p.level for p in open_levels], [p.mean for p in open_levels], "o", color=color, fillstyle="none")


def _bounded(point: MeanCiPoint) -> bool:
    return math.isfinite(point.ci_low) and math.isfinite(point.ci_high)


def _draw_curve(ax: Axes, points: list[LevelSummary], style: dict[str, object], label: str) -> None:
    color = style["color"]
    draw_mean_ci(ax, points, color=color, label=label, marker=style["marker"])
    closed = [p for p in points if p.expected is not None and math.isfinite(p.expected)]
    if closed:
        ax.plot([p.level for p in closed], [p.expected for p in closed], color=color, linestyle="--", linewidth=1)
    broken = [p.level for p in points if not math.isfinite(p.mean)]
    if broken:
        ax.plot(broken, [1.0] * len(broken), "x", color=color, transform=ax.get_xaxis_transform(), clip_on=False)


def draw_change_image(fig: Figure, ax: Axes, image: np.ndarray, undamaged: float | None, label: str) -> None:
    """``image`` (changes of a metric from the undamaged model, NaN cells left blank) on a red–blue scale centred
    on 0 (red: the metric grew). Its half-range is the largest change, but at least ``CHANGE_FLOOR`` of
    ``undamaged`` (the typical undamaged value; None: no floor), so noise-sized changes stay pale; a heavy-tailed
    image (largest change above ``HEAVY_TAIL`` times the median) is coloured on a symmetric log scale, linear
    within the floor. The colour bar is labelled ``label`` and states the range in the metric's units (``scale ±0.1
    (5% of 2.015)``: the floor; ``scale ±1.5 (largest)``: the largest change)."""
    finite = np.abs(image[np.isfinite(image)])
    largest = float(finite.max()) if finite.size else 0.0
    floor = CHANGE_FLOOR * abs(undamaged) if undamaged is not None and math.isfinite(undamaged) else 0.0
    span = max(largest, floor) or 1.0
    typical = float(np.median(finite[finite > 0])) if (finite > 0).any() else span
    heavy = largest > HEAVY_TAIL * typical
    linear = max(floor, span / HEAVY_TAIL)
    norm = SymLogNorm(linear, vmin=-span, vmax=span) if heavy else Normalize(-span, span)
    shown = ax.imshow(image, aspect="auto", interpolation="nearest", cmap="RdBu_r", norm=norm)
    if floor and span == floor:
        scale = f"scale ±{span:.3g} ({CHANGE_FLOOR:.0%} of {abs(undamaged):.4g})"
    else:
        scale = f"scale ±{span:.3g} (largest)" + (f", log beyond ±{linear:.3g}" if heavy else "")
    bar = fig.colorbar(shown, ax=ax, label=f"{label}\n{scale}")
    if not heavy:
        bar.formatter.set_useOffset(False)
    ax.grid(False)


def save_figure(fig: Figure, path: str | Path, title: str = "", dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` (parent folders created), with ``title`` as its suptitle when given."""
    if title:
        fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
