"""Perturb in place, restore bit for bit: the only way this project touches weights.

``ParameterSnapshot`` clones just the targeted tensors once; ``restore()`` copies them back with
``copy_`` (no reallocation, no model copy). ``perturbed`` wraps one perturbation in a context
manager that restores on exit — also when the block raises or the process is interrupted.
``DamagedCopies`` damages copies instead (stacks of a few, for models that score many at once) and
only reads the tensors; a copy equals the tensors after the same ``ParameterSnapshot.perturb``.
Both may damage some tensors only in part (``parts``: name → index, e.g. the Q columns of a fused
weight): the perturbation then sees that block alone, as a tensor of its own, and the rest of the
tensor is never written. A perturbation gets the tensors as ``Weights``: shaped, cut into chunks, with their
names and the model's ``layout``; in place it may also hook the model (``module``): ``restore()`` removes
the hooks with the weights.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn

from cognitive_reserve.layout import NO_LAYOUT, Index, ModelLayout
from cognitive_reserve.perturbations import Hooks, Perturbation, Weights, split_chunks
from cognitive_reserve.targets import TargetSpec, select_targets, target_parts


class ParameterSnapshot:
    """Exact copies of a set of parameters (or of blocks of them: ``parts``), restorable in place any
    number of times.

    A block that is not contiguous in memory (columns of a matrix) is damaged in a contiguous buffer of
    its size and copied into place. ``module`` (the parameters' owner) lets a perturbation hook it for a trial.
    """

    def __init__(
        self,
        params: dict[str, torch.Tensor],
        parts: Mapping[str, Index] | None = None,
        layout: ModelLayout = NO_LAYOUT,
        module: nn.Module | None = None,
    ) -> None:
        self.params = params
        self.device = _single_device(params)
        self._live = _blocks(params, parts)  # aliases of the parameters' storage
        self._saved = [t.clone(memory_format=torch.contiguous_format) for t in self._live]
        work = [t if t.is_contiguous() else torch.empty_like(s) for t, s in zip(self._live, self._saved, strict=True)]
        self._buffered = [(t, w, s) for t, w, s in zip(self._live, work, self._saved, strict=True) if w is not t]
        self._hooks = Hooks(module) if module is not None else None
        chunks = split_chunks(work, self._saved)  # cut once, damaged every trial
        self._weights = Weights(tuple(params), work, chunks, dict(parts or {}), layout, self._hooks)
        self._generator = torch.Generator(device=self.device)

    @property
    def tensors(self) -> list[torch.Tensor]:
        """The live (perturbable) tensors, in target order."""
        return list(self._live)

    @property
    def originals(self) -> list[torch.Tensor]:
        """The saved values, in target order (read-only by contract: ``restore()`` copies from them)."""
        return list(self._saved)

    def perturb(self, perturbation: Perturbation, seed: int) -> None:
        """Apply ``perturbation`` to the live tensors with a generator seeded with ``seed`` (on their device)."""
        for _, work, saved in self._buffered:
            work.copy_(saved)
        perturbation.damage_(self._weights, self._generator.manual_seed(seed))
        for live, work, _ in self._buffered:
            live.copy_(work)

    def restore(self) -> None:
        """Remove a trial's hooks and copy the saved values back into the live tensors (detached aliases: no
        autograd involved)."""
        if self._hooks is not None:
            self._hooks.remove()
        for live, saved in zip(self._live, self._saved, strict=True):
            live.copy_(saved)


class DamagedCopies:
    """Room for ``size`` damaged copies of a set of tensors: one stack ``(size, *shape)`` per tensor
    (the whole tensor also where only a block of it is damaged: ``parts``)."""

    def __init__(
        self,
        params: dict[str, torch.Tensor],
        size: int,
        parts: Mapping[str, Index] | None = None,
        layout: ModelLayout = NO_LAYOUT,
    ) -> None:
        self.device = _single_device(params)
        self._live = [p.detach() for p in params.values()]  # read, never written
        self.stacks = [torch.empty((size, *t.shape), dtype=t.dtype, device=t.device) for t in self._live]
        self._index = [(parts or {}).get(name) for name in params]  # None: the whole tensor
        self._originals = [
            live if index is None else live[index].clone(memory_format=torch.contiguous_format)
            for live, index in zip(self._live, self._index, strict=True)
        ]
        self._work = [  # what the perturbation damages: the copy itself, or a buffer of its block
            [
                stack[slot] if index is None else torch.empty_like(original)
                for stack, index, original in zip(self.stacks, self._index, self._originals, strict=True)
            ]
            for slot in range(size)
        ]
        self._slots = [
            Weights(tuple(params), work, split_chunks(work, self._originals), dict(parts or {}), layout)
            for work in self._work
        ]
        self._generator = torch.Generator(device=self.device)

    def damage(self, slot: int, perturbation: Perturbation, seed: int) -> None:
        """Set copy number ``slot`` to the tensors damaged by ``perturbation`` with a generator seeded
        with ``seed``: bit for bit what ``ParameterSnapshot.perturb(perturbation, seed)`` makes of them."""
        blocks = [
            (stack[slot], work, original, index)
            for stack, work, original, index in zip(
                self.stacks, self._work[slot], self._originals, self._index, strict=True
            )
            if index is not None
        ]
        for stack, live in zip(self.stacks, self._live, strict=True):
            stack[slot].copy_(live)
        for _, work, original, _ in blocks:
            work.copy_(original)
        perturbation.damage_(self._slots[slot], self._generator.manual_seed(seed))
        for copy, work, _, index in blocks:
            copy[index].copy_(work)

    def first(self, count: int) -> list[torch.Tensor]:
        """The stacks of copies ``0 … count-1`` (views), in target order."""
        return [stack[:count] for stack in self.stacks]


@contextmanager
def perturbed(
    model: nn.Module,
    perturbation: Perturbation,
    targets: TargetSpec = ".*",
    seed: int = 0,
    layout: ModelLayout = NO_LAYOUT,
) -> Iterator[dict[str, nn.Parameter]]:
    """Apply ``perturbation`` to the ``targets`` of ``model`` in place for the ``with`` block (``layout``: the
    model's structure, for perturbations of heads, neurons or activations).

    The targeted tensors are restored bit for bit (and any hooks removed) on exit, whether the block finishes,
    raises or is interrupted. Yields the targeted parameters by name.
    """
    snapshot = ParameterSnapshot(select_targets(model, targets), target_parts(targets), layout, model)
    try:
        snapshot.perturb(perturbation, seed)
        yield snapshot.params
    finally:
        snapshot.restore()


def _blocks(params: dict[str, torch.Tensor], parts: Mapping[str, Index] | None) -> list[torch.Tensor]:
    """Detached views of the damaged block of every tensor (the whole tensor where ``parts`` names none)."""
    parts = parts or {}
    return [p.detach()[parts[name]] if name in parts else p.detach() for name, p in params.items()]


def _single_device(params: dict[str, torch.Tensor]) -> torch.device:
    devices = {p.device for p in params.values()}
    if len(devices) != 1:
        raise ValueError(f"targeted parameters live on several devices {sorted(map(str, devices))}")
    return devices.pop()
