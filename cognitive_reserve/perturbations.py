"""What a perturbation is, and the entry-wise ones: random deletion, magnitude pruning, additive Gaussian noise.

Each perturbation is a small frozen value object that validates itself on construction, declares how it is
shown (``Perturbation``: name, unit, the level's label and meaning, a report title; plots, reports, W&B panels
and the config reference read them from here) and damages a trial's ``Weights`` in place, drawing all
randomness from the generator it is given. It is known by name once ``register``ed (``PERTURBATIONS``); the
structural ones live in their own modules (``unit_deletion``: heads and neurons, ``bit_flip``,
``activation_faults``), which read the model's ``ModelLayout``.

Entry-wise perturbations (``EntrywisePerturbation``) are blind to shapes: tensors are damaged chunk by chunk
(``split_chunks``; the chunking is part of the seeded stream). With the tensors' ``originals`` at hand (a
sweep's snapshot), random draws are written straight into the tensors' own storage: Gaussian noise needs no
temporary buffer at all, random deletion one boolean mask of a chunk, magnitude pruning a few chunk-sized
buffers (its exact threshold comes from a radix selection over the magnitudes' bit patterns, not from a sorted
copy of all weights). A caller that damages the same tensors many times splits them once and calls
``apply_chunks_``.
"""

from __future__ import annotations

import dataclasses
import itertools
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, NamedTuple

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from cognitive_reserve.errors import ConfigError, check_choice, check_number
from cognitive_reserve.layout import NO_LAYOUT, Index, ModelLayout

#: Elements drawn per random call; bounds the temporary memory of a perturbation.
CHUNK_ELEMENTS = 1 << 16


class Chunk(NamedTuple):
    """A contiguous 1-D view of at most ``CHUNK_ELEMENTS`` entries of target tensor number ``tensor``,
    and the same entries of its undamaged original (``None`` when there is none)."""

    tensor: int
    live: torch.Tensor
    original: torch.Tensor | None


def split_chunks(tensors: Sequence[torch.Tensor], originals: Sequence[torch.Tensor] | None = None) -> list[Chunk]:
    """The chunks of ``tensors`` (and of their ``originals``), in order; views detached from autograd."""
    if originals is not None and len(originals) != len(tensors):
        raise ValueError(f"{len(originals)} originals for {len(tensors)} tensors")
    chunks = []
    for index, tensor in enumerate(tensors):
        original = None if originals is None else originals[index]
        if original is not None and (original.shape != tensor.shape or original.dtype != tensor.dtype):
            raise ValueError(f"original {tuple(original.shape)} {original.dtype} does not match its tensor")
        lives = _flat_chunks(tensor)
        befores = _flat_chunks(original) if original is not None else [None] * len(lives)
        chunks += [Chunk(index, live, before) for live, before in zip(lives, befores, strict=True)]
    return chunks


#: What one draw of a perturbation damages: single weights (``entry``), whole rows or columns of a matrix,
#: attention heads, MLP hidden units (``neuron``), single bits of stored weights, or units' activations.
Unit = Literal["entry", "row/column", "head", "neuron", "bit", "activation"]


