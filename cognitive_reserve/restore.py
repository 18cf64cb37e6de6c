"""Perturb in place, restore bit for bit: the only way this project touches weights.

``ParameterSnapshot`` clones just the targeted tensors once; ``restore()`` copies them back with
``copy_`` (no reallocation, no model copy). ``perturbed`` wraps one perturbation in a context
manager that restores on exit — also when the block raises or the process is interrupted.
``DamagedCopies`` damages copies instead (stacks of a few, for models that score many at once) and
only reads the tensors; a copy equals the tensors after the same ``ParameterSnapshot.perturb``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from cognitive_reserve.perturbations import Perturbation, split_chunks
from cognitive_reserve.targets import TargetSpec, select_targets


class ParameterSnapshot:
    """Exact copies of a set of parameters, restorable in place any number of times."""

    def __init__(self, params: dict[str, torch.Tensor]) -> None:
        self.params = params
        self.device = _single_device(params)
        self._live = [p.detach() for p in params.values()]  # aliases of the parameters' storage
        self._saved = [t.clone() for t in self._live]
        self._chunks = split_chunks(self._live, self._saved)  # cut once, damaged every trial
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
        perturbation.apply_chunks_(self._chunks, self._generator.manual_seed(seed))

    def restore(self) -> None:
        """Copy the saved values back into the live tensors (detached aliases: no autograd involved)."""
        for live, saved in zip(self._live, self._saved, strict=True):
            live.copy_(saved)


class DamagedCopies:
    """Room for ``size`` damaged copies of a set of tensors: one stack ``(size, *shape)`` per tensor."""

    def __init__(self, params: dict[str, torch.Tensor], size: int) -> None:
        self.device = _single_device(params)
        self._live = [p.detach() for p in params.values()]  # read, never written
        self.stacks = [torch.empty((size, *t.shape), dtype=t.dtype, device=t.device) for t in self._live]
        self._slots = [split_chunks([stack[slot] for stack in self.stacks], self._live) for slot in range(size)]
        self._generator = torch.Generator(device=self.device)

    def damage(self, slot: int, perturbation: Perturbation, seed: int) -> None:
        """Set copy number ``slot`` to the tensors damaged by ``perturbation`` with a generator seeded
        with ``seed``: bit for bit what ``ParameterSnapshot.perturb(perturbation, seed)`` makes of them."""
        for stack, live in zip(self.stacks, self._live, strict=True):
            stack[slot].copy_(live)
        perturbation.apply_chunks_(self._slots[slot], self._generator.manual_seed(seed))

    def first(self, count: int) -> list[torch.Tensor]:
        """The stacks of copies ``0 … count-1`` (views), in target order."""
        return [stack[:count] for stack in self.stacks]


@contextmanager
def perturbed(
    model: nn.Module,
    perturbation: Perturbation,
    targets: TargetSpec = ".*",
    seed: int = 0,
) -> Iterator[dict[str, nn.Parameter]]:
    """Apply ``perturbation`` to the ``targets`` of ``model`` in place for the ``with`` block.

    The targeted tensors are restored bit for bit on exit, whether the block finishes, raises or
    is interrupted. Yields the targeted parameters by name.
    """
    snapshot = ParameterSnapshot(select_targets(model, targets))
    try:
        snapshot.perturb(perturbation, seed)
        yield snapshot.params
    finally:
        snapshot.restore()


def _single_device(params: dict[str, torch.Tensor]) -> torch.device:
    devices = {p.device for p in params.values()}
    if len(devices) != 1:
        raise ValueError(f"targeted parameters live on several devices {sorted(map(str, devices))}")
    return devices.pop()
