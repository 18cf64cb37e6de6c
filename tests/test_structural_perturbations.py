"""Structural perturbations on a real Hugging Face GPT-2: head and neuron deletion zero exactly their units (and
equal removing those units' outputs in the forward pass), bit flips flip one stored bit, activation faults hook
the model for one trial only; all restore bit for bit, pair across models, and stack like in-place trials."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from cognitive_reserve import (
    ActivationFault,
    BitFlip,
    ConfigError,
    HeadDeletion,
    NeuronDeletion,
    SweepGrid,
    make_perturbation,
    perturbed,
    run_sweep,
)
from cognitive_reserve.bit_flip import BIT_FIELDS
from cognitive_reserve.groups import run_grouped_sweep
from cognitive_reserve.restore import DamagedCopies, ParameterSnapshot
from cognitive_reserve.targets import select_targets
from cognitive_reserve.units import unit_count
from tests.helpers.threads import one_thread  # noqa: F401 (a fixture)
from tests.helpers.tiny_gpt2 import TinyGPT2

pytestmark = pytest.mark.usefixtures("one_thread")

ATTN_MLP = ["attn", "mlp"]
HEADS, LAYERS, WIDTH = 2, 2, 32  # TinyGPT2: 2 blocks of 2 heads, n_embd 32, 128 hidden units per MLP
STRUCTURAL = [
    HeadDeletion(0.5),
    HeadDeletion(0.5, scope="per_layer", select="norm"),
    NeuronDeletion(0.3),
    NeuronDeletion(0.3, scope="per_layer", select="norm"),
    BitFlip(0.05),
    BitFlip(0.05, bits="exponent"),
    ActivationFault(0.3),
    ActivationFault(0.3, mode="noise", std=2.0),
]


@pytest.fixture(scope="module")
def gpt2() -> TinyGPT2:
    torch.manual_seed(0)
    model = TinyGPT2(n_embd=WIDTH).eval()
    for param in model.parameters():  # no exact zeros among the weights: a zero means a deletion
        param.data += torch.rand_like(param) * 1e-3 + 1e-4
    return model


@pytest.fixture(scope="module")
def tokens() -> torch.Tensor:
    return torch.randint(0, 64, (3, 16), generator=torch.Generator().manual_seed(1))


def logits(model: TinyGPT2, tokens: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.model(input_ids=tokens).logits


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def damaged(model: TinyGPT2, perturbation, targets=ATTN_MLP, seed: int = 3) -> dict[str, torch.Tensor]:
    with perturbed(model, perturbation, targets, seed, model.robustness_layout()):
        return weights(model)


def attn(block: int, name: str) -> str:
    return f"model.transformer.h.{block}.attn.{name}"


def deleted_heads(after: dict[str, torch.Tensor]) -> list[tuple[int, int]]:
    """(block, head) of every head whose value columns are all zero."""
    d = WIDTH // HEADS
    return [
        (b, h)
        for b in range(LAYERS)
        for h in range(HEADS)
        if not after[attn(b, "c_attn.weight")][:, 2 * WIDTH + h * d : 2 * WIDTH + (h + 1) * d].any()
    ]


def test_head_deletion_zeroes_q_k_v_columns_and_c_proj_rows_of_its_heads_only(gpt2):
    before = weights(gpt2)
    after = damaged(gpt2, HeadDeletion(0.5))
    heads = deleted_heads(after)
    assert len(heads) == unit_count(0.5, LAYERS * HEADS) == 2
    d = WIDTH // HEADS
    for name, value in after.items():
        zero = torch.zeros_like(value, dtype=torch.bool)
        for b, h in heads:
            if name == attn(b, "c_attn.weight"):
                for part in range(3):
                    zero[:, part * WIDTH + h * d : part * WIDTH + (h + 1) * d] = True
            if name == attn(b, "c_attn.bias"):
                for part in range(3):
                    zero[part * WIDTH + h * d : part * WIDTH + (h + 1) * d] = True
            if name == attn(b, "c_proj.weight"):
                zero[h * d : (h + 1) * d] = True  # Conv1D (in, out): the head's inputs are rows
        assert not value[zero].any(), name
        assert torch.equal(value[~zero], before[name][~zero]), name  # c_proj.bias, MLPs, the rest: untouched
    assert weights(gpt2).keys() == before.keys() and all(torch.equal(weights(gpt2)[n], before[n]) for n in before)


def test_a_deleted_head_contributes_nothing_to_the_forward_pass(gpt2, tokens):
    """Reference: the intact model with the head's slice of the attention output (c_proj's input) zeroed."""
    layout = gpt2.robustness_layout()
    with perturbed(gpt2, HeadDeletion(0.25), "attn", seed=5, layout=layout):
        heads = deleted_heads(weights(gpt2))
        structural = logits(gpt2, tokens)
    ((block, head),) = heads
    d = WIDTH // HEADS

    def silence(module, inputs):
        merged = inputs[0].clone()
        merged[..., head * d : (head + 1) * d] = 0
        return (merged,)

    handle = gpt2.model.transformer.h[block].attn.c_proj.register_forward_pre_hook(silence)
    try:
        reference = logits(gpt2, tokens)
    finally:
        handle.remove()
    assert torch.allclose(structural, reference, atol=1e-6, rtol=0)
    assert not torch.allclose(structural, logits(gpt2, tokens), atol=1e-3)  # the head mattered


def test_neuron_deletion_zeroes_units_and_equals_dead_activations_of_the_same_units(gpt2, tokens):
    layout = gpt2.robustness_layout()
    before = weights(gpt2)
    with perturbed(gpt2, NeuronDeletion(0.2), ATTN_MLP, seed=9, layout=layout):
        after = weights(gpt2)
        structural = logits(gpt2, tokens)
    with perturbed(gpt2, ActivationFault(0.2), ATTN_MLP, seed=9, layout=layout):
        assert weights(gpt2).keys() == before.keys()
        assert all(torch.equal(weights(gpt2)[n], before[n]) for n in before)  # a fault leaves the weights alone
        dead = logits(gpt2, tokens)
    torch.testing.assert_close(structural, dead, atol=1e-6, rtol=0)  # same seed, same units: GELU(0) = 0
    deleted = 0
    for b in range(LAYERS):
        c_fc = after[f"model.transformer.h.{b}.mlp.c_fc.weight"]
        units = (~c_fc.any(dim=0)).nonzero().flatten()
        deleted += len(units)
        assert not after[f"model.transformer.h.{b}.mlp.c_fc.bias"][units].any()
        assert not after[f"model.transformer.h.{b}.mlp.c_proj.weight"][units].any()
        kept = torch.ones(c_fc.shape[1], dtype=torch.bool)
        kept[units] = False
        assert torch.equal(c_fc[:, kept], before[f"model.transformer.h.{b}.mlp.c_fc.weight"][:, kept])
    assert deleted == unit_count(0.2, LAYERS * 4 * WIDTH)
    assert all(torch.equal(after[n], before[n]) for n in before if ".attn." in n)


def test_per_layer_scope_and_norm_selection(gpt2):
    after = damaged(gpt2, NeuronDeletion(0.25, scope="per_layer", select="norm"))
    for b in range(LAYERS):
        c_fc = f"model.transformer.h.{b}.mlp.c_fc"
        c_proj = f"model.transformer.h.{b}.mlp.c_proj.weight"
        units = (~after[f"{c_fc}.weight"].any(dim=0)).nonzero().flatten()
        assert len(units) == unit_count(0.25, 4 * WIDTH)  # the fraction of every layer
        param = dict(gpt2.named_parameters())
        norms = param[f"{c_fc}.weight"].pow(2).sum(0) + param[f"{c_fc}.bias"].pow(2) + param[c_proj].pow(2).sum(1)
        kept = torch.ones_like(norms, dtype=torch.bool)
        kept[units] = False
        assert norms[units].max() <= norms[kept].min()  # the smallest norms went
    assert NeuronDeletion(0.25, select="norm").deterministic and not NeuronDeletion(0.25).deterministic


def test_same_layout_same_units_other_seed_other_units():
    first, second = TinyGPT2(n_embd=WIDTH), TinyGPT2(n_embd=WIDTH)  # other weights, same shapes
    draws = [
        [deleted_heads(damaged(model, HeadDeletion(0.5), seed=seed)) for seed in range(6)] for model in (first, second)
    ]
    assert draws[0] == draws[1]  # paired across models
    assert len({tuple(heads) for heads in draws[0]}) > 1  # seeded per trial


@pytest.mark.parametrize("perturbation", STRUCTURAL, ids=repr)
def test_restored_bit_for_bit_and_hooks_removed_also_when_the_block_raises(gpt2, tokens, perturbation):
    before, clean = weights(gpt2), logits(gpt2, tokens)
    with (
        pytest.raises(RuntimeError, match="boom"),
        perturbed(gpt2, perturbation, ATTN_MLP, 1, gpt2.robustness_layout()),
    ):
        assert not torch.equal(logits(gpt2, tokens), clean)
        raise RuntimeError("boom")
    after = weights(gpt2)
    assert all(torch.equal(after[n].view(torch.uint8), before[n].view(torch.uint8)) for n in before)
    assert not any(module._forward_hooks for module in gpt2.modules())
    assert torch.equal(logits(gpt2, tokens), clean)


@pytest.mark.parametrize("perturbation", [p for p in STRUCTURAL if p.stacks], ids=repr)
def test_a_stacked_copy_equals_the_in_place_damage(gpt2, perturbation):
    params = select_targets(gpt2, ATTN_MLP)
    layout = gpt2.robustness_layout()
    snapshot = ParameterSnapshot(params, layout=layout, module=gpt2)
    copies = DamagedCopies(params, 2, layout=layout)
    snapshot.perturb(perturbation, seed=4)
    in_place = [t.clone() for t in snapshot.tensors]
    snapshot.restore()
    copies.damage(1, perturbation, seed=4)
    for stack, value in zip(copies.first(2), in_place, strict=True):
        assert torch.equal(stack[1].view(torch.uint8), value.view(torch.uint8))


@pytest.mark.parametrize("dtype", list(BIT_FIELDS))
@pytest.mark.parametrize("bits", ["any", "exponent", "mantissa", "sign"])
def test_bit_flip_flips_one_bit_of_the_chosen_field_in_the_weights_own_dtype(dtype, bits):
    weight = torch.randn(300, 400, generator=torch.Generator().manual_seed(0)).to(dtype)
    original = weight.clone()
    BitFlip(0.02, bits=bits).apply_([weight], torch.Generator().manual_seed(1))
    assert weight.dtype == dtype
    as_int = {2: torch.int16, 4: torch.int32, 8: torch.int64}[weight.element_size()]
    flipped = (weight.view(as_int) ^ original.view(as_int)).flatten()
    changed = flipped != 0
    assert abs(float(changed.double().mean()) - 0.02) < 0.003
    low, high = BIT_FIELDS[dtype][bits]
    for value in flipped[changed].tolist()[:500]:
        position = (value & ((1 << 8 * weight.element_size()) - 1)).bit_length() - 1
        assert value & ((1 << 8 * weight.element_size()) - 1) == 1 << position  # exactly one bit
        assert low <= position < high
    if bits == "sign":
        assert torch.equal(weight[changed.view_as(weight)], -original[changed.view_as(weight)])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_bit_flips_that_break_the_model_are_recorded_as_the_worst_value(gpt2, tokens, dtype):
    """In the model's own dtype (fp32 and bf16): a non-finite loss is recorded as +inf, the weights restored."""
    from cognitive_reserve import SweepSubject

    model = copy.deepcopy(gpt2).to(dtype)
    before = weights(model)

    def evaluate() -> dict[str, float]:
        return {"loss": float(model.model(input_ids=tokens, labels=tokens).loss)}

    subject = SweepSubject("tiny", model, evaluate, "attn", layout=model.robustness_layout())
    rows = run_sweep(subject, [SweepGrid("bit_flip", [0.0, 0.5], trials=2, options={"bits": "exponent"})], seed=0)
    damaged = [r.value for r in rows[1:]]
    assert math.isfinite(rows[0].value) and math.inf in damaged  # recorded as the worst value, never as NaN
    assert all(math.isfinite(v) or v == math.inf for v in damaged)
    after = weights(model)
    assert all(
        p.dtype == dtype and torch.equal(p.view(torch.uint8), before[n].view(torch.uint8)) for n, p in after.items()
    )


