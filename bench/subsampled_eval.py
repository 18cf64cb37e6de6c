"""Subsampled trials (paired control variate, ``eval_fraction: auto``) vs fixed 20 full-data trials.

    python bench/subsampled_eval.py [--threads 1] [--device cpu|cuda] [--blocks 1024] [--init-from CKPT]
                                    [--train-steps 300] [--no-adaptive-full]

The grid is the paper's GPT-2 test grid (``configs/gpt2/bilingual.yaml``: 9 deletion + 11 noise levels × 20
trials, 7 pruning levels); the model the tiny GPT-2 of ``configs/gpt2/tiny_bilingual.yaml``, trained here for
``--train-steps`` steps on the sample corpus (or ``--init-from`` a ``GPT2LanguageModel`` checkpoint), scored on
a longer synthetic test split (the sample corpus generator, test seed) cut to ``--blocks`` blocks.

1. fixed: every trial scores all the blocks; the widest relative 95 % CI half-width over its random levels
   and metrics becomes the target;
2. subsampled: ``trials: {ci_half_width: <target>, relative: true, max: 50}, eval_fraction: auto`` (the rule's
   default ``min``);
3. (unless ``--no-adaptive-full``) the same adaptive rule on all the data, to separate the two savings;
4. per level (stricter): one ``auto`` grid per random level whose rule targets the level's widest metric in
   the fixed sweep (``metric: <it>``) at the relative half-width the fixed sweep reached for it there, so each
   level's worst metric is as narrow as the fixed sweep's (each grid pays its own clean pass; its seeds are
   those of a one-level grid, not the fixed sweep's).

Evaluated examples count every block scored: trials × blocks for full-data trials, each subsampled trial's
``eval_examples`` and the clean pass over all blocks that the control variate needs.

Figures: ``blocks``, ``units`` (cached batches); ``fixed_examples``, ``subsampled_examples``,
``evaluated_examples_ratio`` (fixed ÷ subsampled); ``worst_level_ci_ratio`` (subsampled ÷ fixed widest relative
half-width: ≤ 1 is equal or narrower); ``fixed_wall_s``, ``subsampled_wall_s``, ``wall_ratio`` (one run each);
``adaptive_full_examples``, ``adaptive_full_ratio`` and its ``adaptive_full_worst_level_ci_ratio``; one line per
random level ``level <perturbation> <level>: examples ratio <fixed ÷ subsampled>, vs adaptive full <÷>, trials
<t>, examples per trial <median>``; ``levels_not_paying_vs_fixed`` and ``levels_not_paying_vs_adaptive_full``
(random levels where the subsampled sweep scored at least as many examples); for step 4
``per_level_examples_ratio`` (random levels only), ``per_level_worst_ci_ratio`` (the largest subsampled ÷ fixed
relative half-width of the targeted metrics) and one ``per-level <perturbation> <level>`` line each.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import lightning as L
import torch
from adaptive_trials import worst_relative_half_width
from common import PAPER_GPT2_CONFIG, Bench, config_grid, figure, setup, tiny_gpt2

from callbacks.perturbation_sweep import parse_grids
from cognitive_reserve import SweepGrid, SweepRow, SweepSubject, run_sweep, summarize
from cognitive_reserve.intervals import BOOTSTRAP_T

#: KB of generated test text per language: comfortably more than 512 blocks of 64 tokens each.
TEST_KILOBYTES = 200
#: The adaptive rule of the subsampled sweeps (its ``ci_half_width`` is set from the fixed sweep).
RULE = {"relative": True, "max": 50}


def train(bench: Bench, steps: int, device: str) -> None:
    """Train the tiny GPT-2 on the sample corpus's training split (as ``tiny_bilingual.yaml`` does)."""
    with tempfile.TemporaryDirectory() as root:
        trainer = L.Trainer(
            max_steps=steps, accelerator="gpu" if device.startswith("cuda") else "cpu", devices=1,
            logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
            limit_val_batches=0, gradient_clip_val=1.0, default_root_dir=root,
        )  # fmt: skip
        bench.module.train()
        trainer.fit(bench.module, bench.datamodule)
    bench.module.to(device).eval()


