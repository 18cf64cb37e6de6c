"""What a metric's name says about it: which direction is better, and its worst value.

A damaged model can produce non-finite scores (a diverged loss gives NaN). The sweep records them
as data: NaN becomes the metric's worst value — +inf for losses and perplexities, the floor of a
bounded score — so means, intervals and plots show the failure instead of dropping it.
"""

from __future__ import annotations

import math
import re

#: Name fragments of metrics where higher is better, with their worst (lowest) value.
BOUNDED_SCORES = {"mcc": -1.0, "matthews": -1.0, "accuracy": 0.0, "f1": 0.0, "auroc": 0.0}


def higher_is_better(metric: str) -> bool:
    """True for scores (accuracy, F1, Matthews correlation, ...), False for losses and perplexities."""
    return _bounded_fragment(metric) is not None


def worst_value(metric: str) -> float:
    """The worst possible value of ``metric``: a bounded score's floor, or +inf for a loss."""
    fragment = _bounded_fragment(metric)
    return math.inf if fragment is None else BOUNDED_SCORES[fragment]


def as_recorded(metric: str, value: float) -> float:
    """``value``, with NaN replaced by the metric's worst value."""
    return worst_value(metric) if math.isnan(value) else value


def _bounded_fragment(metric: str) -> str | None:
    words = re.split(r"[^a-z0-9]+", metric.lower())
    if "acc" in words:
        return "accuracy"
    return next((fragment for fragment in BOUNDED_SCORES if fragment in metric.lower()), None)