def test_noise_faults_are_stuck_offsets_independent_of_the_batches(gpt2, tokens):
    layout = gpt2.robustness_layout()
    with perturbed(gpt2, ActivationFault(0.5, mode="noise", std=3.0), "mlp", 2, layout):
        whole = logits(gpt2, tokens)
        split = torch.cat([logits(gpt2, tokens[:1]), logits(gpt2, tokens[1:])])
    torch.testing.assert_close(whole, split)  # one offset per unit and trial, not per token or batch
    assert not torch.allclose(whole, logits(gpt2, tokens), atol=1e-3)


def test_bad_options_and_unreachable_targets_are_one_line_errors(gpt2):
    with pytest.raises(ConfigError, match=r"^head_deletion.scope='per_tensor': must be one of"):
        make_perturbation("head_deletion", 0.5, scope="per_tensor")
    with pytest.raises(ConfigError, match=r"^bit_flip.bits='exponents'"):
        BitFlip(0.1, bits="exponents")
    with pytest.raises(ConfigError, match=r"^activation_fault.p=1.5"):
        ActivationFault(1.5)
    subject = gpt2.robustness_subjects([])[0]
    subject.targets = "attn"
    with pytest.raises(
        ConfigError, match=r"^targets='attn': neuron_deletion: the targets hold no weight of any neuron"
    ):
        run_sweep(subject, [SweepGrid("neuron_deletion", [0.5], trials=1)])
    with pytest.raises(ConfigError, match=r"^trial_batch=2: activation_fault hooks the model itself"):
        run_sweep(subject, [SweepGrid("activation_fault", [0.5], trials=2)], trial_batch=2)


