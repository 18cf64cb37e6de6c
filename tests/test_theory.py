"""Paper §2 closed forms against exact algebra and against Monte Carlo simulation."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from cognitive_reserve import (
    GaussianNoise,
    MagnitudePruning,
    NeuronDeletion,
    RandomDeletion,
    SweepGrid,
    SweepSubject,
    run_sweep,
    summarize,
)
from cognitive_reserve.theory import (
    TaskMoments,
    expected_mse,
    gaussian_task_vectors,
    orthonormalize,
    robustness_slope,
    svd_solution,
)
from lightning_modules.linear import LinearRepresentation
from lightning_modules.linear_sweep import linear_layout
from tests.helpers.stats_checks import assert_monte_carlo_matches_closed_form
from tests.helpers.threads import one_thread  # noqa: F401 (a fixture)

F64 = torch.float64


def test_figure_2_toy_example_exactly():
    basis = torch.eye(3, dtype=F64)
    w2, gamma2 = svd_solution(basis[:, :2], k=1)
    w3, gamma3 = svd_solution(basis, k=1)
    assert torch.allclose(w2.T @ gamma2, torch.tensor([[0.5, 0.5], [0.5, 0.5], [0.0, 0.0]], dtype=F64))
    assert torch.allclose(w3.T @ gamma3, torch.full((3, 3), 1 / 3, dtype=F64))
    assert math.isclose(float((gamma2**2).sum() / 2), 1 / 2)
    assert math.isclose(float((gamma3**2).sum() / 3), 1 / 3)
    assert math.isclose(robustness_slope(basis[:, :2], 1), 1 / 2)
    assert math.isclose(robustness_slope(basis, 1), 1 / 3)


def test_svd_solution_is_the_best_rank_k_approximation():
    task_vectors = gaussian_task_vectors(d=30, num_tasks=8, seed=0)
    w, gamma = svd_solution(task_vectors, k=3)
    assert torch.allclose(w @ w.T, torch.eye(3, dtype=F64), atol=1e-12)
    error = torch.linalg.matrix_norm(w.T @ gamma - task_vectors) ** 2
    singular = torch.linalg.svdvals(task_vectors)
    assert math.isclose(float(error), float((singular[3:] ** 2).sum()), rel_tol=1e-10)  # Eckart–Young
    generator = torch.Generator().manual_seed(1)
    for _ in range(20):  # no other rank-3 factorisation does better
        other = torch.randn(30, 3, generator=generator, dtype=F64)
        q, _ = torch.linalg.qr(other)
        assert torch.linalg.matrix_norm(q @ q.T @ task_vectors - task_vectors) ** 2 >= error
    assert math.isclose(float((gamma**2).sum()), float((singular[:3] ** 2).sum()), rel_tol=1e-10)  # eq. 9


def test_orthonormalising_a_trained_w_recovers_the_svd_solution_quantities():
    task_vectors = gaussian_task_vectors(d=20, num_tasks=6, seed=2)
    w, gamma = svd_solution(task_vectors, k=2)
    mixing = torch.tensor([[2.0, 0.5], [-1.0, 3.0]], dtype=F64)  # any invertible reparametrisation
    trained_w, trained_gamma = mixing @ w, torch.linalg.inv(mixing).T @ gamma
    w_on, gamma_on = orthonormalize(trained_w, trained_gamma)
    assert torch.allclose(w_on @ w_on.T, torch.eye(2, dtype=F64), atol=1e-12)
    assert torch.allclose(w_on.T @ gamma_on, w.T @ gamma, atol=1e-12)
    assert math.isclose(float((gamma_on**2).sum()), float((gamma**2).sum()), rel_tol=1e-10)
    again_w, again_gamma = orthonormalize(w_on, gamma_on)  # idempotent
    assert torch.allclose(again_w, w_on) and torch.allclose(again_gamma, gamma_on)


@pytest.mark.parametrize("k", [1, 2])
def test_theorem_2_7_slope_decreases_with_tasks_for_gaussian_task_vectors(k):
    max_tasks = 6
    task_vectors = gaussian_task_vectors(d=max_tasks**3, num_tasks=max_tasks, seed=0)  # d ≥ T³
    slopes = [robustness_slope(task_vectors[:, :t], k) for t in range(k, max_tasks + 1)]
    assert all(b < a for a, b in itertools.pairwise(slopes)), slopes


def test_aligned_tasks_give_no_robustness_gain():
    """The paper's caveat: identical task vectors do not shrink the slope."""
    vector = gaussian_task_vectors(d=50, num_tasks=1, seed=3)
    slopes = [robustness_slope(vector.repeat(1, t), 1) for t in range(1, 6)]
    assert all(math.isclose(s, slopes[0], rel_tol=1e-10) for s in slopes)


