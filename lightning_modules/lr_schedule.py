"""The learning-rate schedule of the GPT-2 models: linear warm-up, then cosine decay."""

from __future__ import annotations

import math


class LrSchedule:
    """Learning-rate factor per optimizer step: linear warm-up, then cosine decay to ``min_ratio``.

    ``start`` delays the whole schedule (factor 0 before it): the non-embedding weights of an
    embeddings-only warm-up start at step ``start`` with their own warm-up. A plain object, so
    ``LambdaLR.state_dict()`` stores only numbers: a run resumed from a checkpoint gets back the
    checkpoint's ``total_steps`` along with its step count, and so continues the same schedule.
    """

    def __init__(self, warmup_steps: int, total_steps: int, min_ratio: float, start: int = 0) -> None:
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.min_ratio = min_ratio
        self.start = start

    def __call__(self, step: int) -> float:
        if step < self.start:
            return 0.0
        local = step - self.start
        if local < self.warmup_steps:
            return (local + 1) / self.warmup_steps
        span = max(self.total_steps - self.start - self.warmup_steps, 1)
        progress = min((local - self.warmup_steps) / span, 1.0)
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