def test_layer_wise_groups_sweep_a_structural_perturbation_where_its_units_are(gpt2, tokens):
    """Per matrix with attention and MLP targets: head deletion only in attention groups (in the Q group it zeroes
    Q columns only), neuron deletion only in MLP groups; entry-wise deletion everywhere."""

    def evaluate() -> dict[str, float]:
        return {"loss": float(gpt2.model(input_ids=tokens, labels=tokens).loss)}

    from cognitive_reserve import SweepSubject

    subject = SweepSubject("tiny", gpt2, evaluate, ATTN_MLP, layout=gpt2.robustness_layout())
    grids = [SweepGrid(name, [0.0, 0.5], trials=1) for name in ("head_deletion", "neuron_deletion", "random_deletion")]
    rows = run_grouped_sweep(subject, grids, 0, "per_matrix")
    swept = {(row.group, row.perturbation) for row in rows}
    assert ("h.0.attn.c_attn.q", "head_deletion") in swept and ("h.1.attn.c_proj", "head_deletion") in swept
    assert ("h.0.mlp.c_fc", "neuron_deletion") in swept and ("h.0.mlp.c_proj", "neuron_deletion") in swept
    assert not {g for g, p in swept if p == "head_deletion"} & {g for g, p in swept if p == "neuron_deletion"} - {""}
    assert {g for g, p in swept if p == "random_deletion"} >= {g for g, _ in swept}
    levels = {(row.group, row.perturbation, row.level) for row in rows}
    assert ("h.0.mlp.c_fc", "head_deletion", 0.0) not in levels  # no undamaged rows copied to skipped grids


