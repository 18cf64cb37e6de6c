"""Sweep tables on disk: the CSV contract, written row by row and read back."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from cognitive_reserve.rows import CSV_COLUMNS, LATER_COLUMNS, SweepRow
from cognitive_reserve.stats import SUMMARY_COLUMNS, LevelSummary


class SweepCsvWriter:
    """Appends rows to a sweep CSV, one flush per trial, so a killed run keeps every finished trial.

    Opening an existing file drops a torn last line (a kill in the middle of a write) first.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _drop_torn_last_line(self.path)
        is_new = not self.path.exists() or self.path.stat().st_size == 0
        self._file = self.path.open("a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        if is_new:
            self._writer.writerow(CSV_COLUMNS)
            self._file.flush()

    def write(self, rows: Iterable[SweepRow]) -> None:
        """Append ``rows`` (e.g. all metrics of one trial) with a single flush."""
        self._writer.writerows(row.csv_cells() for row in rows)
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> SweepCsvWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def read_sweep_csv(path: str | Path) -> list[SweepRow]:
    """Parse a sweep CSV written by this project back into rows (also one written before a column of
    ``LATER_COLUMNS`` existed: that column then reads as its default)."""
    with Path(path).open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        missing = set(CSV_COLUMNS) - set(LATER_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: not a sweep CSV, missing columns {sorted(missing)}")
        return [_parse_row(record) for record in reader]


def _drop_torn_last_line(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def write_summary_csv(path: str | Path, summaries: Iterable[LevelSummary]) -> Path:
    """Write per-level statistics (mean, CI, counts, closed form) next to the raw sweep CSV."""
    return write_records(path, SUMMARY_COLUMNS, (dataclasses.asdict(summary) for summary in summaries))


def write_records(path: str | Path, columns: Sequence[str], records: Iterable[Mapping[str, object]]) -> Path:
    """A CSV with ``columns`` from ``records`` (``None`` becomes an empty cell), replacing ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        for record in records:
            writer.writerow({k: "" if v is None else v for k, v in record.items()})
    return path


def _parse_row(record: dict[str, str]) -> SweepRow:
    return SweepRow(
        model=record["model"],
        num_tasks=_optional(int, record["num_tasks"]),
        perturbation=record["perturbation"],
        level=float(record["level"]),
        trial=int(record["trial"]),
        seed=int(record["seed"]),
        metric=record["metric"],
        value=float(record["value"]),
        expected=_optional(float, record["expected"]),
        stage=record["stage"],
        epoch=_optional(int, record["epoch"]),
        group=record.get("group") or LATER_COLUMNS["group"],
        eval_examples=_optional(int, record.get("eval_examples") or ""),
    )


def _optional(kind: type, text: str) -> object:
    return None if text == "" else kind(text)