def synthetic_subject(num_tasks: int = 6, k: int = 2, d: int = 24, n: int = 400, seed: int = 0) -> SweepSubject:
    """A rank-k model of Gaussian task vectors evaluated on Gaussian inputs with noisy labels."""
    generator = torch.Generator().manual_seed(seed)
    task_vectors = gaussian_task_vectors(d, num_tasks, seed)
    w, gamma = svd_solution(task_vectors, k)
    x = torch.randn(num_tasks, n, d, generator=generator, dtype=F64)
    y = torch.einsum("tnd,dt->tn", x, task_vectors) + 0.1 * torch.randn(num_tasks, n, generator=generator, dtype=F64)
    model = LinearRepresentation(w.clone(), gamma.clone())

    def predictions() -> torch.Tensor:
        return torch.einsum("tnk,kt->tn", x @ model.w.T, model.gamma)

    clean = predictions().detach()
    moments = TaskMoments(
        sq_norm_x=(x**2).sum(-1).mean(-1),
        sq_x=(x**2).mean(1),
        pred_sq=(clean**2).mean(-1),
        pred_target=(clean * y).mean(-1),
        target_sq=(y**2).mean(-1),
        sq_hidden=((x @ w.T) ** 2).mean(1),
    )
    return SweepSubject(
        name="synthetic",
        module=model,
        evaluate=lambda: {"mse": float(((predictions() - y) ** 2).mean())},
        targets="^w$",
        num_tasks=num_tasks,
        expected=lambda p: None if (v := expected_mse(p, w, gamma, moments)) is None else {"mse": v},
        layout=linear_layout(k),
    )


def test_monte_carlo_matches_closed_form_on_synthetic_data():
    grids = [
        SweepGrid("gaussian_noise", [0.0, 0.05, 0.1, 0.2, 0.3, 0.5], trials=40),
        SweepGrid("random_deletion", [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0], trials=40),
    ]
    summaries = summarize(run_sweep(synthetic_subject(), grids, seed=0))
    assert_monte_carlo_matches_closed_form(summaries)
    noise = [s for s in summaries if s.perturbation == "gaussian_noise"]
    assert noise[-1].mean > 5 * noise[0].mean  # the test has teeth: noise matters at these levels


def test_closed_form_expectations_by_perturbation():
    subject = synthetic_subject()
    assert subject.expected(MagnitudePruning(0.3)) is None
    with torch.no_grad():
        clean = subject.evaluate()["mse"]
    assert math.isclose(subject.expected(GaussianNoise(0.0))["mse"], clean, rel_tol=1e-9)
    assert math.isclose(subject.expected(RandomDeletion(0.0))["mse"], clean, rel_tol=1e-9)


@pytest.mark.usefixtures("one_thread")
def test_neuron_deletion_closed_form_matches_a_1000_trial_monte_carlo_and_every_subset():
    """Deleting m of the k hidden units of x ↦ Γᵀ W x at random: the closed form (cognitive_reserve.theory) against
    1,000 seeded trials per level, and exactly against the average over all C(k, m) subsets."""
    k = 6
    subject = synthetic_subject(k=k)
    levels = [0.0, 1 / 6, 0.5, 0.75, 1.0]  # m = 0, 1, 3, 5 (0.75·6 = 4.5 rounds half up), 6 units
    summaries = summarize(run_sweep(subject, [SweepGrid("neuron_deletion", levels, trials=1000)], seed=0))
    assert_monte_carlo_matches_closed_form(summaries)
    assert summaries[2].mean > 2 * summaries[0].mean  # the test has teeth: deleting units matters
    model = subject.module
    clean_w = model.w.detach().clone()
    for level in levels:
        m = round(level * k + 1e-9) if level != 0.75 else 5
        scores = []
        for deleted in itertools.combinations(range(k), m):
            with torch.no_grad():
                model.w[list(deleted)] = 0
                scores.append(subject.evaluate()["mse"])
                model.w.copy_(clean_w)
        expected = subject.expected(NeuronDeletion(level))["mse"]
        assert math.isclose(sum(scores) / len(scores), expected, rel_tol=1e-9), level
    assert subject.expected(NeuronDeletion(0.5, select="norm")) is None
