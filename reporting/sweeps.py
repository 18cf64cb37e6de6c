"""The files of a sweep run inside training: summary CSV, figure, sensitivity-over-training view.

``PerturbationSweep`` decides when a sweep runs; this module decides what it leaves on disk:

- ``write_sweep_files``: ``<stem>_summary.csv`` (mean, 95% CI, closed form per level) and ``<stem>.png``.
- ``write_sensitivity_table``: ``sensitivity_train.csv``, every per-epoch sweep so far.
- ``plot_sensitivity``: ``sensitivity_train.png`` (a curve per epoch) and ``sensitivity_train_heatmap.png``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from robustness.io import write_summary_csv
from robustness.plots import plot_sweep
from robustness.sensitivity import (
    EpochSummary,
    plot_sensitivity_curves,
    plot_sensitivity_heatmap,
    write_sensitivity_csv,
)
from robustness.stats import LevelSummary, summarize
from robustness.sweep import SweepRow

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
    """Summarise ``rows`` into ``<stem>_summary.csv`` and draw ``<stem>.png`` under ``out_dir``."""
    summaries = summarize(rows)
    summary_csv = write_summary_csv(out_dir / f"{stem}_summary.csv", summaries)
    figure = plot_sweep(summaries, out_dir / f"{stem}.png", title=stem.replace("_", " "))
    return SweepFiles(summaries, summary_csv, figure)


def write_sensitivity_table(history: Sequence[EpochSummary], out_dir: Path) -> Path:
    """``sensitivity_train.csv``: ``epoch`` + the summary columns of every per-epoch sweep so far."""
    return write_sensitivity_csv(out_dir / f"{SENSITIVITY_STEM}.csv", history)


def plot_sensitivity(history: Sequence[EpochSummary], out_dir: Path) -> SensitivityFigures:
    """The sensitivity-over-training figures: one curve per epoch, and the epoch × level image."""
    return SensitivityFigures(
        curves=plot_sensitivity_curves(history, out_dir / f"{SENSITIVITY_STEM}.png", "sensitivity per epoch"),
        heatmap=plot_sensitivity_heatmap(history, out_dir / f"{SENSITIVITY_STEM}_heatmap.png", "mean per epoch"),
    )
