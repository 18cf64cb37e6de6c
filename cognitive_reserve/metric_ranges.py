"""What a metric's name says about it: the values it can take and which way is better, in one table.

Accuracy and F1 lie in [0, 1], Matthews and Pearson correlations in [-1, 1], perplexity in [1, ∞),
bits per byte and squared errors in [0, ∞). Two rules read the same entry: an interval of a mean never
leaves the range (``metric_range``), and a NaN score is recorded as the worst end of the range in the
direction that is worse (``cognitive_reserve.metrics.worst_value``). A metric whose name matches no entry
is unbounded and has no direction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Direction = Literal["lower", "higher"]
UNBOUNDED = (-math.inf, math.inf)


@dataclass(frozen=True)
class MetricKind:
    """The metrics whose lower-cased name contains one of ``fragments``: their range and better direction."""

    fragments: tuple[str, ...]
    lowest: float
    highest: float
    better: Direction


#: The first entry with a fragment in the name wins (so ``perplexity`` before ``mse``-like names, and
#: ``layer2_accuracy`` is an accuracy, not an ``r2``).
METRIC_KINDS: tuple[MetricKind, ...] = (
    MetricKind(("perplexity", "ppl"), 1.0, math.inf, "lower"),
    MetricKind(("bits_per_byte", "bpb", "mse", "mae"), 0.0, math.inf, "lower"),
    MetricKind(("loss", "nll", "error"), -math.inf, math.inf, "lower"),
    MetricKind(("accuracy", "acc", "f1", "auc", "precision", "recall"), 0.0, 1.0, "higher"),
    MetricKind(("mcc", "matthews", "pearson", "spearman"), -1.0, 1.0, "higher"),
    MetricKind(("r2",), -math.inf, 1.0, "higher"),
)


def metric_kind(metric: str) -> MetricKind | None:
    """The table's entry for ``metric`` (e.g. ``val/accuracy``); None when its name matches none."""
    name = metric.lower()
    return next((kind for kind in METRIC_KINDS if any(fragment in name for fragment in kind.fragments)), None)


def metric_range(metric: str) -> tuple[float, float]:
    """``(lowest, highest)`` value of ``metric`` (e.g. ``val/accuracy`` → (0, 1)); (-∞, ∞) when unknown."""
    kind = metric_kind(metric)
    return UNBOUNDED if kind is None else (kind.lowest, kind.highest)
