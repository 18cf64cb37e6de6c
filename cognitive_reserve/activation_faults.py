"""``activation_fault``: a fraction of MLP hidden units whose outputs die or are corrupted at inference.

The weights stay as they are: a forward hook on each MLP's activation module (the layout's ``MLP.activation``)
changes the faulty units' outputs for one trial, and is removed when the trial ends (also when it raises or is
interrupted). PyTorchFI's neuron faults model the same: a unit whose computation fails in hardware.

- ``mode: zero``: the unit is dead, its output 0 for every input.
- ``mode: noise``: the unit's output is offset by a value drawn once per trial from ``N(0, std²)``, the same for
  every token and example (a stuck offset), so a trial's result does not depend on the batches or the number of
  processes, and two models with the same layout get the same faulty units and offsets.

Units are chosen as ``neuron_deletion`` chooses them (``cognitive_reserve.units``): a fraction ``p`` of the hidden
units of the MLPs whose weights the targets hold, at random. The model itself is hooked, so it scores one trial
at a time (``trial_batch: 1``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from cognitive_reserve.errors import check_choice, check_number
from cognitive_reserve.layout import MLP
from cognitive_reserve.perturbations import Perturbation, Unit, Weights, register
from cognitive_reserve.unit_deletion import SCOPE_DOC
from cognitive_reserve.units import Scope, choose, neuron_layers, unit_layers

Mode = Literal["zero", "noise"]


@register
@dataclass(frozen=True)
class ActivationFault(Perturbation):
    """Kill (``zero``) or offset (``noise``) the outputs of a fraction ``p`` of the MLP hidden units at inference
    (see the module docstring)."""

    p: float
    mode: Mode = field(default="zero", metadata={"doc": "a dead unit (output 0) or a stuck random offset"})
    std: float = field(
        default=1.0, metadata={"doc": "std of the offsets of `mode: noise`", "valid": "finite number ≥ 0"}
    )
    scope: Scope = field(default="global", metadata={"doc": SCOPE_DOC})
    name: ClassVar[str] = "activation_fault"
    unit: ClassVar[Unit] = "activation"
    failure: ClassVar[str] = "units whose computation fails at inference (PyTorchFI neuron faults)"
    level_label: ClassVar[str] = "fraction of hidden units faulty"
    level_meaning: ClassVar[str] = "the fraction of the MLP hidden units whose outputs are faulty"
    title: ClassVar[str] = "Faulty activations of the hidden units of {targets} (fraction of units)"
    stacks: ClassVar[bool] = False

    def __post_init__(self) -> None:
        check_number("activation_fault.p", self.p, low=0, high=1)
        check_choice("activation_fault.mode", self.mode, ("zero", "noise"))
        check_number("activation_fault.std", self.std, low=0)
        check_choice("activation_fault.scope", self.scope, ("per_layer", "global"))

    @property
    def level(self) -> float:
        return self.p

    @property
    def deterministic(self) -> bool:
        return self.p == 0 or (self.mode == "zero" and self.p == 1) or (self.mode == "noise" and self.std == 0)

    @property
    def level_is_hit_probability(self) -> bool:
        return True

    def damage_(self, weights: Weights, generator: torch.Generator) -> None:
        if self.p == 0:
            return
        if weights.hooks is None:
            raise ValueError("activation_fault hooks the model itself: it cannot damage stacked copies")
        layers = unit_layers(weights, neuron_layers)
        chosen = choose(layers, self.p, self.scope, "random", generator, weights.tensors)
        for layer, units in zip(layers, chosen, strict=True):
            mlp = layer.source
            assert isinstance(mlp, MLP) and mlp.activation is not None  # unreachable() checked it
            index = units.to(generator.device)
            offsets = None
            if self.mode == "noise":
                offsets = torch.randn(len(units), generator=generator, device=generator.device) * self.std
            if len(units):
                weights.hooks.add(mlp.activation, _fault(index, offsets))

    def unreachable(self, weights: Weights) -> str | None:
        layers = unit_layers(weights, neuron_layers)
        if not layers:
            return "the targets hold no weight of any MLP hidden unit the model's layout declares"
        if any(layer.source.activation is None for layer in layers):  # type: ignore[union-attr]
            return "the model's layout names no activation module for its hidden units"
        return None


def _fault(units: torch.Tensor, offsets: torch.Tensor | None) -> Any:
    """A forward hook that zeroes (``offsets`` None) or offsets the activations of ``units`` (last dimension)."""

    def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor:
        index = units.to(output.device)
        if offsets is None:
            return output.index_fill(-1, index, 0)
        shifted = output.index_select(-1, index) + offsets.to(output.device, output.dtype)
        return output.index_copy(-1, index, shifted)

    return hook
