"""One measurement of a sweep (``SweepRow``) and the column order of every sweep CSV.

``group`` names the part of the targets a row's trial damaged (a layer-wise sweep,
``cognitive_reserve.groups``); empty: all targets together, the only rows of an ordinary sweep.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: Column order of every sweep CSV (a contract: other tools read these files).
CSV_COLUMNS = (
    "model",
    "num_tasks",
    "perturbation",
    "level",
    "trial",
    "seed",
    "metric",
    "value",
    "expected",
    "stage",
    "epoch",
    "group",
    "eval_examples",
)
#: Columns appended after the first release, with the value a file written before them reads as.
LATER_COLUMNS = {"group": "", "eval_examples": None}


_CSV_CELLS = operator.attrgetter(*CSV_COLUMNS)


@dataclass(frozen=True)
class SweepRow:
    """One (model, perturbation, level, trial, metric) measurement: one line of the CSV."""

    model: str
    num_tasks: int | None
    perturbation: str
    level: float
    trial: int
    seed: int
    metric: str
    value: float
    expected: float | None = None
    stage: str = ""
    epoch: int | None = None
    group: str = ""
    #: Evaluation examples a subsampled trial scored (``cognitive_reserve.subsampling``); None: the whole set.
    eval_examples: int | None = None

    def csv_cells(self) -> tuple[Any, ...]:
        """Values in ``CSV_COLUMNS`` order, for ``csv.writer`` (which writes ``None`` as an empty cell)."""
        return _CSV_CELLS(self)


def all_targets(rows: Iterable[SweepRow]) -> list[SweepRow]:
    """The rows of the sweep that damaged all targets together (a layer-wise sweep's reference)."""
    return [row for row in rows if not row.group]
