"""Perturbations do exactly what they claim, are seeded per trial, and restore bit for bit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cognitive_reserve import (
    ConfigError,
    GaussianNoise,
    MagnitudePruning,
    RandomDeletion,
    make_perturbation,
    perturbed,
    select_targets,
)
from cognitive_reserve.perturbations import CHUNK_ELEMENTS

ALL = [GaussianNoise(0.3), RandomDeletion(0.4), MagnitudePruning(0.5), MagnitudePruning(0.5, scope="global")]


def small_net() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(40, 300), nn.ReLU(), nn.Linear(300, 7), nn.LayerNorm(7))


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_bitwise_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key].view(torch.uint8), b[key].view(torch.uint8)), key


@pytest.mark.parametrize("perturbation", ALL, ids=repr)
def test_perturbed_changes_targets_only_and_restores_bitwise(perturbation):
    model = small_net()
    before = state(model)
    with perturbed(model, perturbation, targets=r"^0\.", seed=3):
        assert not torch.equal(model[0].weight, before["0.weight"])
        assert torch.equal(model[2].weight, before["2.weight"])
    assert_bitwise_equal(state(model), before)


@pytest.mark.parametrize("perturbation", ALL, ids=repr)
def test_restore_is_bitwise_when_the_block_raises(perturbation):
    model = small_net()
    before = state(model)
    with pytest.raises(RuntimeError, match="boom"), perturbed(model, perturbation, seed=0):
        raise RuntimeError("boom")
    assert_bitwise_equal(state(model), before)


def test_random_deletion_zeroes_about_p_of_the_weights():
    weight = torch.ones(1000, 300)
    RandomDeletion(0.3).apply_([weight], torch.Generator().manual_seed(0))
    assert abs((weight == 0).float().mean().item() - 0.3) < 0.005
    assert set(weight.unique().tolist()) == {0.0, 1.0}


def test_gaussian_noise_has_the_requested_std_and_spans_chunks():
    weight = torch.zeros(3 * CHUNK_ELEMENTS + 5)
    GaussianNoise(0.2).apply_([weight], torch.Generator().manual_seed(0))
    assert abs(weight.std().item() - 0.2) < 0.002
    assert abs(weight.mean().item()) < 0.002
    chunks = weight[: 3 * CHUNK_ELEMENTS].view(3, -1)
    assert not torch.equal(chunks[0], chunks[1])  # each chunk draws fresh noise


def test_magnitude_pruning_zeroes_exactly_the_smallest():
    weight = torch.randperm(100).float().sub(50).reshape(10, 10)
    original = weight.clone()
    MagnitudePruning(0.25).apply_([weight], torch.Generator())
    pruned = weight == 0
    assert pruned.sum() == 25
    assert original.abs()[pruned].max() < original.abs()[~pruned].min()


def test_magnitude_pruning_scopes_differ():
    small, large = torch.full((10,), 0.1), torch.full((10,), 5.0)
    small[0], large[0] = 0.05, 4.0
    MagnitudePruning(0.5, scope="global").apply_([small, large], torch.Generator())
    assert (small == 0).all() and (large != 0).all()
    small, large = torch.arange(1, 11).float(), torch.arange(1, 11).float() * 100
    MagnitudePruning(0.5).apply_([small, large], torch.Generator())
    assert (small == 0).sum() == 5 and (large == 0).sum() == 5


def test_level_zero_and_full_deletion_are_deterministic():
    assert GaussianNoise(0.0).deterministic and RandomDeletion(0.0).deterministic
    assert RandomDeletion(1.0).deterministic and MagnitudePruning(0.3).deterministic
    assert not GaussianNoise(0.1).deterministic and not RandomDeletion(0.5).deterministic


def test_same_seed_same_draw_regardless_of_training_rng():
    draws = []
    for training_seed in (0, 123):
        torch.manual_seed(training_seed)
        torch.rand(10)  # training code consuming the global RNG
        model = small_net()
        with perturbed(model, RandomDeletion(0.5), seed=42):
            draws.append(model[0].weight == 0)
    assert torch.equal(draws[0], draws[1])


def test_models_with_same_shapes_get_the_same_masks():
    a, b = small_net(), small_net()
    with torch.no_grad():
        for p in b.parameters():
            p.add_(1.0)  # different values, same shapes
    with perturbed(a, RandomDeletion(0.5), seed=7), perturbed(b, RandomDeletion(0.5), seed=7):
        assert torch.equal(a[0].weight == 0, b[0].weight == 0)


def test_different_seeds_give_different_draws():
    model = small_net()
    with perturbed(model, GaussianNoise(0.1), seed=1):
        first = model[0].weight.clone()
    with perturbed(model, GaussianNoise(0.1), seed=2):
        assert not torch.equal(first, model[0].weight)


@pytest.mark.parametrize(
    ("build", "field", "value"),
    [
        (lambda: GaussianNoise(-0.1), "gaussian_noise.std", "-0.1"),
        (lambda: RandomDeletion(1.5), "random_deletion.p", "1.5"),
        (lambda: RandomDeletion(-0.01), "random_deletion.p", "-0.01"),
        (lambda: MagnitudePruning(0.2, scope="layer"), "magnitude_pruning.scope", "'layer'"),
        (lambda: GaussianNoise(float("nan")), "gaussian_noise.std", "nan"),
        (lambda: make_perturbation("dropout", 0.1), "perturbation", "'dropout'"),
    ],
)
def test_bad_perturbation_input_is_a_one_line_error_naming_field_and_value(build, field, value):
    with pytest.raises(ConfigError) as info:
        build()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{field}={value}:")


def test_selector_matching_nothing_is_an_error():
    with pytest.raises(ConfigError, match=r"^targets='attn': matches no parameter of Sequential"):
        select_targets(small_net(), "attn")


def test_selector_by_name_and_by_module_type():
    model = small_net()
    assert list(select_targets(model, r"weight$")) == ["0.weight", "2.weight", "3.weight"]
    assert list(select_targets(model, ["^0\\.", "^3\\.bias"])) == ["0.weight", "0.bias", "3.bias"]
    assert list(select_targets(model, nn.LayerNorm)) == ["3.weight", "3.bias"]
