"""Largest singular values of weight matrices: exact, or tracked cheaply by warm-started power iteration.

``power_iteration`` is a block (subspace) power iteration on ``WᵀW``: the basis of the top right
singular subspace is kept between calls, so two steps follow a matrix that changes slowly during
training, and the last step's change says whether more steps are needed. Its estimate is the
largest singular value of ``Wᵀ U`` for an orthonormal ``U``: a lower bound of ``σ_max(W)``, exact
once the basis has converged. ``exact_basis`` starts the basis from a full SVD, so the first
estimate is exact.

``WeightMatrix`` names one monitored 2-D weight, or one part of a fused weight (GPT-2's ``c_attn``
holds Q, K and V side by side along its output dimension).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class WeightMatrix:
    """A named 2-D weight, or part ``part`` of ``parts`` equal chunks of it along ``split_dim``."""

    name: str
    parameter: torch.Tensor
    split_dim: int | None = None
    part: int = 0
    parts: int = 1

    def value(self) -> torch.Tensor:
        """The current matrix (a view of the parameter, detached), in float32 or wider."""
        weight = self.parameter.detach()
        if self.split_dim is not None:
            weight = weight.chunk(self.parts, dim=self.split_dim)[self.part]
        return weight if weight.dtype in (torch.float32, torch.float64) else weight.float()


def squared_frobenius(matrix: torch.Tensor) -> torch.Tensor:
    """``‖W‖_F²`` as a 0-d tensor (no host sync)."""
    return matrix.pow(2).sum()


def singular_values(matrix: torch.Tensor) -> torch.Tensor:
    """All singular values, largest first (``torch.linalg.svdvals``)."""
    return torch.linalg.svdvals(matrix)


def exact_basis(matrix: torch.Tensor, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(σ_max, V)``: the exact largest singular value and the top ``block_size`` right singular vectors."""
    _, values, vh = torch.linalg.svd(matrix, full_matrices=False)
    size = max(1, min(block_size, vh.shape[0]))
    return values[0], vh[:size].T.contiguous()


def power_iteration(
    matrix: torch.Tensor, basis: torch.Tensor, iterations: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(σ_max estimate, the estimate one step earlier, new basis)`` after ``iterations`` >= 2 block
    power steps from ``basis`` (n × b). Estimates never exceed ``σ_max``; a zero matrix gives 0.

    The estimates converge geometrically, so the last step's relative change tells how far the
    estimate still is from ``σ_max`` (a few times that change while the basis is converging).
    """
    basis = basis.to(dtype=matrix.dtype)
    estimates = []
    for _ in range(max(iterations, 2)):
        left, _ = torch.linalg.qr(matrix @ basis)
        basis, triangular = torch.linalg.qr(matrix.T @ left)
        estimates.append(torch.linalg.matrix_norm(triangular, ord=2))
    return estimates[-1], estimates[-2], basis
