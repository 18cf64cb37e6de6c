"""``bit_flip``: one random bit flipped in a fraction of the stored weights, in the weights' own dtype.

The fault model of hardware-reliability studies (PyTorchFI's weight faults; soft errors in memory): a particle
strike or a worn cell flips one bit of a stored number. A flipped exponent bit can turn a weight into a huge
number, an infinity or a NaN; the damaged model's non-finite metric is then recorded as the metric's worst value
(``cognitive_reserve.metrics``), like any other.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch

from cognitive_reserve.errors import check_choice, check_number
from cognitive_reserve.perturbations import Chunk, EntrywisePerturbation, Unit, register

Bits = Literal["any", "exponent", "mantissa", "sign"]
#: Bit positions ``[low, high)`` of each field of a floating-point number, per dtype (IEEE 754 and bfloat16).
BIT_FIELDS: dict[torch.dtype, dict[str, tuple[int, int]]] = {
    torch.float64: {"any": (0, 64), "exponent": (52, 63), "mantissa": (0, 52), "sign": (63, 64)},
    torch.float32: {"any": (0, 32), "exponent": (23, 31), "mantissa": (0, 23), "sign": (31, 32)},
    torch.float16: {"any": (0, 16), "exponent": (10, 15), "mantissa": (0, 10), "sign": (15, 16)},
    torch.bfloat16: {"any": (0, 16), "exponent": (7, 15), "mantissa": (0, 7), "sign": (15, 16)},
}
#: The integer dtype of the same size that a float's bits are read as.
_BITS_AS = {8: torch.int64, 4: torch.int32, 2: torch.int16}


@register
@dataclass(frozen=True)
class BitFlip(EntrywisePerturbation):
    """Flip one bit, uniformly among the ``bits`` field of the dtype, in each targeted weight independently with
    probability ``p``: soft errors in the memory that stores the weights (see the module docstring)."""

    p: float
    bits: Bits = field(default="any", metadata={"doc": "which bits a flip may hit: any, or one field of the float"})
    name: ClassVar[str] = "bit_flip"
    unit: ClassVar[Unit] = "bit"
    failure: ClassVar[str] = "soft errors in the memory that stores the weights (PyTorchFI weight faults)"
    level_label: ClassVar[str] = "fraction of weights with a flipped bit"
    level_meaning: ClassVar[str] = "the probability that a targeted weight gets one of its stored bits flipped"
    title: ClassVar[str] = "One bit flipped in a fraction of {targets} (fraction of weights)"

    def __post_init__(self) -> None:
        check_number("bit_flip.p", self.p, low=0, high=1)
        check_choice("bit_flip.bits", self.bits, ("any", "exponent", "mantissa", "sign"))

    @property
    def level(self) -> float:
        return self.p

    @property
    def level_is_hit_probability(self) -> bool:
        return True

    def apply_chunks_(self, chunks: Sequence[Chunk], generator: torch.Generator) -> None:
        if self.p == 0:
            return
        for _, chunk, _ in chunks:
            if chunk.dtype not in BIT_FIELDS:
                raise ValueError(f"bit_flip flips bits of floating-point weights, not {chunk.dtype}")
            stored = chunk.view(_BITS_AS[chunk.element_size()])
            masks = _masks(chunk.dtype, self.bits, chunk.device)  # 1 << each bit of the field, then 0
            # one uniform draw u per entry decides both: hit when u < p, and then u / p (uniform in [0, 1)) the bit
            draw = torch.rand(chunk.shape, generator=generator, device=chunk.device)
            which = draw.mul_((len(masks) - 1) / self.p).clamp_(max=len(masks) - 1).to(torch.int32)
            stored ^= masks.index_select(0, which)


@functools.cache
def _masks(dtype: torch.dtype, bits: str, device: torch.device) -> torch.Tensor:
    """``1 << b`` for every bit ``b`` of the field ``bits`` of ``dtype``, then a 0 (the entries not hit)."""
    low, high = BIT_FIELDS[dtype][bits]
    as_int = _BITS_AS[torch.finfo(dtype).bits // 8]
    positions = torch.arange(low, high, dtype=as_int, device=device)
    return torch.cat([torch.ones_like(positions) << positions, torch.zeros(1, dtype=as_int, device=device)])
