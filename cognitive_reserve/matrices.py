"""Weight matrices by name, as the monitors and the layer-wise sweeps see them.

- ``DEFAULT_STRIP_PREFIX``: the leading module path dropped from names (``model.transformer.h.0...`` → ``h.0...``).
- ``FUSED_QKV``: GPT-2's ``c_attn`` holds Q, K and V side by side along its output dimension.
- ``output_dim``: which dimension of a parameter indexes its module's outputs. A Hugging Face ``Conv1D``
  (recognised by its ``nf`` attribute, its number of outputs) stores its weight as (in, out): outputs are
  columns; ``nn.Linear`` and every other module: rows. A bias has one dimension, its outputs.
- ``output_part``: the index of part ``part`` of ``parts`` equal blocks of a parameter along that dimension.
"""

from __future__ import annotations

from torch import nn

#: Leading module path dropped from logged names: ``model.transformer.h.0...`` → ``h.0...``.
DEFAULT_STRIP_PREFIX = r"^(model\.)?(transformer\.)?"
#: Names of the fused Q/K/V parameters of GPT-2 (weight and bias of ``c_attn``), and their parts in order.
FUSED_QKV = r"attn\.c_attn\.(weight|bias)$"
QKV_PARTS = ("q", "k", "v")

#: An index into a parameter (``tensor[index]`` is a view of one block of it).
Index = tuple[slice, ...]


def output_dim(module: nn.Module, param_name: str) -> int:
    """The dimension of parameter ``param_name`` of ``module`` that indexes its owner's outputs."""
    param = module.get_parameter(param_name)
    if param.ndim < 2:
        return 0
    owner = module.get_submodule(param_name.rpartition(".")[0])
    is_conv1d = not isinstance(owner, nn.Linear) and getattr(owner, "nf", None) == param.shape[-1]
    return param.ndim - 1 if is_conv1d else 0


def output_part(dim: int, size: int, part: int, parts: int) -> Index:
    """The index of block ``part`` of ``parts`` equal blocks of a dimension ``dim`` of length ``size``."""
    width = size // parts
    return (slice(None),) * dim + (slice(part * width, (part + 1) * width),)
