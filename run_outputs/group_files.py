"""The files of a layer-wise sweep run inside training (``PerturbationSweep`` with ``groups``).

Next to a sweep's raw CSV ``<stem>.csv`` (which holds every group's rows):

- ``write_group_files``: ``<stem>_groups_summary.csv`` (mean, 95% CI per group, perturbation, level and
  metric; ``group`` empty for all targets together) and ``<stem>_groups.png`` (group × level images).
- ``write_group_sensitivity``: sweeps during training, ``sensitivity_train_groups.csv`` (every sweep so far);
  ``plot_group_sensitivity``: ``sensitivity_train_groups.png`` (group × epoch, or × step, images at each level).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cognitive_reserve.layerwise import (
    GROUP_SENSITIVITY_COLUMNS,
    GroupSummary,
    plot_group_epochs,
    plot_group_levels,
    summarize_groups,
    write_group_summaries,
)
from cognitive_reserve.rows import SweepRow
from cognitive_reserve.sensitivity import training_axis

GROUP_SENSITIVITY_STEM = "sensitivity_train_groups"


@dataclass(frozen=True)
class GroupFiles:
    """What a layer-wise sweep wrote next to its raw CSV, and the statistics they hold."""

    summaries: list[GroupSummary]
    summary_csv: Path
    figure: Path


def write_group_files(
    rows: Sequence[SweepRow], out_dir: Path, stem: str, epoch: int | None = None, step: int | None = None
) -> GroupFiles:
    """Summarise ``rows`` per group into ``<stem>_groups_summary.csv`` and draw ``<stem>_groups.png`` (``epoch``
    and ``step``: of a sweep during training)."""
    summaries = summarize_groups(rows, epoch, step)
    summary_csv = write_group_summaries(out_dir / f"{stem}_groups_summary.csv", summaries)
    figure = plot_group_levels(summaries, out_dir / f"{stem}_groups.png", title=f"{stem.replace('_', ' ')}: per group")
    return GroupFiles(summaries, summary_csv, figure)


def write_group_sensitivity(history: Sequence[GroupSummary], out_dir: Path) -> Path:
    """``sensitivity_train_groups.csv``: ``epoch``, ``step``, ``group`` and the summary columns of every sweep
    during training."""
    return write_group_summaries(out_dir / f"{GROUP_SENSITIVITY_STEM}.csv", history, GROUP_SENSITIVITY_COLUMNS)


def plot_group_sensitivity(history: Sequence[GroupSummary], out_dir: Path) -> Path:
    """``sensitivity_train_groups.png``: each group's change of the mean metric over training, at each damaging
    level."""
    return plot_group_epochs(
        history,
        out_dir / f"{GROUP_SENSITIVITY_STEM}.png",
        "Damage to one group at a time: change from the "
        f"undamaged model, per {training_axis(entry.moment for entry in history)}",
    )
