"""SpectralMonitor's selection and arithmetic on real modules: Q/K/V split, power iteration, bad settings."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from callbacks.spectral_monitor import SpectralMonitor
from callbacks.weight_norms import WeightNorms
from cognitive_reserve import ConfigError
from cognitive_reserve.spectral import exact_basis, power_iteration
from tests.helpers.tiny_gpt2 import TinyGPT2


def test_gpt2_c_attn_is_split_into_q_k_v_exactly_like_slicing_the_hf_weight():
    model = TinyGPT2()
    monitor = SpectralMonitor()
    monitor.select(model)
    width = model.model.config.n_embd
    names = [m.name for m in monitor.matrices]
    assert names == [f"h.{i}.attn.{part}" for i in (0, 1) for part in ("c_attn.q", "c_attn.k", "c_attn.v", "c_proj")]
    matrices = {m.name: m.value() for m in monitor.matrices}
    for i, block in enumerate(model.model.transformer.h):
        fused = block.attn.c_attn.weight  # HF Conv1D: (in, out) = (n_embd, 3·n_embd)
        assert fused.shape == (width, 3 * width)
        for j, part in enumerate("qkv"):
            by_hand = fused[:, j * width : (j + 1) * width]
            assert torch.equal(matrices[f"h.{i}.attn.c_attn.{part}"], by_hand)
            assert matrices[f"h.{i}.attn.c_attn.{part}"].data_ptr() == by_hand.data_ptr()  # a view, not a copy
        assert torch.equal(matrices[f"h.{i}.attn.c_proj"], block.attn.c_proj.weight)


def test_the_q_part_is_the_map_gpt2_uses_to_compute_queries():
    """Not only the same numbers as a slice: x @ W_q + b_q is the query HF's attention computes."""
    model = TinyGPT2()
    monitor = SpectralMonitor()
    monitor.select(model)
    attention = model.model.transformer.h[0].attn
    width = model.model.config.n_embd
    x = torch.randn(2, 5, width, generator=torch.Generator().manual_seed(0))
    query, key, value = attention.c_attn(x).split(width, dim=2)  # how GPT2Attention splits its projection
    parts = {m.name.rsplit(".", 1)[-1]: m.value() for m in monitor.matrices if m.name.startswith("h.0.attn.c_attn")}
    bias = attention.c_attn.bias.split(width)
    with torch.no_grad():
        for name, expected, b in zip("qkv", (query, key, value), bias, strict=True):
            torch.testing.assert_close(x @ parts[name] + b, expected)


def test_fused_nn_linear_weights_split_along_their_rows():
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv = nn.Linear(8, 24)  # (out, in): the three projections are row blocks

    block = Block()
    monitor = SpectralMonitor(targets=r"qkv\.weight", split={r"qkv\.weight$": ["q", "k", "v"]})
    monitor.select(block)
    assert [m.name for m in monitor.matrices] == ["qkv.q", "qkv.k", "qkv.v"]
    for i, matrix in enumerate(monitor.matrices):
        assert torch.equal(matrix.value(), block.qkv.weight[8 * i : 8 * (i + 1)])


def test_warm_power_iteration_follows_a_drifting_matrix_from_below():
    generator = torch.Generator().manual_seed(0)
    matrix = torch.randn(48, 32, generator=generator) * 0.05
    sigma, basis = exact_basis(matrix, block_size=8)
    assert sigma.item() == pytest.approx(torch.linalg.svdvals(matrix)[0].item(), rel=1e-6)
    for _ in range(20):
        matrix += 0.002 * torch.randn(48, 32, generator=generator)  # a training step's worth of change
        sigma, _, basis = power_iteration(matrix, basis, iterations=2)
        exact = torch.linalg.svdvals(matrix)[0].item()
        assert sigma.item() <= exact * (1 + 1e-6)  # a lower bound, always
        assert sigma.item() == pytest.approx(exact, rel=1e-3)
    zero = power_iteration(torch.zeros(6, 4), torch.eye(4)[:, :2], iterations=2)
    assert zero[0].item() == 0.0 and torch.isfinite(zero[2]).all()


def test_unconverged_estimates_get_more_steps_until_they_match_svdvals():
    """A matrix replaced wholesale between measurements (the worst case) is still measured to 1e-3."""
    generator = torch.Generator().manual_seed(1)
    weight = nn.Parameter(torch.randn(64, 64, generator=generator) * 0.02)  # flat random spectrum
    holder = nn.Module()
    holder.register_parameter("w_attn", weight)
    monitor = SpectralMonitor(targets="w_attn", every_n_steps=1)
    monitor.select(holder)
    monitor.measure(0)  # exact start
    for step in range(1, 4):
        weight.data = torch.randn(64, 64, generator=generator) * 0.02
        measured = monitor.measure(step)[("w_attn", "sigma_max")].item()
        assert measured == pytest.approx(torch.linalg.svdvals(weight.detach())[0].item(), rel=1e-3)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: SpectralMonitor(targets=r"c_attn\.bias"), "SpectralMonitor.targets"),  # 1-D only
        (lambda: SpectralMonitor(targets="nothing_like_this"), "SpectralMonitor.targets"),
        (lambda: SpectralMonitor(split={r"c_proj\.weight$": ["a", "b", "c"]}), "SpectralMonitor.split"),  # 32 % 3
        (lambda: WeightNorms(targets="nothing_like_this"), "WeightNorms.targets"),
    ],
)
def test_selections_that_cannot_work_are_config_errors(make, field):
    with pytest.raises(ConfigError) as raised:
        make().select(TinyGPT2())
    assert raised.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"method": "lanczos"}, "SpectralMonitor.method"),
        ({"iterations": 1}, "SpectralMonitor.iterations"),
        ({"every_n_steps": 0}, "SpectralMonitor.every_n_steps"),
        ({"top_k": 3}, "SpectralMonitor.spectrum_every_n_steps"),  # top-k needs a spectrum interval
        ({"strip_prefix": "("}, "SpectralMonitor.strip_prefix"),
    ],
)
def test_bad_settings_fail_at_construction(kwargs, field):
    with pytest.raises(ConfigError) as raised:
        SpectralMonitor(**kwargs)
    assert raised.value.field == field
    assert "\n" not in str(raised.value)
