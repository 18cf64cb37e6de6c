"""Adaptive vs fixed trials on the paper's GPT-2 test grid (issue #16).

    python bench/adaptive_trials.py [--threads 1] [--repeats 2] [--device cpu|cuda] [--init-from CKPT]

The grid is the test-time sweep of ``configs/gpt2/bilingual.yaml`` (the paper's: 9 deletion + 11 noise
levels × 20 trials, 7 pruning levels); the model the tiny GPT-2 of ``configs/gpt2/tiny_bilingual.yaml``
(random weights, or a trained ``GPT2LanguageModel`` checkpoint with ``--init-from``) on the whole test
split of the sample corpus. First the fixed sweep runs; the widest relative 95% CI half-width it reached
over its random levels and metrics becomes the adaptive rule's target: ``trials: {ci_half_width: <that>,
relative: true, max: 50}`` with the rule's default ``min`` (every metric must reach it).

Figures: ``fixed_evaluations``, ``adaptive_evaluations`` and their ratio ``evaluations_ratio``;
``fixed_wall_s``, ``adaptive_wall_s`` and ``wall_ratio`` (best of ``--repeats``, interleaved);
``target_relative_half_width``; ``fixed_worst_relative_half_width`` and ``adaptive_worst_relative_half_width``
(the widest level of each sweep, relative to its mean); the trials the adaptive levels got
(``adaptive_trials_min/median/max``, ``adaptive_levels_at_max``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections import Counter
from pathlib import Path

import torch
from common import PAPER_GPT2_CONFIG, best_times, config_grid, figure, setup, tiny_gpt2

from callbacks.perturbation_sweep import parse_grids
from cognitive_reserve import SweepGrid, SweepRow, run_sweep, summarize
from cognitive_reserve.intervals import BOOTSTRAP_T


def worst_relative_half_width(rows: list[SweepRow]) -> float:
    """The widest 95% CI half-width ÷ |mean| over the levels with an honest interval of spread, every metric."""
    return max((s.ci_high - s.ci_low) / 2 / abs(s.mean) for s in summarize(rows) if s.method == BOOTSTRAP_T)


def trial_counts(rows: list[SweepRow]) -> dict[tuple[str, float], int]:
    """Trials per (perturbation, level)."""
    trials = {(r.perturbation, r.level, r.trial) for r in rows}
    return dict(Counter((perturbation, level) for perturbation, level, _ in trials))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--init-from", default=None, help="a GPT2LanguageModel checkpoint (default: random weights)")
    args = parser.parse_args()
    setup(args.threads)
    figure("device", args.device)
    figure("weights", args.init_from or "random")
    fixed_grids = parse_grids("perturbations", config_grid(PAPER_GPT2_CONFIG))
    with tempfile.TemporaryDirectory() as workdir:
        bench = tiny_gpt2(Path(workdir), device=args.device, init_from=args.init_from)
        (subject,) = bench.module.robustness_subjects(bench.batches)
        fixed = run_sweep(subject, fixed_grids)
        target = worst_relative_half_width(fixed)
        rule = {"ci_half_width": target, "relative": True, "max": 50}
        adaptive_grids = [SweepGrid(g.perturbation, g.levels, rule, g.options) for g in fixed_grids]
        adaptive = run_sweep(subject, adaptive_grids)
        times = best_times(
            {"fixed": lambda: run_sweep(subject, fixed_grids), "adaptive": lambda: run_sweep(subject, adaptive_grids)},
            args.repeats,
        )
    fixed_count, adaptive_count = (sum(trial_counts(rows).values()) for rows in (fixed, adaptive))
    figure("fixed_evaluations", fixed_count, "d")
    figure("adaptive_evaluations", adaptive_count, "d")
    figure("evaluations_ratio", fixed_count / adaptive_count, ".2f")
    figure("fixed_wall_s", times["fixed"].wall, ".2f")
    figure("adaptive_wall_s", times["adaptive"].wall, ".2f")
    figure("wall_ratio", times["fixed"].wall / times["adaptive"].wall, ".2f")
    figure("target_relative_half_width", target, ".3g")
    figure("fixed_worst_relative_half_width", target, ".3g")
    figure("adaptive_worst_relative_half_width", worst_relative_half_width(adaptive), ".3g")
    random_levels = {(p.name, p.level) for g in adaptive_grids for p in g.perturbations() if not p.deterministic}
    trials = [n for level, n in trial_counts(adaptive).items() if level in random_levels]
    figure("adaptive_trials_min", min(trials), "d")
    figure("adaptive_trials_median", statistics.median(trials), "g")
    figure("adaptive_trials_max", max(trials), "d")
    figure("adaptive_levels_at_max", sum(n == rule["max"] for n in trials), "d")


if __name__ == "__main__":
    main()
