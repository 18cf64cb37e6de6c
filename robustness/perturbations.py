"""Structural failures of weights: random deletion, magnitude pruning, additive Gaussian noise.

Each perturbation is a small frozen value object that validates itself on construction and
applies itself *in place* to a list of tensors, drawing all randomness from the generator it
is given. Random draws are made chunk by chunk so the temporary memory stays a small, fixed
fraction of the targeted tensors.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from robustness.errors import ConfigError, check_choice, check_number

#: Elements drawn per random call; bounds the temporary memory of a perturbation.
CHUNK_ELEMENTS = 1 << 16


class Perturbation(ABC):
    """A damage model with one scalar severity ``level`` (0 = no damage)."""

    name: ClassVar[str]

    @property
    @abstractmethod
    def level(self) -> float:
        """The severity on the sweep's x-axis."""

    @property
    def deterministic(self) -> bool:
        """True when every draw gives the same result (one trial per level is enough)."""
        return self.level == 0

    @abstractmethod
    def apply_(self, tensors: Sequence[torch.Tensor], generator: torch.Generator) -> None:
        """Damage ``tensors`` in place, drawing randomness from ``generator`` only."""


@dataclass(frozen=True)
class GaussianNoise(Perturbation):
    """Add i.i.d. ``N(0, std²)`` noise to every targeted weight (paper eq. 6)."""

    std: float
    name: ClassVar[str] = "gaussian_noise"

    def __post_init__(self) -> None:
        check_number("gaussian_noise.std", self.std, low=0)

    @property
    def level(self) -> float:
        return self.std

    @torch.no_grad()
    def apply_(self, tensors: Sequence[torch.Tensor], generator: torch.Generator) -> None:
        if self.std == 0:
            return
        for tensor in tensors:
            for chunk in _chunks(tensor):
                noise = torch.randn(chunk.shape, generator=generator, device=chunk.device, dtype=chunk.dtype)
                if self.std <= torch.finfo(chunk.dtype).max:
                    chunk.add_(noise, alpha=self.std)
                else:  # a level beyond the dtype's range: compute in float64, store the overflow (inf)
                    chunk.copy_(chunk.double() + noise.double() * self.std)


@dataclass(frozen=True)
class RandomDeletion(Perturbation):
    """Set each targeted weight to zero independently with probability ``p``."""

    p: float
    name: ClassVar[str] = "random_deletion"

    def __post_init__(self) -> None:
        check_number("random_deletion.p", self.p, low=0, high=1)

    @property
    def level(self) -> float:
        return self.p

    @property
    def deterministic(self) -> bool:
        return self.p in (0.0, 1.0)

    @torch.no_grad()
    def apply_(self, tensors: Sequence[torch.Tensor], generator: torch.Generator) -> None:
        if self.p == 0:
            return
        for tensor in tensors:
            for chunk in _chunks(tensor):
                draw = torch.rand(chunk.shape, generator=generator, device=chunk.device)
                chunk.masked_fill_(draw < self.p, 0)


@dataclass(frozen=True)
class MagnitudePruning(Perturbation):
    """Zero the ``round(p·n)`` smallest-magnitude weights (Han et al. 2015).

    ``scope="per_tensor"`` prunes that fraction of every tensor; ``scope="global"`` ranks all
    targeted weights together. Deterministic: one trial per level.
    """

    p: float
    scope: Literal["per_tensor", "global"] = "per_tensor"
    name: ClassVar[str] = "magnitude_pruning"

    def __post_init__(self) -> None:
        check_number("magnitude_pruning.p", self.p, low=0, high=1)
        check_choice("magnitude_pruning.scope", self.scope, ("per_tensor", "global"))

    @property
    def level(self) -> float:
        return self.p

    @property
    def deterministic(self) -> bool:
        return True

    @torch.no_grad()
    def apply_(self, tensors: Sequence[torch.Tensor], generator: torch.Generator) -> None:
        if self.p == 0:
            return
        if self.scope == "per_tensor":
            for tensor in tensors:
                _zero_smallest([tensor], round(self.p * tensor.numel()))
        else:
            _zero_smallest(list(tensors), round(self.p * sum(t.numel() for t in tensors)))


PERTURBATIONS: dict[str, type[Perturbation]] = {
    cls.name: cls for cls in (GaussianNoise, RandomDeletion, MagnitudePruning)
}


def make_perturbation(name: str, level: float, **options: object) -> Perturbation:
    """Build a perturbation from its contract name (``gaussian_noise`` …) and level."""
    if name not in PERTURBATIONS:
        raise ConfigError("perturbation", name, f"unknown; choose one of {sorted(PERTURBATIONS)}")
    cls = PERTURBATIONS[name]
    try:
        return cls(level, **options)  # type: ignore[call-arg]
    except TypeError as err:
        raise ConfigError(f"{name} options", options, str(err)) from None


def _zero_smallest(tensors: list[torch.Tensor], count: int) -> None:
    """Zero exactly ``count`` entries of smallest magnitude across ``tensors``."""
    total = sum(t.numel() for t in tensors)
    if count <= 0:
        return
    if count >= total:
        for tensor in tensors:
            tensor.zero_()
        return
    magnitudes = torch.cat([t.detach().abs().reshape(-1) for t in tensors])
    indices = torch.topk(magnitudes, count, largest=False, sorted=False).indices
    del magnitudes
    offset = 0
    for tensor in tensors:
        in_tensor = indices[(indices >= offset) & (indices < offset + tensor.numel())] - offset
        tensor.view(-1)[in_tensor] = 0
        offset += tensor.numel()


def _chunks(tensor: torch.Tensor) -> Iterator[torch.Tensor]:
    """Contiguous in-place views of ``tensor`` of at most ``CHUNK_ELEMENTS`` elements."""
    if not tensor.is_contiguous():
        raise ValueError("perturbations need contiguous parameters")
    flat = tensor.view(-1)
    for start in range(0, flat.numel(), CHUNK_ELEMENTS):
        yield flat[start : start + CHUNK_ELEMENTS]
