"""GPT-2's structure, declared once: for the sweeps (a ``cognitive_reserve.layout.ModelLayout``) and the monitors.

Hugging Face's GPT-2 stores its matrices as ``Conv1D`` weights of shape (in, out): outputs are columns.
``attn.c_attn`` holds Q, K and V side by side along its outputs; head ``h`` is the h-th run of
``n_embd / n_head`` outputs of each, and the same run of the inputs (rows) of ``attn.c_proj``. The outputs of
``mlp.c_fc`` are the MLP's hidden units (``n_inner``, by default 4 · ``n_embd``), ``mlp.act`` holds their
activations, and the inputs (rows) of ``mlp.c_proj`` are the same units.
"""

from __future__ import annotations

from torch import nn

from cognitive_reserve.layout import MLP, Attention, Block, ModelLayout, Packed, Projection

#: Leading module path dropped from logged names: ``model.transformer.h.0...`` → ``h.0...``.
GPT2_STRIP_PREFIX = r"^(model\.)?(transformer\.)?"
#: Names of the fused Q/K/V parameters of GPT-2 (weight and bias of ``c_attn``), and their parts in order.
FUSED_QKV = r"attn\.c_attn\.(weight|bias)$"
QKV_PARTS = ("q", "k", "v")


def gpt2_layout(model: nn.Module, prefix: str = "") -> ModelLayout:
    """The layout of a Hugging Face GPT-2 (``GPT2LMHeadModel``, ``GPT2ForSequenceClassification``: anything with
    ``.config`` and ``.transformer``) whose parameters are named ``<prefix>transformer.h.<i>...`` in the module
    the sweep damages (``prefix="model."`` when the GPT-2 is a LightningModule's ``self.model``)."""
    config = model.config
    width, heads = config.n_embd, config.n_head
    blocks, attention, mlps = [], [], []
    for i in range(config.n_layer):
        block = f"{prefix}transformer.h.{i}."
        qkv = conv1d(f"{block}attn.c_attn")
        q, k, v = (Packed(qkv, part * width, width) for part in range(len(QKV_PARTS)))
        attention.append(Attention(heads, q, k, v, conv1d(f"{block}attn.c_proj")))
        hidden = config.n_inner or 4 * width
        mlps.append(MLP(hidden, (conv1d(f"{block}mlp.c_fc"),), (conv1d(f"{block}mlp.c_proj"),), f"{block}mlp.act"))
        blocks.append(Block(f"h.{i}", block))
    return ModelLayout(tuple(blocks), tuple(attention), tuple(mlps), GPT2_STRIP_PREFIX)


def conv1d(path: str) -> Projection:
    """A Hugging Face ``Conv1D`` at module ``path``: weight (in, out), so its outputs are columns."""
    return Projection(f"{path}.weight", f"{path}.bias", outputs=1)


def output_dim(module: nn.Module, param_name: str) -> int:
    """The dimension of parameter ``param_name`` of ``module`` that indexes its owner's outputs: a Hugging Face
    ``Conv1D`` (recognised by its ``nf`` attribute, its number of outputs) stores its weight as (in, out), so
    columns; ``nn.Linear`` and every other module rows. A bias has one dimension, its outputs."""
    param = module.get_parameter(param_name)
    if param.ndim < 2:
        return 0
    owner = module.get_submodule(param_name.rpartition(".")[0])
    is_conv1d = not isinstance(owner, nn.Linear) and getattr(owner, "nf", None) == param.shape[-1]
    return param.ndim - 1 if is_conv1d else 0
