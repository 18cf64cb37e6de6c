"""What a model declares about its own structure: blocks, attention heads, MLP hidden units, weight orientation.

The core knows no model family. A model describes itself with a ``ModelLayout`` (a ``SweepSubject``'s
``layout``; ``SweepableMixin.robustness_layout`` for LightningModules), in qualified parameter names of the
subject's module, and everything that needs structure reads it from there: the structural perturbations
(``cognitive_reserve.units``: heads, neurons, activations) and the layer-wise groups (``cognitive_reserve.groups``).

- ``Projection``: a weight matrix with its bias, and which dimension of the weight indexes the outputs
  (``nn.Linear`` stores (out, in): 0; a (in, out) layout such as Hugging Face's ``Conv1D``: 1).
- ``Packed``: a run of a projection's outputs (Q, K or V of a fused ``qkv`` projection, or all of one projection).
- ``Attention``: ``heads`` heads; head ``h`` is the h-th equal run of each of Q, K and V and the same run of the
  ``output`` projection's inputs (the heads' values side by side).
- ``MLP``: ``hidden`` units; unit ``j`` is output ``j`` of every ``inputs`` projection (a column or row of the
  weight, an entry of the bias) and input ``j`` of every ``outputs`` projection; ``activation`` names the module
  whose output holds the units' activations in its last dimension (for activation faults; None: none).
- ``Block``: a named block of layers (``h.0``) and the prefix of its parameters' names.

``strip_prefix`` (a regular expression) is dropped from the names of parameters outside every block when they
name a layer-wise group; inside a block the name runs from the block's name on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: An index into a parameter (``tensor[index]`` is a view of one block of it).
Index = tuple[slice, ...]


@dataclass(frozen=True)
class Projection:
    """A weight matrix ``weight`` (and ``bias``) by parameter name; ``outputs``: the weight's output dimension."""

    weight: str
    bias: str | None = None
    outputs: int = 0

    @property
    def inputs(self) -> int:
        """The weight's input dimension."""
        return 1 - self.outputs


@dataclass(frozen=True)
class Packed:
    """Outputs ``[start, start + width)`` of ``projection``."""

    projection: Projection
    start: int
    width: int


@dataclass(frozen=True)
class Attention:
    """Multi-head attention: where Q, K and V sit among projection outputs, and the output projection."""

    heads: int
    query: Packed
    key: Packed
    value: Packed
    output: Projection

    @property
    def qkv(self) -> tuple[Packed, Packed, Packed]:
        return (self.query, self.key, self.value)

    def fused(self) -> Projection | None:
        """The projection that holds Q, K and V side by side, when one does (GPT-2's ``c_attn``)."""
        projections = {packed.projection for packed in self.qkv}
        return projections.pop() if len(projections) == 1 else None


@dataclass(frozen=True)
class MLP:
    """``hidden`` units between ``inputs`` and ``outputs`` projections."""

    hidden: int
    inputs: tuple[Projection, ...]
    outputs: tuple[Projection, ...]
    activation: str | None = None


@dataclass(frozen=True)
class Block:
    """A block of layers: its display name and the prefix of its parameters' qualified names."""

    name: str
    prefix: str


@dataclass(frozen=True)
class ModelLayout:
    """A model's structure as the sweeps see it (any part may be empty: a model declares what it has)."""

    blocks: tuple[Block, ...] = ()
    attention: tuple[Attention, ...] = ()
    mlps: tuple[MLP, ...] = ()
    strip_prefix: str = ""

    def projections(self) -> list[Projection]:
        """Every projection the layout declares, once each: per attention Q/K/V and the output, per MLP its inputs
        and outputs."""
        found = [packed.projection for a in self.attention for packed in a.qkv] + [a.output for a in self.attention]
        found += [p for mlp in self.mlps for p in (*mlp.inputs, *mlp.outputs)]
        return list(dict.fromkeys(found))

    def block_of(self, name: str) -> Block | None:
        """The block parameter ``name`` belongs to, or None."""
        return next((block for block in self.blocks if name.startswith(block.prefix)), None)

    def matrix_name(self, name: str) -> str:
        """Parameter ``name``'s module path, from its block's name on (else without ``strip_prefix``), and without
        ``.weight``/``.bias``: ``model.transformer.h.0.attn.c_proj.bias`` → ``h.0.attn.c_proj``."""
        block = self.block_of(name)
        if block is not None:
            short = f"{block.name}.{name[len(block.prefix) :]}"
        else:
            short = re.sub(self.strip_prefix, "", name, count=1) if self.strip_prefix else name
        module_path, _, leaf = short.rpartition(".")
        return module_path if module_path and leaf in ("weight", "bias") else short


#: The layout of a model that declares none: no blocks, no heads, no hidden units.
NO_LAYOUT = ModelLayout()


def output_slice(dim: int, start: int, stop: int) -> Index:
    """The index of entries ``[start, stop)`` along dimension ``dim`` (all entries of the others)."""
    return (slice(None),) * dim + (slice(start, stop),)
