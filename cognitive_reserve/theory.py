"""Closed forms of paper §2 for a linear representation ``x ↦ Γᵀ W x``.

Shapes follow the paper: task vectors ``C`` are ``d × T``, the representation ``W`` is ``k × d``
and the heads ``Γ`` are ``k × T``; the prediction for task ``i`` is ``γ_iᵀ W x``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cognitive_reserve.errors import ConfigError
from cognitive_reserve.perturbations import GaussianNoise, Perturbation, RandomDeletion
from cognitive_reserve.stats import mean_ci
from cognitive_reserve.unit_deletion import NeuronDeletion
from cognitive_reserve.units import unit_count

#: Singular values closer than this (relative to the largest) count as tied.
TIE_TOLERANCE = 1e-9


def svd_solution(task_vectors: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The SVD solution of the factorized best rank-k problem (paper eq. 4): ``W = U_kᵀ, Γ = Σ_k V_kᵀ``.

    ``W`` has orthonormal rows. For ``k > T`` the extra rows of ``W`` span unused directions
    and the matching rows of ``Γ`` are zero. Tied singular values are resolved symmetrically
    (the first vector of a tied block is aligned with the all-tasks direction), which makes
    the solution unique: e.g. for ``C = [e1, e2]`` and ``k = 1``, ``W = [1, 1, 0]/√2``.
    """
    if k < 1:
        raise ConfigError("k", k, "must be >= 1")
    d, num_tasks = task_vectors.shape
    if k > d:
        raise ConfigError("k", k, f"must be <= the input dimension d={d}")
    u, s, vh = torch.linalg.svd(task_vectors, full_matrices=k > min(d, num_tasks))
    u, vh = _symmetric_ties(u, s, vh)
    singular = torch.zeros(k, dtype=s.dtype, device=s.device)
    singular[: min(k, s.numel())] = s[:k]
    gamma = torch.zeros(k, num_tasks, dtype=task_vectors.dtype, device=task_vectors.device)
    rows = min(k, vh.shape[0])
    gamma[:rows] = singular[:rows, None] * vh[:rows]
    return u[:, :k].T.contiguous(), gamma


