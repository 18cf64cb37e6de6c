"""Stacked trials through ``torch.func.vmap`` vs in place, tiny GPT-2 (issue #16).

    python bench/stacked_trials.py [--threads 1] [--repeats 3] [--device cpu|cuda] [--copies 8 32]

The tiny GPT-2 of ``configs/gpt2/tiny_bilingual.yaml`` (random weights) on ``--blocks`` test blocks of the
sample corpus, swept over 64 trials (random deletion 0.1, 0.3 and Gaussian noise 0.05, 0.1, 16 trials
each) in place (``trial_batch: 1``) and stacked (``trial_batch`` = each of ``--copies``: that many damaged
copies of the attention weights scored in one vmapped pass; GPT-2 has no hand-written stacked scoring).

Figures: ``in_place_s`` and ``stacked_<copies>_s`` (best of ``--repeats``, interleaved), ``speedup_<copies>``
(in place ÷ stacked), ``max_relative_difference_<copies>`` between stacked and in-place values and
``identical_<copies>`` (every row equal bit for bit).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from common import best_times, figure, setup, tiny_gpt2

from cognitive_reserve import SweepGrid, SweepRow, run_sweep

GRIDS = [SweepGrid("random_deletion", [0.1, 0.3], trials=16), SweepGrid("gaussian_noise", [0.05, 0.1], trials=16)]


def max_relative_difference(rows: list[SweepRow], reference: list[SweepRow]) -> float:
    return max(abs(a.value - b.value) / abs(b.value) for a, b in zip(rows, reference, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--copies", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--blocks", type=int, default=32, help="test blocks evaluated per trial")
    args = parser.parse_args()
    setup(args.threads)
    figure("device", args.device)
    with tempfile.TemporaryDirectory() as workdir:
        bench = tiny_gpt2(Path(workdir), max_blocks=args.blocks, device=args.device)
        (subject,) = bench.module.robustness_subjects(bench.batches)
        in_place = run_sweep(subject, GRIDS)
        sweeps = {"in_place": lambda: run_sweep(subject, GRIDS)}
        for copies in args.copies:
            stacked = run_sweep(subject, GRIDS, trial_batch=copies)
            figure(f"identical_{copies}", str(stacked == in_place))
            figure(f"max_relative_difference_{copies}", max_relative_difference(stacked, in_place), ".2e")
            sweeps[f"stacked_{copies}"] = lambda copies=copies: run_sweep(subject, GRIDS, trial_batch=copies)
        times = best_times(sweeps, args.repeats)
    figure("trials", len({(r.perturbation, r.level, r.trial) for r in in_place}), "d")
    figure("in_place_s", times["in_place"].wall, ".2f")
    for copies in args.copies:
        figure(f"stacked_{copies}_s", times[f"stacked_{copies}"].wall, ".2f")
        figure(f"speedup_{copies}", times["in_place"].wall / times[f"stacked_{copies}"].wall, ".2f")


if __name__ == "__main__":
    main()
