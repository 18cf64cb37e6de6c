"""Extra peak memory of a sweep against the bytes of the targeted tensors (issue #6: 3).

    python bench/sweep_memory.py [--threads 1] [--device cpu|cuda]

Memory is counted in bytes of tensors allocated by torch (``common.peak_allocated``: the CPU
allocator's running total as reported to torch's profiler; ``max_memory_allocated`` on CUDA), never
as process RSS. For each model and perturbation family (the config's levels, 2 trials):

- ``<model>_<family>_extra_over_targets``: (peak during ``run_sweep`` − peak during one clean
  evaluation pass) ÷ bytes of the targeted tensors. The snapshot of the targets is 1.0 of it; a
  model copy would add the bytes of the whole model.
- ``<model>_<family>_temporaries_over_targets``: peak of the perturbation's own buffers (perturb and
  restore every level, no evaluation) ÷ target bytes; ``..._naive_temporaries_over_targets`` is the
  same for the plain implementation in ``tests/helpers/naive.py`` (a random tensor per chunk, a sort of all
  magnitudes), the cost before this issue.

Models: the tiny GPT-2 of the tiny configs on the sample corpus's test split, the T=20 linear model
of the digits config, and a GPT-2-small-shaped model (124M, random weights) evaluated on 2 blocks
of 64 random tokens, where the targets (113 MB) outweigh the evaluation's activations. All swept in
place (``trial_batch: 1``, the default). ``linear_digits_T20_stacked_*``: the linear model swept as its
config does (``trial_batch: 32``): the stacked copies of W and the activations of 32 models instead
of one snapshot; ``..._extra_bytes`` gives that in bytes.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path

import torch
from common import (
    DIGITS_CONFIG,
    TINY_CONFIG,
    Bench,
    config_grid,
    config_sweep,
    digits_linear,
    figure,
    peak_allocated,
    setup,
)
from common import tiny_gpt2 as build_tiny_gpt2

from cognitive_reserve import SweepGrid, SweepSubject, run_sweep, select_targets
from cognitive_reserve.restore import ParameterSnapshot
from cognitive_reserve.targets import target_bytes
from tests.helpers.naive import naive_perturb_

GPT2_SMALL = {"n_layer": 12, "n_head": 12, "n_embd": 768, "n_positions": 1024, "vocab_size": 50257}


def families(perturbations: dict[str, dict]) -> dict[str, SweepGrid]:
    """One grid per family, two trials each; magnitude pruning in both scopes."""
    grids = {}
    for name, spec in perturbations.items():
        options = {k: v for k, v in spec.items() if k not in ("levels", "trials")}
        grids[name] = SweepGrid(name, spec["levels"], min(spec.get("trials", 20), 2), options)
        if name == "magnitude_pruning":
            grids["magnitude_pruning_global"] = SweepGrid(name, spec["levels"], 1, {**options, "scope": "global"})
    return grids


def measure(model: str, subject: SweepSubject, grids: dict[str, SweepGrid], device: str, trial_batch: int = 1) -> None:
    targets = select_targets(subject.module, subject.targets)
    size = target_bytes(targets)
    figure(f"{model}_target_bytes", size, "d")
    figure(f"{model}_model_bytes", sum(p.numel() * p.element_size() for p in subject.module.parameters()), "d")
    for perturbation in (p for grid in grids.values() for p in grid.perturbations()):
        if subject.expected is not None:
            subject.expected(perturbation)  # cached closed-form moments: not the sweep's memory
    with torch.inference_mode():
        clean = peak_allocated(subject.evaluate, device)
    figure(f"{model}_clean_eval_peak_bytes", clean, "d")
    for family, grid in grids.items():
        sweep = peak_allocated(lambda grid=grid: run_sweep(subject, [grid], seed=0, trial_batch=trial_batch), device)
        figure(f"{model}_{family}_extra_over_targets", (sweep - clean) / size)
        if trial_batch > 1:
            figure(f"{model}_{family}_extra_bytes", sweep - clean, "d")
            continue
        own, naive = temporaries(targets, grid, device)
        figure(f"{model}_{family}_temporaries_over_targets", own / size)
        figure(f"{model}_{family}_naive_temporaries_over_targets", naive / size)


def temporaries(targets: dict[str, torch.Tensor], grid: SweepGrid, device: str) -> tuple[int, int]:
    """Peak bytes of the perturbations' buffers: ours, and the naive implementation's."""
    snapshot = ParameterSnapshot(targets)
    own = peak_allocated(lambda: damage(snapshot, grid), device)
    return own, peak_allocated(lambda: damage(snapshot, grid, naive=True), device)


def damage(snapshot: ParameterSnapshot, grid: SweepGrid, naive: bool = False) -> None:
    """Perturb and restore every level of ``grid`` once (no evaluation)."""
    for perturbation in grid.perturbations():
        if naive:
            tensors = snapshot.tensors
            naive_perturb_(perturbation, tensors, torch.Generator(tensors[0].device).manual_seed(1))
        else:
            snapshot.perturb(perturbation, seed=1)
        snapshot.restore()


def gpt2_small_shaped(device: str) -> Bench:
    """A GPT-2-small-shaped LM (random weights) and one batch of 2 blocks × 64 random tokens."""
    import lightning_modules.gpt2_lm as gpt2_lm

    tokenizer_config = {"bos_token_id": 0, "eos_token_id": 0}
    torch.manual_seed(0)
    model = gpt2_lm.GPT2LanguageModel(gpt2_config={**GPT2_SMALL, **tokenizer_config}, tokenizer="train")
    model.languages = ["en"]
    model.to(device).eval()
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, GPT2_SMALL["vocab_size"], (2, 65), generator=generator)
    batch = {
        "input_ids": tokens[:, :-1], "targets": tokens[:, 1:],
        "language": torch.zeros(2, dtype=torch.long), "num_bytes": torch.full((2,), 256),
    }  # fmt: skip
    batches = [{k: v.to(device) for k, v in batch.items()}]
    return Bench(model, batches, lambda: copy.deepcopy(batches))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    setup(args.threads)
    figure("device", args.device)
    gpt2_grids = families(config_grid(TINY_CONFIG))
    with tempfile.TemporaryDirectory() as tmp:
        tiny = build_tiny_gpt2(Path(tmp), device=args.device)
        measure("gpt2_tiny", tiny.module.robustness_subjects(tiny.batches)[0], gpt2_grids, args.device)
    linear = digits_linear([20], device=args.device)
    linear_grids = families(config_grid(DIGITS_CONFIG, 0))
    linear_subject = linear.module.robustness_subjects(linear.batches)[0]
    measure("linear_digits_T20", linear_subject, linear_grids, args.device)
    stacked = config_sweep(DIGITS_CONFIG, 0).get("trial_batch", 1)
    measure("linear_digits_T20_stacked", linear_subject, linear_grids, args.device, stacked)
    small = gpt2_small_shaped(args.device)
    measure("gpt2_small_shape", small.module.robustness_subjects(small.batches)[0], gpt2_grids, args.device)


if __name__ == "__main__":
    main()
