"""The naive sweep the fast path is measured against, and checked equal to (``tests/test_fast_path.py``).

Per trial: deep-copy the whole model, build the evaluation batches again from the raw data, damage
the copy the plain way (a fresh random tensor per chunk; magnitude pruning by sorting all
magnitudes), evaluate under ``torch.no_grad``. This is how the paper's code runs a robustness study.
Random draws follow the same contract as ``cognitive_reserve.perturbations`` (per-trial generator, one draw
per chunk of ``CHUNK_ELEMENTS``), so the numbers must be identical to ``run_sweep``'s.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from cognitive_reserve import GaussianNoise, MagnitudePruning, Perturbation, RandomDeletion, SweepGrid, SweepRow
from cognitive_reserve.metrics import as_recorded
from cognitive_reserve.perturbations import CHUNK_ELEMENTS
from cognitive_reserve.seeding import make_generator, trial_seed
from cognitive_reserve.targets import select_targets


def naive_sweep(
    module: Any,
    rebuild_batches: Callable[[], list[Any]],
    grids: Sequence[SweepGrid],
    seed: int,
    subject_index: int = 0,
) -> list[SweepRow]:
    """The rows ``run_sweep(module.robustness_subjects(batches)[subject_index], grids, seed)`` returns."""
    rows: list[SweepRow] = []
    for grid in grids:
        for level_index, perturbation in enumerate(grid.perturbations()):
            for trial in range(1 if perturbation.deterministic else grid.trials):
                trial_rng_seed = trial_seed(seed, grid.perturbation, level_index, trial)
                subject = copy.deepcopy(module).robustness_subjects(rebuild_batches())[subject_index]
                expected = dict(subject.expected(perturbation) or {}) if subject.expected else {}
                tensors = [p.data for p in select_targets(subject.module, subject.targets).values()]
                naive_perturb_(perturbation, tensors, make_generator(trial_rng_seed, tensors[0].device))
                with torch.no_grad():
                    values = subject.evaluate()
                rows += [
                    SweepRow(
                        model=subject.name,
                        num_tasks=subject.num_tasks,
                        perturbation=grid.perturbation,
                        level=perturbation.level,
                        trial=trial,
                        seed=trial_rng_seed,
                        metric=metric,
                        value=as_recorded(metric, float(value)),
                        expected=expected.get(metric),
                    )
                    for metric, value in values.items()
                ]
    return rows


@torch.no_grad()
def naive_perturb_(perturbation: Perturbation, tensors: list[torch.Tensor], generator: torch.Generator) -> None:
    """Damage ``tensors`` in place with temporary buffers: a random tensor per chunk, a sort of all magnitudes."""
    if isinstance(perturbation, GaussianNoise) and perturbation.std > 0:
        for chunk in _chunks(tensors):
            noise = torch.randn(chunk.shape, generator=generator, device=chunk.device, dtype=chunk.dtype)
            chunk.add_(noise, alpha=perturbation.std)
    elif isinstance(perturbation, RandomDeletion) and perturbation.p > 0:
        for chunk in _chunks(tensors):
            chunk.masked_fill_(torch.rand(chunk.shape, generator=generator, device=chunk.device) < perturbation.p, 0)
    elif isinstance(perturbation, MagnitudePruning):
        groups = [[t] for t in tensors] if perturbation.scope == "per_tensor" else [tensors]
        for group in groups:
            magnitudes = torch.cat([t.abs().reshape(-1) for t in group])
            count = round(perturbation.p * magnitudes.numel())
            pruned = torch.zeros(magnitudes.numel(), dtype=torch.bool, device=magnitudes.device)
            pruned[torch.argsort(magnitudes, stable=True)[:count]] = True  # ties: the first positions go first
            for tensor, mask in zip(group, pruned.split([t.numel() for t in group]), strict=True):
                tensor.view(-1).masked_fill_(mask, 0)


def _chunks(tensors: list[torch.Tensor]) -> Iterator[torch.Tensor]:
    for tensor in tensors:
        flat = tensor.view(-1)
        for start in range(0, flat.numel(), CHUNK_ELEMENTS):
            yield flat[start : start + CHUNK_ELEMENTS]
