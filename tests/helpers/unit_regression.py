"""A toy sweep subject with a known truth: a linear model scored by MSE on units of unequal scale."""

from __future__ import annotations

import torch
from torch import nn

from cognitive_reserve import SweepSubject
from cognitive_reserve.subsampling import UnitScoring, add_states

ITEMS = 5  # per unit


class Regression:
    """A linear model ``x·w`` scored by MSE on ``units`` units of ``ITEMS`` items, units of unequal scale.

    Gaussian noise of std σ on ``w`` has a closed-form expected full-data MSE: the known truth.
    """

    def __init__(self, units: int = 60, dim: int = 6, seed: int = 0, spread: float = 2.0) -> None:
        generator = torch.Generator().manual_seed(seed)
        scale = 0.5 + spread * torch.rand(units, 1, 1, generator=generator)
        self.x = (torch.randn(units, ITEMS, dim, generator=generator) * scale).double()
        w = torch.randn(dim, generator=generator, dtype=torch.float64)
        self.y = self.x @ w + 0.3 * torch.randn(units, ITEMS, generator=generator, dtype=torch.float64)
        self.module = nn.Module()
        self.module.w = nn.Parameter((w + 0.2 * torch.randn(dim, generator=generator, dtype=torch.float64)).float())

    def states(self, units) -> list[dict[str, torch.Tensor]]:
        chosen = list(units)
        w = self.module.w.detach().double()
        sse = ((self.x[chosen] @ w - self.y[chosen]) ** 2).sum(-1, keepdim=True)
        count = torch.full((1,), float(ITEMS), dtype=torch.float64)
        return [{"sse": row, "count": count} for row in sse]

    @staticmethod
    def values(state) -> dict[str, float]:
        return {"mse": float(state["sse"] / state["count"])}

    def truth(self, sigma: float) -> float:
        """E over the noise of the full-data MSE: mean of (x·w − y)² + σ² ‖x‖²."""
        w = self.module.w.detach().double()
        return float(((self.x @ w - self.y) ** 2 + sigma**2 * (self.x**2).sum(-1)).mean())

    def subject(self, units: bool = True) -> SweepSubject:
        scoring = UnitScoring(sizes=lambda: [ITEMS] * len(self.x), states=self.states, values=self.values)
        return SweepSubject(
            name="regression",
            module=self.module,
            evaluate=lambda: self.values(add_states(self.states(range(len(self.x))))),
            targets="^w$",
            units=scoring if units else None,
        )
