"""Which direction of a metric is better, and its worst value.

A damaged model can produce non-finite scores (a diverged loss gives NaN). The sweep records them
as data: NaN becomes the metric's worst value — +inf for losses and perplexities, the floor of a
bounded score — so means, intervals and plots show the failure instead of dropping it.

The direction comes from the metric itself where it declares one: the model layer reads
torchmetrics' ``higher_is_better`` and passes it here (the core does not import torchmetrics). A bare
name — a CSV's ``metric`` column, or a value from a plain ``evaluate()`` — is judged by its name.
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


def direction_of(higher_is_better: bool | None) -> Direction | None:
    """The direction a metric declares (torchmetrics' ``higher_is_better``); None when it declares none."""
    return None if higher_is_better is None else "higher" if higher_is_better else "lower"


def worst_value(metric: str, direction: Direction | None = None) -> float:
    """The worst possible value of ``metric``: +inf where lower is better; where higher is better, the floor
    of a score its name names (0 for accuracy, -1 for a correlation), else -inf; NaN when the direction is
    unknown. ``direction``: the one the metric declares; None: judged by the name."""
    direction = direction or metric_direction(metric)
    if direction == "lower":
        return math.inf
    if direction == "higher":
        name = metric.lower()
        return min((worst for fragment, worst in HIGHER_IS_BETTER.items() if fragment in name), default=-math.inf)
    return math.nan


def as_recorded(metric: str, value: float, direction: Direction | None = None) -> float:
    """``value``, with NaN replaced by the metric's worst value (``worst_value``)."""
    return worst_value(metric, direction) if math.isnan(value) else value