def examples_per_level(rows: list[SweepRow], blocks: int) -> dict[tuple[str, float], int]:
    """Evaluated blocks per (perturbation, level): a trial's ``eval_examples``, or all blocks."""
    trials = {(r.perturbation, r.level, r.trial): r.eval_examples for r in rows}
    spent: dict[tuple[str, float], int] = defaultdict(int)
    for (perturbation, level, _), examples in trials.items():
        spent[(perturbation, level)] += blocks if examples is None else examples
    return spent


def trials_per_level(rows: list[SweepRow]) -> dict[tuple[str, float], list[int]]:
    """Each trial's evaluated blocks (None: all), per (perturbation, level)."""
    trials = {(r.perturbation, r.level, r.trial): r.eval_examples for r in rows}
    per_level: dict[tuple[str, float], list[int]] = defaultdict(list)
    for (perturbation, level, _), examples in sorted(trials.items()):
        per_level[(perturbation, level)].append(examples)
    return per_level


def timed_sweep(subject: SweepSubject, grids: list[SweepGrid]) -> tuple[list[SweepRow], float]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    rows = run_sweep(subject, grids)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return rows, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--blocks", type=int, default=1024, help="test blocks every full-data trial scores")
    parser.add_argument("--init-from", default=None, help="a GPT2LanguageModel checkpoint (default: train one)")
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--no-adaptive-full", action="store_true", help="skip the adaptive full-data sweep")
    args = parser.parse_args()
    setup(args.threads)
    figure("device", args.device)
    fixed_grids = parse_grids("perturbations", config_grid(PAPER_GPT2_CONFIG))
    with tempfile.TemporaryDirectory() as workdir:
        bench = tiny_gpt2(
            Path(workdir), max_blocks=args.blocks, device=args.device, init_from=args.init_from,
            test_kilobytes=TEST_KILOBYTES,
        )  # fmt: skip
        if args.init_from is None:
            train(bench, args.train_steps, args.device)
        figure("weights", args.init_from or f"trained here, {args.train_steps} steps")
        blocks = sum(len(batch["input_ids"]) for batch in bench.batches)
        if blocks < args.blocks:
            raise SystemExit(f"error: only {blocks} test blocks were generated (asked {args.blocks})")
        figure("blocks", blocks, "d")
        figure("units", len(bench.batches), "d")
        (subject,) = bench.module.robustness_subjects(bench.batches)
        fixed, fixed_wall = timed_sweep(subject, fixed_grids)
        target = worst_relative_half_width(fixed)
        rule = {**RULE, "ci_half_width": target}
        subsampled_grids = [SweepGrid(g.perturbation, g.levels, rule, g.options, "auto") for g in fixed_grids]
        subsampled, subsampled_wall = timed_sweep(subject, subsampled_grids)
        adaptive_full = None
        if not args.no_adaptive_full:
            adaptive_grids = [SweepGrid(g.perturbation, g.levels, rule, g.options) for g in fixed_grids]
            adaptive_full, _ = timed_sweep(subject, adaptive_grids)
        per_level, _ = timed_sweep(subject, per_level_grids(fixed, fixed_grids))
    report(fixed, subsampled, adaptive_full, blocks, target, fixed_wall, subsampled_wall)
    report_per_level(fixed, per_level, fixed_grids, blocks)


def relative_half_widths(rows: list[SweepRow]) -> dict[tuple[str, float], dict[str, float]]:
    """95 % CI half-width ÷ |mean| per (perturbation, level) with an honest interval of spread, per metric."""
    widths: dict[tuple[str, float], dict[str, float]] = defaultdict(dict)
    for s in summarize(rows):
        if s.method == BOOTSTRAP_T:
            widths[(s.perturbation, s.level)][s.metric] = (s.ci_high - s.ci_low) / 2 / abs(s.mean)
    return widths


def per_level_grids(fixed: list[SweepRow], grids: list[SweepGrid]) -> list[SweepGrid]:
    """One ``auto`` grid per random level whose rule targets that level's widest metric in the fixed sweep
    (``metric: <it>``), at the relative half-width the fixed sweep reached for it there."""
    widths = relative_half_widths(fixed)
    grids_per_level = []
    for grid in grids:
        for level in grid.levels:
            if (grid.perturbation, level) in widths:
                metric, width = max(widths[(grid.perturbation, level)].items(), key=lambda item: item[1])
                rule = {**RULE, "ci_half_width": width, "metric": metric}
                grids_per_level.append(SweepGrid(grid.perturbation, [level], rule, grid.options, "auto"))
    return grids_per_level


