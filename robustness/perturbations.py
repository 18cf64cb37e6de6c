"""Structural failures of weights: random deletion, magnitude pruning, additive Gaussian noise.

Each perturbation is a small frozen value object that validates itself on construction and
applies itself *in place* to a list of tensors, drawing all randomness from the generator it
is given. Random draws are made chunk by chunk (the chunking is part of the seeded stream), and
with the tensors' ``originals`` at hand (a sweep's snapshot) they are written straight into the
tensors' own storage: Gaussian noise needs no temporary buffer at all, random deletion one boolean
mask of a chunk, magnitude pruning a few chunk-sized buffers (its exact threshold comes from a
radix selection over the magnitudes' bit patterns, not from a sorted copy of all weights).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
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
    def apply_(
        self,
        tensors: Sequence[torch.Tensor],
        generator: torch.Generator,
        originals: Sequence[torch.Tensor] | None = None,
    ) -> None:
        """Damage ``tensors`` in place, drawing randomness from ``generator`` only.

        ``originals``: the undamaged values of ``tensors`` (same shapes, e.g. a snapshot); the result is
        the damaged ``originals``. Given them, random draws go straight into ``tensors``' storage instead
        of temporary buffers. Same generator state, same result, with or without them.
        """


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

    def apply_(
        self,
        tensors: Sequence[torch.Tensor],
        generator: torch.Generator,
        originals: Sequence[torch.Tensor] | None = None,
    ) -> None:
        if self.std == 0:
            return
        for chunk, original in _chunk_pairs(tensors, originals):
            if original is None:  # keep the weights: draw into a buffer
                original, chunk_noise = chunk, torch.empty_like(chunk)
            else:  # the snapshot keeps them: draw straight into the weights' storage
                chunk_noise = chunk
            chunk_noise.normal_(generator=generator)
            if self.std <= torch.finfo(chunk.dtype).max:
                torch.add(original, chunk_noise, alpha=self.std, out=chunk)
            else:  # a level beyond the dtype's range: compute in float64, store the overflow (inf)
                chunk.copy_(original.double() + chunk_noise.double() * self.std)


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

    def apply_(
        self,
        tensors: Sequence[torch.Tensor],
        generator: torch.Generator,
        originals: Sequence[torch.Tensor] | None = None,
    ) -> None:
        if self.p == 0:
            return
        for chunk, original in _chunk_pairs(tensors, originals):
            # uniform draws in the default dtype (float32) like torch.rand; in the weights' storage when they match
            if original is not None and chunk.dtype == torch.get_default_dtype():
                chunk.uniform_(generator=generator)
                deleted = chunk < self.p
                chunk.copy_(original)
            else:
                deleted = torch.rand(chunk.shape, generator=generator, device=chunk.device) < self.p
            chunk.masked_fill_(deleted, 0)


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

    def apply_(
        self,
        tensors: Sequence[torch.Tensor],
        generator: torch.Generator,
        originals: Sequence[torch.Tensor] | None = None,
    ) -> None:
        if self.p == 0:
            return
        if self.scope == "per_tensor":
            for tensor in tensors:
                _zero_smallest([tensor], round(self.p * tensor.numel()))
        else:
            if len({t.dtype for t in tensors}) > 1:
                raise ValueError("global magnitude pruning ranks tensors of one dtype only")
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
    """Zero exactly ``count`` entries of smallest magnitude across ``tensors``.

    Entries tied with the ``count``-th smallest magnitude are zeroed in order (first tensor, first
    position first) until ``count`` are zero. Memory: a few buffers of one chunk.
    """
    total = sum(t.numel() for t in tensors)
    if count <= 0:
        return
    if count >= total:
        for tensor in tensors:
            tensor.detach().zero_()
        return
    threshold, ties = _kth_smallest_magnitude(tensors, count)
    for tensor in tensors:
        for chunk in _chunks(tensor):
            keys = _magnitude_keys(chunk)
            prune = keys < threshold
            if ties:
                tied = (keys == threshold).nonzero().flatten()[:ties]
                prune[tied] = True
                ties -= len(tied)
            chunk.masked_fill_(prune, 0)


def _kth_smallest_magnitude(tensors: list[torch.Tensor], k: int) -> tuple[int, int]:
    """``(key, ties)``: the magnitude key of the ``k``-th smallest entry (1-based) and how many entries
    with exactly that key are among the ``k`` smallest.

    Up to one chunk of entries: ``kthvalue`` of their keys. More: radix selection, one byte of the key
    per pass from the most significant; each pass counts, per byte value, the entries that share the
    bytes found so far (``bincount`` chunk by chunk).
    """
    if sum(t.numel() for t in tensors) <= CHUNK_ELEMENTS:
        keys = torch.cat([_magnitude_keys(chunk) for t in tensors for chunk in _chunks(t)])
        key = keys.kthvalue(k).values
        return int(key), k - int((keys < key).sum())
    bits = 8 * tensors[0].element_size()
    prefix, rank = 0, k
    for shift in range(bits - 8, -1, -8):
        counts = torch.zeros(256, dtype=torch.int64, device=tensors[0].device)
        for tensor in tensors:
            for chunk in _chunks(tensor):
                keys = _magnitude_keys(chunk)
                if shift + 8 < bits:
                    keys = keys[(keys >> (shift + 8)) == prefix]
                counts += torch.bincount((keys >> shift) & 0xFF, minlength=256)
        cumulative = counts.cumsum(0)
        digit = int(torch.searchsorted(cumulative, rank))
        rank -= int(cumulative[digit - 1]) if digit else 0
        prefix = (prefix << 8) | digit
    return prefix, rank


def _magnitude_keys(chunk: torch.Tensor) -> torch.Tensor:
    """Integers ordered like ``|chunk|``: the float's bits without the sign bit (NaN above inf)."""
    bits = chunk.view(_SAME_SIZE_INT[chunk.element_size()])
    return bits & torch.iinfo(bits.dtype).max


_SAME_SIZE_INT = {2: torch.int16, 4: torch.int32, 8: torch.int64}


def _chunk_pairs(
    tensors: Sequence[torch.Tensor], originals: Sequence[torch.Tensor] | None
) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """``(chunk of a tensor, the same chunk of its original or None)`` over all ``tensors``."""
    if originals is None:
        return [(chunk, None) for tensor in tensors for chunk in _chunks(tensor)]
    if len(originals) != len(tensors):
        raise ValueError(f"{len(originals)} originals for {len(tensors)} tensors")
    pairs: list[tuple[torch.Tensor, torch.Tensor | None]] = []
    for tensor, original in zip(tensors, originals, strict=True):
        if original.shape != tensor.shape or original.dtype != tensor.dtype:
            raise ValueError(f"original {tuple(original.shape)} {original.dtype} does not match its tensor")
        pairs += zip(_chunks(tensor), _chunks(original), strict=True)
    return pairs


def _chunks(tensor: torch.Tensor) -> list[torch.Tensor]:
    """Contiguous 1-D views of ``tensor`` of at most ``CHUNK_ELEMENTS`` elements, detached from autograd
    (writing into them changes ``tensor``; no ``torch.no_grad`` needed)."""
    if not tensor.is_contiguous():
        raise ValueError("perturbations need contiguous parameters")
    flat = tensor.detach().view(-1)
    if flat.numel() <= CHUNK_ELEMENTS:
        return [flat]
    return list(flat.split(CHUNK_ELEMENTS))
