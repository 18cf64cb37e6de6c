"""The values a metric can take, from its name: an interval of its mean never leaves this range.

Accuracy and F1 lie in [0, 1], Matthews and Pearson correlations in [-1, 1], perplexity in [1, ∞),
bits per byte and squared errors in [0, ∞). A metric whose name says nothing is unbounded.
"""

from __future__ import annotations

import math

#: ``(name fragments, (lowest, highest))``, the first match wins (so ``perplexity`` before ``mse``-like names).
RANGES: tuple[tuple[tuple[str, ...], tuple[float, float]], ...] = (
    (("perplexity", "ppl"), (1.0, math.inf)),
    (("bits_per_byte", "bpb", "mse", "mae"), (0.0, math.inf)),
    (("accuracy", "acc", "f1", "auc", "precision", "recall"), (0.0, 1.0)),
    (("mcc", "matthews", "pearson", "spearman"), (-1.0, 1.0)),
    (("r2",), (-math.inf, 1.0)),
)
UNBOUNDED = (-math.inf, math.inf)


def metric_range(metric: str) -> tuple[float, float]:
    """``(lowest, highest)`` value of ``metric`` (e.g. ``val/accuracy`` → (0, 1)); (-∞, ∞) when unknown."""
    name = metric.lower()
    for fragments, bounds in RANGES:
        if any(fragment in name for fragment in fragments):
            return bounds
    return UNBOUNDED