def report_per_level(fixed: list[SweepRow], per_level: list[SweepRow], grids: list[SweepGrid], blocks: int) -> None:
    """The stricter comparison: every random level's widest metric as narrow as in the fixed sweep."""
    fixed_widths, own_widths = relative_half_widths(fixed), relative_half_widths(per_level)
    fixed_spent = examples_per_level(fixed, blocks)
    levels = list(own_widths)
    spent = sum(examples_per_level(per_level, blocks).values()) + blocks * len(levels)  # a clean pass per grid
    figure("per_level_fixed_examples", sum(fixed_spent[key] for key in levels), "d")
    figure("per_level_subsampled_examples", spent, "d")
    figure("per_level_examples_ratio", sum(fixed_spent[key] for key in levels) / spent, ".2f")
    targeted = {(g.perturbation, g.levels[0]): g.trials.metric for g in per_level_grids(fixed, grids)}
    ratios = [own_widths[key][targeted[key]] / fixed_widths[key][targeted[key]] for key in levels]
    figure("per_level_worst_ci_ratio", max(ratios), ".3f")
    per_level_spent = examples_per_level(per_level, blocks)
    for key in levels:
        ratio = fixed_spent[key] / (per_level_spent[key] + blocks)
        trials = len({r.trial for r in per_level if (r.perturbation, r.level) == key})
        print(f"per-level {key[0]} {key[1]}: examples ratio {ratio:.2f} (with its clean pass), trials {trials}")


def report(
    fixed: list[SweepRow],
    subsampled: list[SweepRow],
    adaptive_full: list[SweepRow] | None,
    blocks: int,
    target: float,
    fixed_wall: float,
    subsampled_wall: float,
) -> None:
    """Print the figures."""
    fixed_spent = examples_per_level(fixed, blocks)
    subsampled_spent = examples_per_level(subsampled, blocks)
    fixed_total = sum(fixed_spent.values())
    subsampled_total = sum(subsampled_spent.values()) + blocks  # + the clean pass of the control variate
    figure("fixed_examples", fixed_total, "d")
    figure("subsampled_examples", subsampled_total, "d")
    figure("evaluated_examples_ratio", fixed_total / subsampled_total, ".2f")
    figure("target_relative_half_width", target, ".3g")
    subsampled_worst = worst_relative_half_width(subsampled)
    figure("subsampled_worst_relative_half_width", subsampled_worst, ".3g")
    figure("worst_level_ci_ratio", subsampled_worst / target, ".3f")
    figure("fixed_wall_s", fixed_wall, ".1f")
    figure("subsampled_wall_s", subsampled_wall, ".1f")
    figure("wall_ratio", fixed_wall / subsampled_wall, ".2f")
    if adaptive_full is not None:
        adaptive_total = sum(examples_per_level(adaptive_full, blocks).values())
        figure("adaptive_full_examples", adaptive_total, "d")
        figure("adaptive_full_ratio", fixed_total / adaptive_total, ".2f")
        figure("adaptive_full_worst_level_ci_ratio", worst_relative_half_width(adaptive_full) / target, ".3f")
    adaptive_spent = examples_per_level(adaptive_full, blocks) if adaptive_full is not None else {}
    costlier_than_fixed, costlier_than_adaptive = [], []
    for key, trials in trials_per_level(subsampled).items():
        if all(examples is None for examples in trials):
            continue  # deterministic levels: scored on all the data in every sweep
        name = f"{key[0]} {key[1]}"
        line = f"level {name}: examples ratio {fixed_spent[key] / subsampled_spent[key]:.2f}"
        if key in adaptive_spent:
            line += f", vs adaptive full {adaptive_spent[key] / subsampled_spent[key]:.2f}"
            if adaptive_spent[key] <= subsampled_spent[key]:
                costlier_than_adaptive.append(name)
        print(f"{line}, trials {len(trials)}, examples per trial {statistics.median(e or blocks for e in trials):g}")
        if fixed_spent[key] <= subsampled_spent[key]:
            costlier_than_fixed.append(name)
    figure("levels_not_paying_vs_fixed", ", ".join(costlier_than_fixed) or "none")
    if adaptive_full is not None:
        figure("levels_not_paying_vs_adaptive_full", ", ".join(costlier_than_adaptive) or "none")


if __name__ == "__main__":
    main()
