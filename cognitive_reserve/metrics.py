"""What a metric's name says about it: which direction is better, and its worst value.

A damaged model can produce non-finite scores (a diverged loss gives NaN). The sweep records them
as data: NaN becomes the metric's worst value — +inf for losses and perplexities, the floor of a
bounded score — so means, intervals and plots show the failure instead of dropping it.
"""

from __future__ import annotations

import math
from typing import Literal

Direction = Literal["lower", "higher"]

#: Name fragments of metrics where lower is better (their worst value is +inf).
LOWER_IS_BETTER = ("perplexity", "bits_per_byte", "bpb", "loss", "mse", "nll", "error")
#: Name fragments of scores where higher is better, with their worst value.
HIGHER_IS_BETTER = {
    "accuracy": 0.0, "acc": 0.0, "f1": 0.0, "auc": 0.0,
    "mcc": -1.0, "matthews": -1.0, "pearson": -1.0, "spearman": -1.0, "r2": -math.inf,
}  # fmt: skip


def metric_direction(metric: str) -> Direction | None:
    """``lower`` or ``higher`` is better, from the metric's name; None when the name does not say."""
    name = metric.lower()
    if any(fragment in name for fragment in LOWER_IS_BETTER):
        return "lower"
    if any(fragment in name for fragment in HIGHER_IS_BETTER):
        return "higher"
    return None


def worst_value(metric: str) -> float:
    """The worst possible value of ``metric`` (+inf for a loss, a score's floor; NaN if unknown)."""
    name = metric.lower()
    if metric_direction(metric) == "higher":
        return min(worst for fragment, worst in HIGHER_IS_BETTER.items() if fragment in name)
    return math.inf if metric_direction(metric) == "lower" else math.nan


def as_recorded(metric: str, value: float) -> float:
    """``value``, with NaN replaced by the metric's worst value."""
    return worst_value(metric) if math.isnan(value) else value
