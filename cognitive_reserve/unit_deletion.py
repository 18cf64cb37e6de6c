"""Deletion of whole structural units: attention heads (``head_deletion``) and MLP hidden units (``neuron_deletion``).

Both read the model's layout (``cognitive_reserve.units``), delete ``p · n`` of the ``n`` units the targets hold
(rounded half up; ``scope``: counted in every layer, or over all layers together), chosen at random (seeded: two
models with the same layout lose the same units) or smallest L2 norm of their targeted weights first
(deterministic: one trial per level), and zero every targeted weight of a deleted unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from cognitive_reserve.errors import check_choice, check_number
from cognitive_reserve.perturbations import Perturbation, Unit, Weights, register
from cognitive_reserve.units import (
    LayerFinder,
    Scope,
    Selection,
    choose,
    head_layers,
    neuron_layers,
    unit_layers,
    zero_units,
)

SCOPE_DOC = "count the fraction in every layer (`per_layer`), or over all layers together (`global`)"
SELECT_DOC = "which units go: uniformly at random (seeded, paired across models), or smallest L2 norm first"


@dataclass(frozen=True)
class UnitDeletion(Perturbation):
    """Zero a fraction ``p`` of the units ``layers`` finds in the targets (see the module docstring)."""

    p: float
    scope: Scope = field(default="global", metadata={"doc": SCOPE_DOC})
    select: Selection = field(default="random", metadata={"doc": SELECT_DOC})
    level_range: ClassVar[str] = "number in [0, 1]"
    #: The units of a trial's targets: ``head_layers`` or ``neuron_layers``.
    layers: ClassVar[LayerFinder]

    def __post_init__(self) -> None:
        check_number(f"{self.name}.p", self.p, low=0, high=1)
        check_choice(f"{self.name}.scope", self.scope, ("per_layer", "global"))
        check_choice(f"{self.name}.select", self.select, ("random", "norm"))

    @property
    def level(self) -> float:
        return self.p

    @property
    def deterministic(self) -> bool:
        return self.p in (0.0, 1.0) or self.select == "norm"

    @property
    def level_is_hit_probability(self) -> bool:
        return self.select == "random"

    def damage_(self, weights: Weights, generator: torch.Generator) -> None:
        if self.p == 0:
            return
        layers = unit_layers(weights, type(self).layers)
        chosen = choose(layers, self.p, self.scope, self.select, generator, weights.tensors)
        zero_units(layers, chosen, weights.tensors)

    def unreachable(self, weights: Weights) -> str | None:
        if unit_layers(weights, type(self).layers):
            return None
        return f"the targets hold no weight of any {self.unit} the model's layout declares"


@register
@dataclass(frozen=True)
class HeadDeletion(UnitDeletion):
    """Delete whole attention heads: their Q, K and V columns (and bias entries) and their rows of the output
    projection. Models a head lost to ablation or to a failed compute unit that held it (head-ablation studies:
    Michel et al. 2019, Voita et al. 2019)."""

    name: ClassVar[str] = "head_deletion"
    unit: ClassVar[Unit] = "head"
    failure: ClassVar[str] = "attention heads ablated or lost with the unit that computes them"
    level_label: ClassVar[str] = "deleted fraction of attention heads"
    level_meaning: ClassVar[str] = "the fraction of the attention heads (held by the targets) deleted whole"
    title: ClassVar[str] = "Deletion of whole attention heads of {targets} (fraction of heads)"
    layers = staticmethod(head_layers)


@register
@dataclass(frozen=True)
class NeuronDeletion(UnitDeletion):
    """Delete whole MLP hidden units: each one's input column (and bias entry) and output row. Models a dead
    neuron: a unit whose every connection is lost, as in structured pruning of neurons or a failed unit."""

    name: ClassVar[str] = "neuron_deletion"
    unit: ClassVar[Unit] = "neuron"
    failure: ClassVar[str] = "dead neurons: every connection of a hidden unit lost"
    level_label: ClassVar[str] = "deleted fraction of hidden units"
    level_meaning: ClassVar[str] = "the fraction of the MLP hidden units (held by the targets) deleted whole"
    title: ClassVar[str] = "Deletion of whole hidden units of {targets} (fraction of units)"
    layers = staticmethod(neuron_layers)
