"""The files of a layer-wise sweep run inside training (``PerturbationSweep`` with ``groups``).

Next to a sweep's raw CSV ``<stem>.csv`` (which holds every group's rows):

- ``write_group_files``: ``<stem>_groups_summary.csv`` (mean, 95% CI per group, perturbation, level and
  metric; ``group`` empty for all targets together) and ``<stem>_groups.png`` (group × level images).
- ``write_group_sensitivity``: per-epoch sweeps, ``sensitivity_train_groups.csv`` (every epoch so far);
  ``plot_group_sensitivity``: ``sensitivity_train_groups.png`` (group × epoch images at each level).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cognitive_reserve.layerwise import (
    GroupSummary,
    plot_group_epochs,
    plot_group_levels,
    summarize_groups,
    write_group_summaries,
)
from cognitive_reserve.rows import SweepRow

GROUP_SENSITIVITY_STEM = "sensitivity_train_groups"


@dataclass(frozen=True)
class GroupFiles:
    """What a layer-wise sweep wrote next to its raw CSV, and the statistics they hold."""

    summaries: list[GroupSummary]
    summary_csv: Path
    figure: Path


def write_group_files(rows: Sequence[SweepRow], out_dir: Path, stem: str, epoch: int | None = None) -> GroupFiles:
    """Summarise ``rows`` per group into ``<stem>_groups_summary.csv`` and draw ``<stem>_groups.png``."""
    summaries = summarize_groups(rows, epoch)
    summary_csv = write_group_summaries(out_dir / f"{stem}_groups_summary.csv", summaries)
    figure = plot_group_levels(summaries, out_dir / f"{stem}_groups.png", title=f"{stem.replace('_', ' ')}: per group")
    return GroupFiles(summaries, summary_csv, figure)


def write_group_sensitivity(history: Sequence[GroupSummary], out_dir: Path) -> Path:
    """``sensitivity_train_groups.csv``: ``epoch``, ``group`` and the summary columns of every per-epoch sweep."""
    return write_group_summaries(out_dir / f"{GROUP_SENSITIVITY_STEM}.csv", history)


def plot_group_sensitivity(history: Sequence[GroupSummary], out_dir: Path) -> Path:
    """``sensitivity_train_groups.png``: each group's mean metric over epochs, at each damaging level."""
    return plot_group_epochs(
        history, out_dir / f"{GROUP_SENSITIVITY_STEM}.png", "change from the undamaged model, per group and epoch"
    )
