"""What a trial of each structural perturbation costs, beside random deletion of the same weights, in one run.

    python bench/structural_cost.py [--threads 1] [--repeats 7] [--trials 20]

Figures (CPU time, one torch thread). The sweeps and the clean passes run interleaved, ``--repeats`` rounds of
each; a ratio is taken within each round (numerator and denominator measured side by side) and printed as the
median of the rounds' ratios with their range (``<figure>_range``: the lowest and highest round). For ``n``
rounds of independent ratios the range holds the ratios' true median with probability ``1 − 2 · 0.5ⁿ``
(``ratio_range_covers_median``: 0.984 for 7), whatever their distribution: a ratio whose range holds 1 is
within the timing noise.
- ``<name>_per_trial_over_clean``: a sweep of ``--trials`` trials of one level of ``<name>`` (``run_sweep``, in
  place) ÷ as many clean evaluation passes, on the tiny GPT-2 of ``configs/gpt2/tiny_bilingual.yaml`` (random
  weights, the whole test split of the sample corpus). ``<name>`` is the perturbation and what it damages:
  ``random_deletion_attn``, ``head_deletion_attn``, ``bit_flip_attn`` (the attention weights, ``attn``),
  ``random_deletion_mlp``, ``neuron_deletion_mlp``, ``activation_fault_mlp``, ``activation_fault_noise_mlp`` (the
  MLP weights, ``mlp``); level 0.25 each (bit flip: 0.25 of the weights get a flipped bit).
- ``<name>_vs_random_deletion``: its per-trial time ÷ random deletion's of the same targets (≤ 1: no dearer).
- ``<name>_damage_us``: the damage alone (damage and restore, no evaluation), µs per trial (best of the
  repeats), on the tiny GPT-2 and
  (``gpt2_small_shape_<name>_damage_us``) on random weights shaped like GPT-2 small (12 blocks, 768 wide).
- ``gpt2_small_shape_<name>_temporaries_over_targets``: the peak bytes a damage and restore allocates
  (``common.peak_allocated``) ÷ the bytes of the targeted tensors: the perturbation's own buffers.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from common import TINY_CONFIG, Times, figure, peak_allocated, repeated_times, setup, tiny_gpt2
from transformers import GPT2Config, GPT2LMHeadModel

from cognitive_reserve import ModelLayout, SweepGrid, SweepSubject, make_perturbation, run_sweep
from cognitive_reserve.restore import ParameterSnapshot
from cognitive_reserve.targets import select_targets, target_bytes
from lightning_modules.gpt2_layout import gpt2_layout

LEVEL = 0.25
#: name → (perturbation, options, targets)
CASES = {
    "random_deletion_attn": ("random_deletion", {}, "attn"),
    "head_deletion_attn": ("head_deletion", {}, "attn"),
    "bit_flip_attn": ("bit_flip", {}, "attn"),
    "random_deletion_mlp": ("random_deletion", {}, "mlp"),
    "neuron_deletion_mlp": ("neuron_deletion", {}, "mlp"),
    "activation_fault_mlp": ("activation_fault", {}, "mlp"),
    "activation_fault_noise_mlp": ("activation_fault", {"mode": "noise"}, "mlp"),
}


def ratio_figures(name: str, numerators: list[Times], denominators: list[Times]) -> None:
    """The median of the rounds' CPU-time ratios ``numerators[i] / denominators[i]``, and their range."""
    ratios = sorted(n.cpu / d.cpu for n, d in zip(numerators, denominators, strict=True))
    figure(name, statistics.median(ratios))
    figure(f"{name}_range", f"{ratios[0]:.3f}–{ratios[-1]:.3f}")


def per_trial(subject: SweepSubject, repeats: int, trials: int) -> None:
    """Sweep ÷ clean passes for every case, and each case ÷ random deletion of its targets, round by round."""

    def sweep(case: str) -> None:
        name, options, targets = CASES[case]
        subject.targets = targets
        run_sweep(subject, [SweepGrid(name, [LEVEL], trials, options)], seed=0)

    def clean() -> None:
        with torch.inference_mode():
            for _ in range(trials):
                subject.evaluate()

    clean()  # warm-up
    times = repeated_times({"clean": clean, **{case: lambda case=case: sweep(case) for case in CASES}}, repeats)
    figure("repeats", repeats, "d")
    figure("ratio_range_covers_median", 1 - 2 * 0.5**repeats)
    for case in CASES:
        ratio_figures(f"{case}_per_trial_over_clean", times[case], times["clean"])
    for case in CASES:
        reference = "random_deletion_" + case.rsplit("_", 1)[1]
        if case != reference:
            ratio_figures(f"{case}_vs_random_deletion", times[case], times[reference])
    figure("clean_pass_ms", 1000 * min(t.wall for t in times["clean"]) / trials)


def damage_only(
    prefix: str, module: torch.nn.Module, layout: ModelLayout, repeats: int, trials: int, memory: bool = False
) -> None:
    """µs of CPU per damage-and-restore of every case (no evaluation); with ``memory``, its buffers' peak bytes."""
    for case, (name, options, targets) in CASES.items():
        params = select_targets(module, targets)
        snapshot = ParameterSnapshot(params, layout=layout, module=module)
        perturbation = make_perturbation(name, LEVEL, **options)

        def trial(seed: int = 0) -> None:
            snapshot.perturb(perturbation, seed)  # noqa: B023
            snapshot.restore()  # noqa: B023

        trial()  # warm-up: a perturbation's tables of units are made once per snapshot
        best = float("inf")
        for _ in range(repeats):
            start = time.process_time()
            for seed in range(trials):
                trial(seed)
            best = min(best, time.process_time() - start)
        figure(f"{prefix}{case}_damage_us", 1e6 * best / trials, ".0f")
        if memory:
            figure(f"{prefix}{case}_temporaries_over_targets", peak_allocated(trial) / target_bytes(params), ".4f")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    setup(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        bench = tiny_gpt2(Path(tmp))
        figure("gpt2_tiny_eval_blocks", sum(len(b["input_ids"]) for b in bench.batches), "d")
        figure("level", LEVEL)
        figure("trials", args.trials, "d")
        (subject,) = bench.module.robustness_subjects(bench.batches)
        per_trial(subject, args.repeats, args.trials)
        damage_only("", bench.module, subject.layout, args.repeats, args.trials)
    shape = {**TINY_CONFIG["model"]["init_args"]["gpt2_config"], "n_layer": 12, "n_head": 12, "n_embd": 768}
    small = GPT2LMHeadModel(GPT2Config(**{**shape, "n_positions": 64})).eval()
    damage_only("gpt2_small_shape_", small, gpt2_layout(small), args.repeats, max(args.trials // 4, 2), memory=True)


if __name__ == "__main__":
    main()