def orthonormalize(w: torch.Tensor, gamma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewrite ``(W, Γ)`` so ``W`` has orthonormal rows and the product ``WᵀΓ`` is unchanged.

    QR of ``Wᵀ = QR`` gives ``W' = Qᵀ`` and ``Γ' = RΓ`` (Gram–Schmidt, scale pushed into Γ).
    Signs are fixed so ``R`` has a non-negative diagonal, making the result unique.
    """
    q, r = torch.linalg.qr(w.T)
    signs = torch.where(torch.diagonal(r) < 0, -1.0, 1.0).to(r.dtype)
    return (q * signs).T.contiguous(), (signs[:, None] * r) @ gamma


def robustness_slope(task_vectors: torch.Tensor, k: int) -> float:
    """``R(T) = Σ_{i≤k} σ_i(C)² / T`` (paper eq. 8); equals ``‖Γ_SVD‖_F² / T`` (eq. 9)."""
    singular = torch.linalg.svdvals(task_vectors)
    return float((singular[:k] ** 2).sum() / task_vectors.shape[1])


def unit_columns(task_vectors: torch.Tensor, columns: torch.Tensor | None = None) -> torch.Tensor:
    """Divide each column of ``columns`` (default: ``task_vectors`` itself) by the norm of the matching
    task vector, so every task vector gets unit norm; a zero task vector stays zero."""
    norms = task_vectors.norm(dim=0)
    scale = torch.where(norms > 0, 1.0 / torch.where(norms > 0, norms, 1.0), 0.0)
    return (task_vectors if columns is None else columns) * scale


def gaussian_task_vectors(d: int, num_tasks: int, seed: int = 0) -> torch.Tensor:
    """Task vectors with i.i.d. ``N(0, 1/d)`` entries, as in Theorem 2.7 (float64)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(d, num_tasks, generator=generator, dtype=torch.float64) / d**0.5


def population_noise_threshold(task_vectors: torch.Tensor, k: int) -> float:
    """The noise σ above which the SVD solution for all T columns of ``C`` beats the one for the first
    column alone, for inputs ``x ~ N(0, I_d)`` and targets ``y = c_iᵀx`` (plus any label noise, which
    adds the same to both): task-averaged ``MSE_T(σ) = Σ_{i>k} σ_i(C)²/T + σ² d R(T)`` (eq. 7 with
    E‖x‖² = d). ``0.0`` when the T-task model is never worse, ``inf`` when it never catches up (for
    T ≤ k both models are exact and only the sign of R(1) − R(T) decides)."""
    d, num_tasks = task_vectors.shape
    singular_sq = torch.linalg.svdvals(task_vectors) ** 2
    clean_gap = float(singular_sq[k:].sum()) / num_tasks  # the 1-task model (k ≥ 1) is exact
    slope_gap = d * (robustness_slope(task_vectors[:, :1], k) - robustness_slope(task_vectors, k))
    if slope_gap <= 0:
        return 0.0 if clean_gap <= 0 and slope_gap == 0 else float("inf")
    return (max(clean_gap, 0.0) / slope_gap) ** 0.5


@dataclass(frozen=True)
class SlopeDraws:
    """R(T) of Gaussian task vectors (Theorem 2.7) over ``num_draws`` independent draws of ``C``.

    ``mean``/``ci_low``/``ci_high``: R(T) and its Student-t 95% interval over draws (draws only);
    ``fraction_decreasing``: share of draws where R drops from this T to the next T of the grid
    (``None`` for the last T); ``threshold_median``: median over draws of
    ``population_noise_threshold`` of the first T columns (``None`` for T = 1).
    """

    d: int
    k: int
    num_tasks: int
    num_draws: int
    mean: float
    ci_low: float
    ci_high: float
    fraction_decreasing: float | None
    threshold_median: float | None


def gaussian_slope_draws(d: int, k: int, task_grid: list[int], num_draws: int, seed: int = 0) -> list[SlopeDraws]:
    """``SlopeDraws`` per T of ``task_grid``; draw ``j`` is ``gaussian_task_vectors(d, max T, seed + j)``
    and the T-task matrix is its first T columns (nested, as in the theorem)."""
    grid = sorted(task_grid)
    draws = [gaussian_task_vectors(d, grid[-1], seed + j) for j in range(num_draws)]
    slopes = torch.tensor([[robustness_slope(c[:, :t], k) for t in grid] for c in draws])  # draws × grid
    rows = []
    for column, t in enumerate(grid):
        mean, _, low, high = mean_ci(slopes[:, column].tolist())
        falling = (
            None if column + 1 == len(grid) else float((slopes[:, column + 1] < slopes[:, column]).double().mean())
        )
        thresholds = torch.tensor([population_noise_threshold(c[:, :t], k) for c in draws])
        rows.append(
            SlopeDraws(d, k, t, num_draws, mean, low, high, falling, None if t == 1 else float(thresholds.median()))
        )
    return rows


@dataclass(frozen=True)
class TaskMoments:
    """Per-task means over an evaluation set, everything the closed forms need (length-T tensors).

    ``sq_norm_x`` = E‖x‖², ``sq_x`` = E[x²] per input coordinate (T × d), ``pred_sq`` = E[ŷ²],
    ``pred_target`` = E[ŷ·y] and ``target_sq`` = E[y²] for the unperturbed prediction ŷ; ``sq_hidden`` =
    E[h_j²] per hidden unit ``h = W x`` (T × k; None where not measured: no closed form of neuron deletion).
    """

    sq_norm_x: torch.Tensor
    sq_x: torch.Tensor
    pred_sq: torch.Tensor
    pred_target: torch.Tensor
    target_sq: torch.Tensor
    sq_hidden: torch.Tensor | None = None

    @property
    def clean_mse(self) -> torch.Tensor:
        """Per-task MSE of the unperturbed model."""
        return self.pred_sq - 2 * self.pred_target + self.target_sq


def expected_mse(
    perturbation: Perturbation, w: torch.Tensor, gamma: torch.Tensor, moments: TaskMoments
) -> float | None:
    """Exact expectation of the task-averaged MSE when ``perturbation`` hits ``W`` only.

    Gaussian noise (paper Thm 2.5 / Cor 2.6 on given data):
        E[MSE_i] = MSE_i(0) + σ² ‖γ_i‖² E‖x‖²
    Random deletion with probability p (mask M, E[M] = 1-p):
        E[MSE_i] = (1-p)² E[ŷ²] − 2(1-p) E[ŷy] + E[y²] + p(1-p) Σ_j γ_ij² Σ_l W_jl² E[x_l²]
    Neuron deletion of m = ``unit_count(p, k)`` of the k hidden units ``h = W x``, chosen uniformly at random
    (keep indicators s_j, q₁ = E[s_j] = (k−m)/k, q₂ = E[s_j s_l] = q₁ (k−m−1)/(k−1) for j ≠ l):
        E[MSE_i] = q₂ E[ŷ²] − 2 q₁ E[ŷy] + E[y²] + (q₁ − q₂) Σ_j γ_ij² E[h_j²]
    (from E[(Σ_j γ_ij s_j h_j)²] = q₂ ŷ² + (q₁ − q₂) Σ_j γ_ij² h_j² and E[Σ_j γ_ij s_j h_j] = q₁ ŷ).
    Returns ``None`` for perturbations without a closed form (magnitude pruning, neuron deletion by norm).
    """
    gamma = gamma.to(torch.float64)
    w = w.to(torch.float64)
    if isinstance(perturbation, GaussianNoise):
        head_norms = (gamma**2).sum(dim=0)
        variance = perturbation.std * perturbation.std  # inf, not OverflowError, for absurd levels
        per_task = moments.clean_mse + variance * head_norms * moments.sq_norm_x
    elif isinstance(perturbation, RandomDeletion):
        keep = 1.0 - perturbation.p
        spread = ((gamma**2).T * (moments.sq_x @ (w**2).T)).sum(dim=1)
        per_task = (
            keep**2 * moments.pred_sq
            - 2 * keep * moments.pred_target
            + moments.target_sq
            + perturbation.p * keep * spread
        )
    elif isinstance(perturbation, NeuronDeletion) and perturbation.select == "random" and moments.sq_hidden is not None:
        k = w.shape[0]
        kept = k - unit_count(perturbation.p, k)
        single = kept / k
        pair = single * (kept - 1) / (k - 1) if k > 1 else 0.0
        spread = ((gamma**2).T * moments.sq_hidden).sum(dim=1)
        per_task = pair * moments.pred_sq - 2 * single * moments.pred_target + moments.target_sq
        per_task = per_task + (single - pair) * spread
    else:
        return None
    return float(per_task.mean())


def _symmetric_ties(u: torch.Tensor, s: torch.Tensor, vh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Within each block of tied singular values, rotate the singular vectors so the block's first
    right-singular vector points along the projection of the all-ones task vector."""
    u, vh = u.clone(), vh.clone()
    tol = TIE_TOLERANCE * float(s.max()) if s.numel() else 0.0
    start = 0
    while start < s.numel():
        end = start + 1
        while end < s.numel() and abs(float(s[end] - s[start])) <= tol:
            end += 1
        if end - start > 1:
            block = vh[start:end]  # m × T
            direction = block @ torch.ones(block.shape[1], dtype=block.dtype, device=block.device)
            if float(direction.norm()) > tol:
                basis = torch.cat([direction[:, None], torch.eye(end - start, dtype=block.dtype)], dim=1)
                rotation, _ = torch.linalg.qr(basis)
                rotation = rotation[:, : end - start]
                if float(rotation[:, 0] @ direction) < 0:
                    rotation[:, 0] = -rotation[:, 0]
                vh[start:end] = rotation.T @ block
                u[:, start:end] = u[:, start:end] @ rotation
        start = end
    return u, vh