class Hooks:
    """Forward hooks a perturbation puts on ``module`` for one trial; ``remove()`` takes every one of them off."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self._handles: list[RemovableHandle] = []

    def add(self, path: str, hook: Callable[[nn.Module, Any, Any], Any]) -> None:
        """``hook(module, inputs, output)`` on the submodule at ``path`` (its return value replaces the output)."""
        self._handles.append(self.module.get_submodule(path).register_forward_hook(hook))

    def remove(self) -> None:
        while self._handles:
            self._handles.pop().remove()


@dataclass(frozen=True)
class Weights:
    """What a perturbation damages in one trial, and where it sits in the model.

    ``tensors``: the targeted tensors in target order, shaped and writable, holding the undamaged values on entry
    (where a target is only a block of its parameter, ``parts[name]``, the tensor is that block); ``chunks``: the
    same storage cut into flat chunks of at most ``CHUNK_ELEMENTS`` with their originals (``split_chunks``);
    ``names``: the parameters' qualified names; ``layout``: the model's own declaration of its structure;
    ``hooks``: forward hooks removed when the trial ends (None where the model itself is not evaluated: stacked
    copies). The same ``Weights`` is damaged trial after trial: ``memo`` keeps what a perturbation derives from
    its shapes and layout (a table of units) for the next trial.
    """

    names: tuple[str, ...]
    tensors: Sequence[torch.Tensor]
    chunks: Sequence[Chunk]
    parts: Mapping[str, Index] = field(default_factory=dict)
    layout: ModelLayout = NO_LAYOUT
    hooks: Hooks | None = None
    _memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` the first time ``key`` is asked for, the same object afterwards (it must depend only on
        the names, shapes, parts and layout, never on the tensors' values)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    @classmethod
    def of(
        cls,
        params: Mapping[str, torch.Tensor],
        parts: Mapping[str, Index] | None = None,
        layout: ModelLayout | None = None,
    ) -> Weights:
        """Views of ``params`` (their ``parts``) without chunks, to read: what ``Perturbation.unreachable`` judges."""
        parts = dict(parts or {})
        tensors = [p.detach()[parts[name]] if name in parts else p.detach() for name, p in params.items()]
        return cls(tuple(params), tensors, (), parts, layout or NO_LAYOUT)


#: Every perturbation by its contract name (``register`` adds one).
PERTURBATIONS: dict[str, type[Perturbation]] = {}


class Perturbation(ABC):
    """A damage model with one scalar severity ``level`` (0 = no damage).

    A perturbation declares, once, what plots, reports, W&B panels and the config reference show of it: its
    ``name`` (the CSV's ``perturbation``), its ``unit`` (what one draw damages), the physical ``failure`` it
    models (in a few words; its docstring says more), its level's axis label (``level_label``), meaning
    (``level_meaning``) and valid values (``level_range``), and a report ``title`` (``{targets}`` stands for
    what the sweep damages). Its options are the dataclass fields after the level,
    each with ``metadata={"doc": ...}`` (and ``"valid"`` where the type is not a ``Literal``).
    """

    name: ClassVar[str]
    unit: ClassVar[Unit]
    failure: ClassVar[str]
    level_label: ClassVar[str]
    level_meaning: ClassVar[str]
    level_range: ClassVar[str] = "number in [0, 1]"
    title: ClassVar[str]
    #: Whether it can damage stacked copies of the targets (``trial_batch`` > 1); False for hooks on the model.
    stacks: ClassVar[bool] = True

    @property
    @abstractmethod
    def level(self) -> float:
        """The severity on the sweep's x-axis."""

    @property
    def deterministic(self) -> bool:
        """True when every draw gives the same result (one trial per level is enough)."""
        return self.level == 0

    @property
    def level_is_hit_probability(self) -> bool:
        """True when the level is the per-trial probability that a given unit (a weight, head, neuron or activation)
        is damaged: a unit that matters much is then missed by every one of few trials, and a level's interval
        needs enough trials to see it (``cognitive_reserve.intervals.trials_needed``). False unless declared."""
        return False

    @abstractmethod
    def damage_(self, weights: Weights, generator: torch.Generator) -> None:
        """Damage ``weights`` in place (or hook the model), drawing randomness from ``generator`` only."""

    def unreachable(self, weights: Weights) -> str | None:
        """Why this perturbation would damage nothing of ``weights`` (None: it damages something)."""
        return None


def register(cls: type[Perturbation]) -> type[Perturbation]:
    """Class decorator: make ``cls`` known to sweeps, configs, CSV readers and plots by its ``name``."""
    if cls.name in PERTURBATIONS and PERTURBATIONS[cls.name] is not cls:
        raise ValueError(f"a perturbation named {cls.name!r} is already registered ({PERTURBATIONS[cls.name]})")
    PERTURBATIONS[cls.name] = cls
    return cls


class EntrywisePerturbation(Perturbation):
    """A perturbation of single entries, blind to shapes: it damages flat chunks (``split_chunks``)."""

    def apply_(
        self,
        tensors: Sequence[torch.Tensor],
        generator: torch.Generator,
        originals: Sequence[torch.Tensor] | None = None,
    ) -> None:
        """Damage ``tensors`` in place, drawing randomness from ``generator`` only.

        ``originals``: copies of the current values of ``tensors`` kept elsewhere (e.g. a snapshot).
        Given them, random draws go straight into ``tensors``' storage instead of temporary buffers.
        Same generator state, same result, with or without them.
        """
        self.apply_chunks_(split_chunks(tensors, originals), generator)

    def damage_(self, weights: Weights, generator: torch.Generator) -> None:
        self.apply_chunks_(weights.chunks, generator)

    @abstractmethod
    def apply_chunks_(self, chunks: Sequence[Chunk], generator: torch.Generator) -> None:
        """``apply_`` on tensors already cut by ``split_chunks`` (split once, damage many times)."""


@register
@dataclass(frozen=True)
class GaussianNoise(EntrywisePerturbation):
    """Add i.i.d. ``N(0, std²)`` noise to every targeted weight (paper eq. 6): analog drift of stored values."""

    std: float
    name: ClassVar[str] = "gaussian_noise"
    unit: ClassVar[Unit] = "entry"
    failure: ClassVar[str] = "analog drift of the stored values"
    level_label: ClassVar[str] = "noise std σ"
    level_meaning: ClassVar[str] = "the standard deviation σ of the noise added to every targeted weight"
    level_range: ClassVar[str] = "finite number ≥ 0"
    title: ClassVar[str] = "Gaussian noise added to {targets} (std σ)"

    def __post_init__(self) -> None:
        check_number("gaussian_noise.std", self.std, low=0)

    @property
    def level(self) -> float:
        return self.std

    def apply_chunks_(self, chunks: Sequence[Chunk], generator: torch.Generator) -> None:
        if self.std == 0:
            return
        for _, chunk, original in chunks:
            if original is None:  # keep the weights: draw into a buffer
                original, chunk_noise = chunk, torch.empty_like(chunk)
            else:  # the snapshot keeps them: draw straight into the weights' storage
                chunk_noise = chunk
            chunk_noise.normal_(generator=generator)
            if self.std <= torch.finfo(chunk.dtype).max:
                torch.add(original, chunk_noise, alpha=self.std, out=chunk)
            else:  # a level beyond the dtype's range: compute in float64, store the overflow (inf)
                chunk.copy_(original.double() + chunk_noise.double() * self.std)


@register
@dataclass(frozen=True)
class RandomDeletion(EntrywisePerturbation):
    """Set each targeted weight to zero independently with probability ``p``: single connections lost."""

    p: float
    name: ClassVar[str] = "random_deletion"
    unit: ClassVar[Unit] = "entry"
    failure: ClassVar[str] = "single connections lost at random"
    level_label: ClassVar[str] = "deletion probability p"
    level_meaning: ClassVar[str] = "the probability that each targeted weight is set to zero"
    title: ClassVar[str] = "Random deletion of {targets} (probability p)"

    def __post_init__(self) -> None:
        check_number("random_deletion.p", self.p, low=0, high=1)

    @property
    def level(self) -> float:
        return self.p

    @property
    def deterministic(self) -> bool:
        return self.p in (0.0, 1.0)

    @property
    def level_is_hit_probability(self) -> bool:
        return True

    def apply_chunks_(self, chunks: Sequence[Chunk], generator: torch.Generator) -> None:
        if self.p == 0:
            return
        for _, chunk, original in chunks:
            # uniform draws in the default dtype (float32) like torch.rand; into the weights when theirs matches
            if original is not None and chunk.dtype == torch.get_default_dtype():
                chunk.uniform_(generator=generator)
                deleted = chunk < self.p
                chunk.copy_(original)
            else:
                deleted = torch.rand(chunk.shape, generator=generator, device=chunk.device) < self.p
            chunk.masked_fill_(deleted, 0)


@register
@dataclass(frozen=True)
class MagnitudePruning(EntrywisePerturbation):
    """Zero the ``round(p·n)`` smallest-magnitude weights (Han et al. 2015): the weights a pruner removes first.

    ``scope="per_tensor"`` prunes that fraction of every tensor; ``scope="global"`` ranks all
    targeted weights together. Deterministic: one trial per level.
    """

    p: float
    scope: Literal["per_tensor", "global"] = field(
        default="per_tensor", metadata={"doc": "prune that fraction of every tensor, or rank all targets together"}
    )
    name: ClassVar[str] = "magnitude_pruning"
    unit: ClassVar[Unit] = "entry"
    failure: ClassVar[str] = "the weights a pruner removes first"
    level_label: ClassVar[str] = "pruned fraction p (smallest |w|)"
    level_meaning: ClassVar[str] = "the fraction of the targeted weights set to zero, smallest magnitudes first"
    title: ClassVar[str] = "Magnitude pruning of {targets} (fraction p)"

    def __post_init__(self) -> None:
        check_number("magnitude_pruning.p", self.p, low=0, high=1)
        check_choice("magnitude_pruning.scope", self.scope, ("per_tensor", "global"))

    @property
    def level(self) -> float:
        return self.p

    @property
    def deterministic(self) -> bool:
        return True

    def apply_chunks_(self, chunks: Sequence[Chunk], generator: torch.Generator) -> None:
        if self.p == 0:
            return
        if self.scope == "per_tensor":
            for _, group in itertools.groupby(chunks, key=lambda chunk: chunk.tensor):
                live = [chunk.live for chunk in group]
                _zero_smallest(live, round(self.p * sum(c.numel() for c in live)))
        else:
            if len({chunk.live.dtype for chunk in chunks}) > 1:
                raise ValueError("global magnitude pruning ranks tensors of one dtype only")
            _zero_smallest([c.live for c in chunks], round(self.p * sum(c.live.numel() for c in chunks)))


def deterministic_level(name: str, level: float) -> bool:
    """Whether every trial of ``name`` at ``level`` gives the same result (a name the registry lacks counts as
    such: a sweep CSV may come from perturbations registered elsewhere)."""
    perturbation = _registered(name, level)
    return perturbation is None or perturbation.deterministic


def make_perturbation(name: str, level: float, **options: object) -> Perturbation:
    """Build a perturbation from its contract name (``gaussian_noise`` …) and level."""
    if name not in PERTURBATIONS:
        raise ConfigError("perturbation", name, f"unknown; choose one of {sorted(PERTURBATIONS)}")
    cls = PERTURBATIONS[name]
    try:
        return cls(level, **options)  # type: ignore[call-arg]
    except TypeError as err:
        raise ConfigError(f"{name} options", options, str(err)) from None


def hit_probability(name: str, level: float) -> float | None:
    """``level`` where perturbation ``name`` (with its default options) declares it the per-trial probability that a
    unit is damaged (``Perturbation.level_is_hit_probability``); None where not, or where the name is unknown."""
    perturbation = _registered(name, level)
    return level if perturbation is not None and perturbation.level_is_hit_probability else None


def _registered(name: str, level: float) -> Perturbation | None:
    """Perturbation ``name`` at ``level`` with its default options; None where the registry lacks the name."""
    try:
        return make_perturbation(name, level)
    except ConfigError:
        return None


class _LevelLabels(Mapping[str, str]):
    """``{name: level_label}`` of the registered perturbations, read when asked (a live view of ``PERTURBATIONS``)."""

    def __getitem__(self, name: str) -> str:
        return PERTURBATIONS[name].level_label

    def __iter__(self) -> Iterator[str]:
        return iter(PERTURBATIONS)

    def __len__(self) -> int:
        return len(PERTURBATIONS)


#: The x-axis label of every registered perturbation's level (plots and reports: ``LEVEL_LABELS.get(name, name)``).
LEVEL_LABELS: Mapping[str, str] = _LevelLabels()


def describe(name: str, targets: str) -> str:
    """A report title for perturbation ``name`` of ``targets`` (``the attention weights``); the name if unknown."""
    return PERTURBATIONS[name].title.format(targets=targets) if name in PERTURBATIONS else name


@dataclass(frozen=True)
class Option:
    """One option of a perturbation (a dataclass field after its level), as the config reference shows it."""

    name: str
    valid: str
    default: object
    doc: str


def options(cls: type[Perturbation]) -> list[Option]:
    """The options of ``cls``: its dataclass fields after the level, with their valid values (a ``Literal``'s
    choices, else the field's ``metadata["valid"]``), default and ``metadata["doc"]``."""
    hints = typing.get_type_hints(cls)
    found = []
    for option in dataclasses.fields(cls)[1:]:  # type: ignore[arg-type]
        choices = typing.get_args(hints[option.name]) if typing.get_origin(hints[option.name]) is Literal else ()
        quoted = [f"`{choice}`" for choice in choices]
        valid = " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)
        valid = valid or option.metadata.get("valid", "")
        found.append(Option(option.name, valid, option.default, option.metadata.get("doc", "")))
    return found


def _zero_smallest(chunks: list[torch.Tensor], count: int) -> None:
    """Zero exactly ``count`` entries of smallest magnitude across the 1-D ``chunks``.

    Entries tied with the ``count``-th smallest magnitude are zeroed in order (first chunk, first
    position first) until ``count`` are zero. Memory: a few buffers of one chunk.
    """
    if count <= 0:
        return
    if count >= sum(chunk.numel() for chunk in chunks):
        for chunk in chunks:
            chunk.zero_()
        return
    threshold, ties = _kth_smallest_magnitude(chunks, count)
    for chunk in chunks:
        keys = _magnitude_keys(chunk)
        prune = keys < threshold
        if ties:
            tied = (keys == threshold).nonzero().flatten()[:ties]
            prune[tied] = True
            ties -= len(tied)
        chunk.masked_fill_(prune, 0)


def _kth_smallest_magnitude(chunks: list[torch.Tensor], k: int) -> tuple[int, int]:
    """``(key, ties)``: the magnitude key of the ``k``-th smallest entry (1-based) and how many entries
    with exactly that key are among the ``k`` smallest.

    Up to one chunk of entries in all: ``kthvalue`` of their keys. More: radix selection, one byte of
    the key per pass from the most significant; each pass counts, per byte value, the entries that
    share the bytes found so far (``bincount`` chunk by chunk).
    """
    if sum(chunk.numel() for chunk in chunks) <= CHUNK_ELEMENTS:
        keys = torch.cat([_magnitude_keys(chunk) for chunk in chunks])
        key = keys.kthvalue(k).values
        return int(key), k - int((keys < key).sum())
    bits = 8 * chunks[0].element_size()
    prefix, rank = 0, k
    for shift in range(bits - 8, -1, -8):
        counts = torch.zeros(256, dtype=torch.int64, device=chunks[0].device)
        for chunk in chunks:
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


def _flat_chunks(tensor: torch.Tensor) -> list[torch.Tensor]:
    """Contiguous 1-D views of ``tensor`` of at most ``CHUNK_ELEMENTS`` entries, detached from autograd
    (writing into them changes ``tensor``; no ``torch.no_grad`` needed)."""
    if not tensor.is_contiguous():
        raise ValueError("perturbations need contiguous parameters")
    flat = tensor.detach().view(-1)
    return [flat] if flat.numel() <= CHUNK_ELEMENTS else list(flat.split(CHUNK_ELEMENTS))
