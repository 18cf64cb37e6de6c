"""One task's ridge least squares from a single pass over (possibly sharded) data, in its smaller form.

For ``n`` rows of dimension ``d`` the primal solution ``c = (XᵀX + λI)⁻¹Xᵀy`` needs a d×d Gram
matrix, the dual solution ``c = Xᵀ(XXᵀ + λI)⁻¹y`` an n×n one; both give the same ``c`` for λ > 0.
With encoder features (d = 2049 for ResNet-50) and few rows per task the dual form is far
smaller: a family of models T = 1..10 would otherwise hold 55 float64 Grams, about 1.9 GB.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

#: Sums a tensor over all processes (identity on one process).
SumOverRanks = Callable[[torch.Tensor], torch.Tensor]
#: Concatenates every process's rows (any number each) along dim 0 (identity on one process).
GatherRows = Callable[[torch.Tensor], torch.Tensor]


class RidgeProblem:
    """Training rows of one task, kept as rows while there are at most ``dim`` here, else as sums.

    ``add`` stores ``(x, y)`` batches (float64); once this process holds more than ``dim`` rows they
    are folded into ``XᵀX`` and ``Xᵀy``. ``solve`` agrees with the other processes on the form:
    dual when all of them together hold at most ``dim`` rows (then none has folded), else primal.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._reset()

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        x, y = x.double(), y.double()
        self.count += len(x)
        if self.gram is None:
            self.rows.append(x)
            self.targets.append(y)
            if self.count > self.dim:
                self._fold()
        else:
            self.gram += x.T @ x
            self.moment += x.T @ y

    def solve(
        self, ridge: float, sum_over_ranks: SumOverRanks, gather_rows: GatherRows, device: torch.device
    ) -> torch.Tensor:
        """The task vector ``c`` (d, float64) over the rows of all processes; every process calls it."""
        total = int(sum_over_ranks(torch.tensor(float(self.count), dtype=torch.float64, device=device)))
        if total == 0:
            c = torch.zeros(self.dim, dtype=torch.float64, device=device)
        elif total > self.dim:
            if self.gram is None:
                self._fold(device)
            gram, moment = sum_over_ranks(self.gram), sum_over_ranks(self.moment)
            c = torch.linalg.solve(gram + ridge * torch.eye(self.dim, dtype=gram.dtype, device=device), moment)
        else:
            x, y = self._stacked(device)
            x, y = gather_rows(x), gather_rows(y)
            kernel = x @ x.T + ridge * torch.eye(len(x), dtype=x.dtype, device=device)
            c = x.T @ torch.linalg.solve(kernel, y)
        self._reset()
        return c

    def _fold(self, device: torch.device | None = None) -> None:
        x, y = self._stacked(device)
        self.gram, self.moment = x.T @ x, x.T @ y
        self.rows, self.targets = [], []

    def _stacked(self, device: torch.device | None) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.rows:
            return (
                torch.zeros(0, self.dim, dtype=torch.float64, device=device),
                torch.zeros(0, dtype=torch.float64, device=device),
            )
        return torch.cat(self.rows), torch.cat(self.targets)

    def _reset(self) -> None:
        self.count = 0
        self.rows: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []
        self.gram: torch.Tensor | None = None
        self.moment: torch.Tensor | None = None