class SmallTransformerBlock(torch.nn.Module):
    """One block of separate Q, K, V ``nn.Linear`` layers (weights (out, in)) and an MLP, declared as docs/extending.md
    shows: not GPT-2's fused, transposed layout."""

    def __init__(self, width: int = 8, heads: int = 2, hidden: int = 16) -> None:
        super().__init__()
        self.width, self.heads, self.hidden = width, heads, hidden
        self.attn = torch.nn.ModuleDict({n: torch.nn.Linear(width, width) for n in ("q", "k", "v", "out")})
        self.mlp = torch.nn.ModuleDict(
            {"up": torch.nn.Linear(width, hidden), "act": torch.nn.GELU(), "down": torch.nn.Linear(hidden, width)}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        q, k, v = (self.attn[n](x).view(batch, length, self.heads, -1).transpose(1, 2) for n in ("q", "k", "v"))
        context = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1) @ v
        y = x + self.attn["out"](context.transpose(1, 2).reshape(batch, length, self.width))
        return y + self.mlp["down"](self.mlp["act"](self.mlp["up"](y)))

    def layout(self):
        from cognitive_reserve.layout import MLP, Attention, ModelLayout, Packed, Projection

        q, k, v = (Projection(f"attn.{n}.weight", f"attn.{n}.bias") for n in ("q", "k", "v"))
        out = Projection("attn.out.weight", "attn.out.bias")
        attention = Attention(
            self.heads, Packed(q, 0, self.width), Packed(k, 0, self.width), Packed(v, 0, self.width), out
        )
        up, down = Projection("mlp.up.weight", "mlp.up.bias"), Projection("mlp.down.weight", "mlp.down.bias")
        return ModelLayout(attention=(attention,), mlps=(MLP(self.hidden, (up,), (down,), "mlp.act"),))


def test_a_layout_of_separate_linear_layers_deletes_the_head_it_names():
    torch.manual_seed(0)
    block = SmallTransformerBlock().eval()
    x = torch.randn(2, 5, 8)
    with torch.no_grad(), perturbed(block, HeadDeletion(0.5), "attn", seed=0, layout=block.layout()):
        structural = block(x)
        (head,) = [h for h in range(2) if not block.attn["v"].weight[h * 4 : (h + 1) * 4].any()]
        assert (
            not block.attn["out"].weight[:, head * 4 : (head + 1) * 4].any()
        )  # nn.Linear: the head's inputs are columns
    handle = block.attn["out"].register_forward_pre_hook(
        lambda module, inputs: (inputs[0].index_fill(-1, torch.arange(head * 4, (head + 1) * 4), 0),)
    )
    with torch.no_grad():
        reference = block(x)
    handle.remove()
    torch.testing.assert_close(structural, reference, atol=1e-6, rtol=0)
    with torch.no_grad(), perturbed(block, NeuronDeletion(0.5), "mlp", seed=1, layout=block.layout()):
        deleted = block(x)
    with torch.no_grad(), perturbed(block, ActivationFault(0.5), "mlp", seed=1, layout=block.layout()):
        dead = block(x)
    torch.testing.assert_close(deleted, dead, atol=1e-6, rtol=0)
