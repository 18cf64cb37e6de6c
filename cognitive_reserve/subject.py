"""What a sweep damages and how it scores the damaged model: a ``SweepSubject``.

Its own module so that the sweep (``cognitive_reserve.sweep``) and the scorers it opens
(``cognitive_reserve.scoring``) both import it without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from cognitive_reserve.layout import NO_LAYOUT, ModelLayout
from cognitive_reserve.perturbations import Perturbation
from cognitive_reserve.subsampling import UnitScoring
from cognitive_reserve.targets import TargetSpec


@dataclass
class SweepSubject:
    """What a sweep damages and how it scores the damaged model.

    ``name``/``num_tasks`` fill the CSV's ``model``/``num_tasks`` columns. ``expected`` may return
    a closed-form expectation per metric for a perturbation (or ``None`` where there is none).
    ``evaluate_stack`` (optional) scores several versions of the targets at once: it gets one stack
    ``(copies, *shape)`` per targeted tensor, in target order, and returns one ``{metric: value}`` per
    copy, exactly what ``evaluate()`` returns with the targets set to that copy. ``layout``: the model's
    declaration of its structure (blocks, heads, hidden units), read by structural perturbations and
    layer-wise groups.
    """

    name: str
    module: nn.Module
    evaluate: Callable[[], Mapping[str, float]]
    targets: TargetSpec = ".*"
    num_tasks: int | None = None
    expected: Callable[[Perturbation], Mapping[str, float] | None] | None = None
    evaluate_stack: Callable[[list[torch.Tensor]], Sequence[Mapping[str, float]]] | None = None
    #: How to score parts of the evaluation data (subsampled trials); None: the whole data only.
    units: UnitScoring | None = None
    layout: ModelLayout = NO_LAYOUT
