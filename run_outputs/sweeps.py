"""The files of a sweep run inside training: summary CSV, figure, sensitivity-over-training view.

``PerturbationSweep`` decides when a sweep runs; this module decides what it leaves on disk:

- ``write_sweep_files``: ``<stem>_summary.csv`` (mean, 95% CI and how it was made, closed form per level) and
  ``<stem>.png``.
- ``write_sensitivity_table``: ``sensitivity_train.csv``, every sweep during training so far.
- ``plot_sensitivity``: ``sensitivity_train.png`` (a curve per sweep) and ``sensitivity_train_heatmap.png``
  (each sweep's change from its undamaged model, over training).
- ``first_last_crossovers``: where a sweep's last model overtakes its first (e.g. T = 20 over T = 1).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cognitive_reserve.crossover import CrossOver, find_crossover
from cognitive_reserve.errors import ConfigError
from cognitive_reserve.io import write_summary_csv
from cognitive_reserve.metrics import metric_direction
from cognitive_reserve.plots import metric_label, plot_sweep
from cognitive_reserve.sensitivity import (
    EpochSummary,
    plot_sensitivity_curves,
    plot_sensitivity_heatmap,
    training_axis,
    write_sensitivity_csv,
)
from cognitive_reserve.stats import LevelSummary, more_trials_needed, summarize
from cognitive_reserve.sweep import SweepRow

SENSITIVITY_STEM = "sensitivity_train"


@dataclass(frozen=True)
class SweepFiles:
    """What one sweep wrote next to its raw CSV, and the statistics they hold."""

    summaries: list[LevelSummary]
    summary_csv: Path
    figure: Path


@dataclass(frozen=True)
class SensitivityFigures:
    curves: Path
    heatmap: Path


def write_sweep_files(rows: Sequence[SweepRow], out_dir: Path, stem: str) -> SweepFiles:
    """Summarise ``rows`` into ``<stem>_summary.csv`` and draw ``<stem>.png`` under ``out_dir``; warn (once per
    sweep, ``more_trials_needed``) where levels have no honest interval."""
    summaries = summarize(rows)
    message = more_trials_needed(summaries)
    if message:
        warnings.warn(message, stacklevel=2)
    summary_csv = write_summary_csv(out_dir / f"{stem}_summary.csv", summaries)
    figure = plot_sweep(summaries, out_dir / f"{stem}.png", title=sweep_title(stem, summaries))
    return SweepFiles(summaries, summary_csv, figure)


def sweep_title(stem: str, summaries: Sequence[LevelSummary]) -> str:
    """What a sweep figure shows, e.g. ``Damage after fit (weights of epoch 0): MSE (task vector) of 12 models``
    (``... during training (epoch 0, step 100) ...`` for a sweep named by its step too)."""
    found = re.fullmatch(r"sweep_(\w+?)_epoch(\d+)(?:_step(\d+))?", stem)
    when = {
        "fit": "after fit (weights of epoch {})",
        "test": "of the tested checkpoint (epoch {})",
        "train": "during training (epoch {})",
    }
    at = f"{int(found[2])}, step {int(found[3])}" if found and found[3] else found and int(found[2])
    stage = when.get(found[1], f"{found[1]} (epoch {{}})").format(at) if found else stem
    metrics = ", ".join(metric_label(m) for m in dict.fromkeys(s.metric for s in summaries))
    models = len({s.model for s in summaries})
    return f"Damage {stage}: {metrics} of {models} model{'s' if models != 1 else ''}"


def write_sensitivity_table(history: Sequence[EpochSummary], out_dir: Path) -> Path:
    """``sensitivity_train.csv``: ``epoch``, ``step`` + the summary columns of every sweep during training so far."""
    return write_sensitivity_csv(out_dir / f"{SENSITIVITY_STEM}.csv", history)


def plot_sensitivity(history: Sequence[EpochSummary], out_dir: Path) -> SensitivityFigures:
    """The sensitivity-over-training figures: one curve per sweep, and the training × level image of each sweep's
    change from its undamaged model."""
    axis = training_axis(entry.moment for entry in history)
    return SensitivityFigures(
        curves=plot_sensitivity_curves(
            history, out_dir / f"{SENSITIVITY_STEM}.png", f"Damage during training: mean metric per {axis}"
        ),
        heatmap=plot_sensitivity_heatmap(
            history,
            out_dir / f"{SENSITIVITY_STEM}_heatmap.png",
            f"Damage during training: change from the undamaged model, per {axis}",
        ),
    )


def first_last_crossovers(rows: Sequence[SweepRow]) -> list[CrossOver]:
    """Per perturbation and metric (of known direction), where the sweep's last model overtakes its
    first one; nothing for a sweep of one model, or where the two swept different grids."""
    models = list(dict.fromkeys(row.model for row in rows))
    if len(models) < 2:
        return []
    first, last = models[0], models[-1]
    found = []
    for perturbation, metric in dict.fromkeys((row.perturbation, row.metric) for row in rows):
        if metric_direction(metric) is None:
            continue
        cells = [r for r in rows if r.perturbation == perturbation and r.metric == metric]
        rows_a, rows_b = [r for r in cells if r.model == first], [r for r in cells if r.model == last]
        try:
            found.append(find_crossover(rows_a, rows_b, perturbation, metric))
        except ConfigError:  # different grids: no single cross-over to state
            continue
    return found
