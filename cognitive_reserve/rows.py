"""One measurement of a sweep (``SweepRow``) and the column order of every sweep CSV."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

#: Column order of every sweep CSV (a contract: other tools read these files).
CSV_COLUMNS = (
    "model", "num_tasks", "perturbation", "level", "trial", "seed",
    "metric", "value", "expected", "stage", "epoch", "eval_examples",
)  # fmt: skip
#: Columns added after the first release: a CSV written before them still reads (their cells come back empty).
LATER_COLUMNS = ("eval_examples",)


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
    #: Evaluation examples a subsampled trial scored (``cognitive_reserve.subsampling``); None: the whole set.
    eval_examples: int | None = None

    def csv_cells(self) -> tuple[Any, ...]:
        """Values in ``CSV_COLUMNS`` order, for ``csv.writer`` (which writes ``None`` as an empty cell)."""
        return _CSV_CELLS(self)
