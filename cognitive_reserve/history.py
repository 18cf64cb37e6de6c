"""A monitored quantity's history on disk: a tidy CSV ``step, epoch, name, quantity, value`` and its plot.

Written by the training monitors (spectral norms, weight norms) on global rank 0 only. A resumed
run first cuts the file back to the steps its checkpoint had seen, so the history continues
without the rows of the interrupted tail and without duplicates.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

HISTORY_COLUMNS = ("step", "epoch", "name", "quantity", "value")


@dataclass(frozen=True)
class HistoryRow:
    """One value of one quantity (e.g. ``sigma_max``) of one named weight at one optimizer step."""

    step: int
    epoch: int
    name: str
    quantity: str
    value: float


class HistoryCsv:
    """Append-only history file; ``truncate_after(step)`` drops rows newer than ``step``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def truncate_after(self, step: int) -> None:
        """Keep rows with ``step <= step`` (all rows are dropped for ``step < 0``)."""
        kept = [row for row in self.read() if row.step <= step] if self.path.exists() else []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(HISTORY_COLUMNS)
            writer.writerows(_as_csv(row) for row in kept)

    def append(self, rows: Iterable[HistoryRow]) -> None:
        if not self.path.exists():
            self.truncate_after(-1)
        with self.path.open("a", newline="", encoding="utf-8") as file:
            csv.writer(file).writerows(_as_csv(row) for row in rows)

    def read(self) -> list[HistoryRow]:
        with self.path.open(newline="", encoding="utf-8") as file:
            return [
                HistoryRow(int(r["step"]), int(r["epoch"]), r["name"], r["quantity"], float(r["value"]))
                for r in csv.DictReader(file)
            ]


def plot_history(rows: Sequence[HistoryRow], quantity: str, path: str | Path, *, ylabel: str, title: str) -> Path:
    """One line per name: ``quantity`` against the optimizer step."""
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for row in rows:
        if row.quantity == quantity:
            series[row.name].append((row.step, row.value))
    fig = Figure(figsize=(6.4, 3.8), layout="constrained")
    ax = fig.subplots()
    for name, points in series.items():
        points.sort()
        ax.plot([s for s, _ in points], [v for _, v in points], marker="." if len(points) < 50 else None, label=name)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(series) <= 24:
        ax.legend(fontsize="x-small", ncols=2 if len(series) > 8 else 1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def _as_csv(row: HistoryRow) -> tuple:
    return (row.step, row.epoch, row.name, row.quantity, repr(row.value))
