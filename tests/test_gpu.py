"""On a CUDA GPU the sweep measures what it measures on the CPU (marker ``gpu``: skipped without one)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cognitive_reserve import SweepGrid, SweepSubject, run_sweep

#: Deterministic perturbations only: the same weights are damaged on both devices.
GRIDS = [SweepGrid("magnitude_pruning", [0.0, 0.3, 0.6]), SweepGrid("random_deletion", [0.0], trials=2)]


def linear_subject(device: str) -> SweepSubject:
    torch.manual_seed(0)
    net = nn.Linear(64, 8).to(device)
    x = torch.randn(256, 64, generator=torch.Generator().manual_seed(1)).to(device)

    def evaluate() -> dict[str, float]:
        with torch.no_grad():
            return {"mse": float(net(x).pow(2).mean())}

    return SweepSubject("linear", net, evaluate, targets="weight")


@pytest.mark.gpu
def test_deterministic_sweep_on_the_gpu_equals_the_cpu_sweep():
    cpu, gpu = (run_sweep(linear_subject(device), GRIDS, seed=0) for device in ("cpu", "cuda"))
    assert [(r.perturbation, r.level, r.trial, r.metric) for r in gpu] == [
        (r.perturbation, r.level, r.trial, r.metric) for r in cpu
    ]
    assert [r.value for r in gpu] == pytest.approx([r.value for r in cpu], rel=1e-5)
    assert len({r.value for r in cpu if r.perturbation == "magnitude_pruning"}) == 3  # pruning changed the output
