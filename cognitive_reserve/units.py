"""Structural units in a trial's ``Weights``: attention heads and MLP hidden units, as the model's layout declares them.

A unit is a set of runs of entries along one dimension of some targeted tensors: head ``h`` of a GPT-2 block is
``n_embd / n_head`` columns of each of Q, K and V in ``c_attn`` (weight and bias) and as many rows of
``attn.c_proj``; hidden unit ``j`` of an MLP is column ``j`` of ``c_fc`` (and bias entry ``j``) and row ``j`` of
``mlp.c_proj``. Only the runs inside the targets count: a unit whose weights the targets do not hold at all is
absent (head deletion with targets ``mlp`` finds no head), and where a target is a block of its parameter (a
layer-wise group of Q columns) the runs are clipped to that block.

``UnitLayer``: the units of one attention or MLP layer that the targets hold; ``choose``: which of them a
perturbation hits (a fraction, rounded half up, per layer or over all layers; at random or smallest norm
first); ``zero_units``: zero the chosen ones (one ``index_fill_`` per tensor and dimension: no buffer the size of
a tensor).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from cognitive_reserve.layout import MLP, Attention, Index, ModelLayout
from cognitive_reserve.perturbations import Weights

#: Where a fraction of units is counted: in every layer, or over all layers together.
Scope = Literal["per_layer", "global"]
#: How the units are chosen: uniformly at random (seeded), or those whose weights have the smallest norm.
Selection = Literal["random", "norm"]


@dataclass(frozen=True)
class Fill:
    """Where each unit of a layer sits in targeted tensor number ``tensor`` along dimension ``dim`` (every run of
    the layer's units there together): the entries of unit ``u`` are ``entries[u]``, padded with -1 where a run is
    clipped away; on the tensor's device."""

    tensor: int
    dim: int
    entries: torch.Tensor

    def of(self, units: torch.Tensor) -> torch.Tensor:
        """The entries of ``units`` (indices on the tensor's device)."""
        chosen = self.entries[units.to(self.entries.device)]
        return chosen[chosen >= 0]

    def squares(self, tensor: torch.Tensor, units: torch.Tensor) -> torch.Tensor:
        """Sum of squares of each unit's entries (float64 on the CPU), one per unit of ``units``."""
        others = [d for d in range(tensor.ndim) if d != self.dim]
        along = torch.linalg.vector_norm(tensor, dim=others).double() ** 2 if others else tensor.double() ** 2
        chosen = self.entries[units.to(self.entries.device)]
        return (along[chosen.clamp(min=0)] * (chosen >= 0)).sum(dim=1).cpu()


@dataclass(frozen=True)
class UnitLayer:
    """The units of one layer (``source``: its ``Attention`` or ``MLP``) that the targets hold weights of:
    ``units`` their indices in the layer's own numbering (ascending), ``fills`` where they sit."""

    source: Attention | MLP
    units: torch.Tensor
    fills: tuple[Fill, ...]


def head_layers(
    layout: ModelLayout, names: Sequence[str], tensors: Sequence[torch.Tensor], parts: dict[str, Index]
) -> list[UnitLayer]:
    """The attention heads the targets hold, layer by layer (layers without any left out)."""
    layers = []
    for attention in layout.attention:
        runs = []
        for packed in attention.qkv:
            width = packed.width // attention.heads
            projection = packed.projection
            runs += [
                (projection.weight, projection.outputs, packed.start, width),
                (projection.bias, 0, packed.start, width),
            ]
        runs.append((attention.output.weight, attention.output.inputs, 0, attention.value.width // attention.heads))
        layers.append(_layer(attention, attention.heads, runs, names, tensors, parts))
    return [layer for layer in layers if len(layer.units)]


def neuron_layers(
    layout: ModelLayout, names: Sequence[str], tensors: Sequence[torch.Tensor], parts: dict[str, Index]
) -> list[UnitLayer]:
    """The MLP hidden units the targets hold, layer by layer (layers without any left out)."""
    layers = []
    for mlp in layout.mlps:
        runs = [run for p in mlp.inputs for run in ((p.weight, p.outputs, 0, 1), (p.bias, 0, 0, 1))]
        runs += [(p.weight, p.inputs, 0, 1) for p in mlp.outputs]
        layers.append(_layer(mlp, mlp.hidden, runs, names, tensors, parts))
    return [layer for layer in layers if len(layer.units)]


#: ``head_layers`` or ``neuron_layers``: the units of one kind that a trial's targets hold.
LayerFinder = Callable[[ModelLayout, Sequence[str], Sequence[torch.Tensor], dict[str, Index]], list[UnitLayer]]


def unit_layers(weights: Weights, find: LayerFinder) -> list[UnitLayer]:
    """``find``'s layers of ``weights``, computed once per ``Weights`` (its shapes and layout never change)."""
    return weights.memo(find, lambda: find(weights.layout, weights.names, weights.tensors, dict(weights.parts)))


def unit_count(fraction: float, units: int) -> int:
    """How many of ``units`` a ``fraction`` hits: ``fraction · units`` rounded half up (0.5 of 1 unit is 1 unit)."""
    return min(units, math.floor(fraction * units + 0.5))


def choose(
    layers: Sequence[UnitLayer],
    fraction: float,
    scope: Scope,
    selection: Selection,
    generator: torch.Generator,
    tensors: Sequence[torch.Tensor],
) -> list[torch.Tensor]:
    """The units ``fraction`` hits in each layer (indices in the layer's numbering), in ``layers`` order.

    ``random``: a seeded uniform choice (one ``randperm`` per layer, or one over all layers for ``global``;
    drawn on the generator's device, so two models with the same layout get the same units). ``norm``: the
    units whose targeted weights have the smallest L2 norm (ties: the earlier unit first).
    """
    groups = [[layer] for layer in layers] if scope == "per_layer" else [list(layers)]
    chosen: list[torch.Tensor] = []
    for group in groups:
        units = torch.cat([layer.units for layer in group])
        count = unit_count(fraction, len(units))
        if selection == "random":
            order = torch.randperm(len(units), generator=generator, device=generator.device).cpu()
        else:
            norms = torch.cat([_squared_norms(layer, tensors) for layer in group])
            order = torch.sort(norms, stable=True).indices
        hit = torch.zeros(len(units), dtype=torch.bool)
        hit[order[:count]] = True
        for layer, mask in zip(group, hit.split([len(layer.units) for layer in group]), strict=True):
            chosen.append(layer.units[mask])
    return chosen


def zero_units(layers: Sequence[UnitLayer], chosen: Sequence[torch.Tensor], tensors: Sequence[torch.Tensor]) -> None:
    """Zero every targeted entry of the ``chosen`` units of each layer, in place (one ``index_fill_`` per fill)."""
    for layer, units in zip(layers, chosen, strict=True):
        if len(units):
            for fill in layer.fills:
                tensors[fill.tensor].index_fill_(fill.dim, fill.of(units), 0)


def _squared_norms(layer: UnitLayer, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return sum(fill.squares(tensors[fill.tensor], layer.units) for fill in layer.fills)  # type: ignore[return-value]


def _layer(
    source: Attention | MLP,
    count: int,
    runs: list[tuple[str | None, int, int, int]],
    names: Sequence[str],
    tensors: Sequence[torch.Tensor],
    parts: dict[str, Index],
) -> UnitLayer:
    """The units of one layer present in the targets, from its runs ``(parameter, dim, offset, width)``."""
    entries: dict[tuple[int, int], list[torch.Tensor]] = {}
    for name, dim, offset, width in runs:
        if name is None or name not in names:
            continue
        index = names.index(name)
        start = offset - _part_start(parts.get(name), dim)  # in the coordinates of the targeted block
        entries.setdefault((index, dim), []).append(_run(start, width, tensors[index].shape[dim], count))
    fills = tuple(
        Fill(index, dim, torch.cat(found, dim=1).to(tensors[index].device))
        for (index, dim), found in entries.items()
        if any((e >= 0).any() for e in found)
    )
    present = torch.zeros(count, dtype=torch.bool)
    for fill in fills:
        present |= (fill.entries >= 0).any(dim=1).cpu()
    return UnitLayer(source, present.nonzero().flatten(), fills)


def _run(start: int, width: int, size: int, count: int) -> torch.Tensor:
    """Unit ``u``'s entries ``[start + u·width, start + (u+1)·width)`` for units ``0 … count-1`` (count × width),
    -1 outside ``[0, size)``."""
    index = start + torch.arange(count)[:, None] * width + torch.arange(width)
    return index.masked_fill((index < 0) | (index >= size), -1)


def _part_start(index: Index | None, dim: int) -> int:
    """Where a block of a parameter starts along ``dim`` (0 when the block spans that dimension whole)."""
    if index is None or dim >= len(index):
        return 0
    return index[dim].start or 0
