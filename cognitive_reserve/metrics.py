"""Which direction of a metric is better, and its worst value.

A damaged model can produce non-finite scores (a diverged loss gives NaN). The sweep records them
as data: NaN becomes the metric's worst value — +inf for losses and perplexities, the floor of a
bounded score — so means, intervals and plots show the failure instead of dropping it.

The direction comes from the metric itself where it declares one: the model layer reads
torchmetrics' ``higher_is_better`` and passes it here (the core does not import torchmetrics). A bare
name — a CSV's ``metric`` column, or a value from a plain ``evaluate()`` — is judged by its name. The
range and the direction a name implies are one entry of ``cognitive_reserve.metric_ranges.METRIC_KINDS``,
which also clips the intervals of a metric's mean.
"""

from __future__ import annotations

import math

from cognitive_reserve.metric_ranges import Direction, metric_kind, metric_range

__all__ = ["Direction", "as_recorded", "direction_of", "metric_direction", "worst_value"]


def metric_direction(metric: str) -> Direction | None:
    """``lower`` or ``higher`` is better, from the metric's name; None when the name does not say."""
    kind = metric_kind(metric)
    return None if kind is None else kind.better


def direction_of(higher_is_better: bool | None) -> Direction | None:
    """The direction a metric declares (torchmetrics' ``higher_is_better``); None when it declares none."""
    return None if higher_is_better is None else "higher" if higher_is_better else "lower"


def worst_value(metric: str, direction: Direction | None = None) -> float:
    """The worst possible value of ``metric``: the end of its range (``metric_range``) in the worse direction —
    +inf for a loss, 0 for an accuracy, precision or recall, -1 for a correlation, ±inf for a name the table
    does not know —; NaN when the direction is unknown. ``direction``: the one the metric declares; None: judged
    by the name."""
    direction = direction or metric_direction(metric)
    lowest, highest = metric_range(metric)
    if direction == "lower":
        return highest
    if direction == "higher":
        return lowest
    return math.nan


def as_recorded(metric: str, value: float, direction: Direction | None = None) -> float:
    """``value``, with NaN replaced by the metric's worst value (``worst_value``)."""
    return worst_value(metric, direction) if math.isnan(value) else value
