"""Sweep cost against plain evaluation, against the naive method, and across model sizes (issue #6: 1, 2, 8).

    python bench/sweep_overhead.py [--threads 1] [--repeats 3] [--device cpu|cuda]

Figures:
- ``<model>_sweep_overhead``: wall time of ``run_sweep`` over the config's grid (rows written to a CSV
  and flushed per trial, as the callback does) ÷ (number of trials × one clean evaluation pass under
  ``torch.inference_mode`` on the same cached batches). Best of ``--repeats`` interleaved runs of each.
  ``..._cpu``: the same ratio in process CPU time (insensitive to other tenants of a shared machine);
  ``..._no_csv_cpu``: without the CSV; ``<model>_overhead_per_trial_us_cpu``: what a trial adds to its
  evaluation pass (negative: a trial costs less than a pass, as when trials are stacked). Models: the
  tiny GPT-2 of ``configs/gpt2/tiny_bilingual.yaml`` (random weights, the whole test split of the sample
  corpus) and the 12 linear models of ``configs/linear/digits.yaml``, swept as that config does
  (``trial_batch: 32``: 32 damaged copies of W scored per pass) and, as ``linear_digits_in_place_*``,
  one trial at a time in place (``trial_batch: 1``).
- ``<model>_speedup_vs_naive`` and ``<model>_naive_equal``: the naive method (``tests/helpers/naive.py``: deepcopy
  the model, rebuild the batches from the raw data, damage the copy with temporary buffers, evaluate)
  on the same grid, its time ÷ ours (the linear model: stacked, as its config), and whether every
  row is identical.
- ``gpt2_tiny_bf16_*``: the same sweep under bf16 autocast (``PerturbationSweep(autocast_bf16=True)``):
  its speed-up (meant for GPUs; CPUs without bf16 units gain little) and how far values move.
- ``gpt2_<layers>x<width>_*``: clean pass and sweep time at three tiny GPT-2 sizes; the sweep time
  follows the forward-pass cost (``sweep_per_pass`` stays the number of trials).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from common import (
    DIGITS_CONFIG,
    TINY_CONFIG,
    Bench,
    best_times,
    config_grid,
    config_sweep,
    digits_linear,
    figure,
    setup,
    tiny_gpt2,
)

from callbacks.perturbation_sweep import parse_grids
from cognitive_reserve import SweepCsvWriter, SweepGrid, SweepSubject, run_sweep
from tests.helpers.naive import naive_sweep

PARTS = ["gpt2", "linear", "scaling"]
SIZES = [(2, 64), (4, 128), (4, 256)]  # (n_layer, n_embd); heads: n_embd // 32


def trial_count(grids: list[SweepGrid]) -> int:
    return sum(1 if p.deterministic else g.trials for g in grids for p in g.perturbations())


def sweep_all(subjects: list[SweepSubject], grids: list[SweepGrid], csv: Path, trial_batch: int = 1) -> None:
    """What the callback does per sweep: every subject, every trial's rows written and flushed."""
    csv.unlink(missing_ok=True)
    with SweepCsvWriter(csv) as writer:
        for subject in subjects:
            run_sweep(subject, grids, seed=0, on_trial=writer.write, trial_batch=trial_batch)


def clean_passes(subjects: list[SweepSubject], count: int) -> None:
    """``count`` plain evaluation passes of every subject."""
    with torch.inference_mode():
        for subject in subjects:
            for _ in range(count):
                subject.evaluate()


def overhead(
    name: str, bench: Bench, grids: list[SweepGrid], repeats: int, workdir: Path, trial_batch: int = 1
) -> None:
    subjects = bench.module.robustness_subjects(bench.batches)
    trials = trial_count(grids) * len(subjects)
    clean_passes(subjects, 1)  # warm-up
    times = best_times(
        {
            "sweep": lambda: sweep_all(subjects, grids, workdir / f"{name}.csv", trial_batch),
            "sweep_no_csv": lambda: [run_sweep(s, grids, seed=0, trial_batch=trial_batch) for s in subjects],
            "clean": lambda: clean_passes(subjects, trials // len(subjects)),
        },
        repeats,
    )
    sweep, bare, clean = times["sweep"], times["sweep_no_csv"], times["clean"]
    figure(f"{name}_trials", trials, "d")
    figure(f"{name}_clean_pass_ms", 1000 * clean.wall / trials)
    figure(f"{name}_sweep_s", sweep.wall)
    figure(f"{name}_sweep_overhead", sweep.wall / clean.wall)
    figure(f"{name}_sweep_overhead_cpu", sweep.cpu / clean.cpu)
    figure(f"{name}_sweep_overhead_no_csv_cpu", bare.cpu / clean.cpu)
    figure(f"{name}_overhead_per_trial_us_cpu", 1e6 * (sweep.cpu - clean.cpu) / trials)


def versus_naive(
    name: str, bench: Bench, grids: list[SweepGrid], repeats: int, subject_index: int = 0, trial_batch: int = 1
) -> None:
    subject = bench.module.robustness_subjects(bench.batches)[subject_index]
    rows: dict[str, list] = {}
    times = best_times(
        {
            "fast": lambda: rows.__setitem__("fast", run_sweep(subject, grids, seed=0, trial_batch=trial_batch)),
            "naive": lambda: rows.__setitem__(
                "naive", naive_sweep(bench.module, bench.rebuild_batches, grids, 0, subject_index)
            ),
        },
        repeats,
    )
    figure(f"{name}_naive_trials", trial_count(grids), "d")
    figure(f"{name}_naive_s", times["naive"].wall)
    figure(f"{name}_fast_s", times["fast"].wall)
    figure(f"{name}_speedup_vs_naive", times["naive"].wall / times["fast"].wall)
    figure(f"{name}_speedup_vs_naive_cpu", times["naive"].cpu / times["fast"].cpu)
    figure(f"{name}_naive_equal", str(rows["fast"] == rows["naive"] and len(rows["fast"]) > 0).lower())


def bf16_autocast(bench: Bench, grids: list[SweepGrid], repeats: int) -> None:
    """The sweep under bf16 autocast against float32: time and how far the values move."""
    subject = bench.module.robustness_subjects(bench.batches)[0]
    rows: dict[str, list] = {}
    times = best_times(
        {
            "float32": lambda: rows.__setitem__("float32", run_sweep(subject, grids, seed=0)),
            "bf16": lambda: rows.__setitem__("bf16", run_sweep(subject, grids, seed=0, autocast=torch.bfloat16)),
        },
        repeats,
    )
    moved = sorted(abs(h.value - f.value) / abs(f.value) for h, f in zip(rows["bf16"], rows["float32"], strict=True))
    figure("gpt2_tiny_bf16_speedup", times["float32"].wall / times["bf16"].wall)
    figure("gpt2_tiny_bf16_max_rel_diff", moved[-1], ".2e")
    figure("gpt2_tiny_bf16_median_rel_diff", moved[len(moved) // 2], ".2e")


def scaling(grids: list[SweepGrid], workdir: Path, repeats: int, device: str = "cpu") -> None:
    trials = trial_count(grids)
    for layers, width in SIZES:
        shape = {"n_layer": layers, "n_embd": width, "n_head": width // 32}
        bench = tiny_gpt2(workdir, shape, max_blocks=32, device=device)
        subjects = bench.module.robustness_subjects(bench.batches)
        params = sum(p.numel() for p in bench.module.parameters())
        clean_passes(subjects, 1)
        times = best_times(
            {
                "sweep": lambda: sweep_all(subjects, grids, workdir / "s.csv"),  # noqa: B023
                "clean": lambda: clean_passes(subjects, 1),  # noqa: B023
            },
            repeats,
        )
        prefix = f"gpt2_{layers}x{width}"
        figure(f"{prefix}_params", params, "d")
        figure(f"{prefix}_clean_pass_ms", 1000 * times["clean"].wall)
        figure(f"{prefix}_sweep_s", times["sweep"].wall)
        figure(f"{prefix}_sweep_per_pass", times["sweep"].wall / times["clean"].wall)
        figure(f"{prefix}_sweep_per_pass_cpu", times["sweep"].cpu / times["clean"].cpu)
    figure("scaling_trials", trials, "d")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=PARTS, default=PARTS, help="run only these parts")
    parser.add_argument("--device", default="cpu", help="cpu (default: the figures of the docs) or cuda")
    args = parser.parse_args()
    setup(args.threads)
    figure("device", args.device)
    gpt2_grids = parse_grids("perturbations", config_grid(TINY_CONFIG))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if "gpt2" in args.only:
            gpt2 = tiny_gpt2(workdir, device=args.device)
            figure("gpt2_tiny_eval_blocks", sum(len(b["input_ids"]) for b in gpt2.batches), "d")
            overhead("gpt2_tiny", gpt2, gpt2_grids, args.repeats, workdir)
            versus_naive("gpt2_tiny", gpt2, gpt2_grids, args.repeats)
            bf16_autocast(gpt2, gpt2_grids, args.repeats)
        if "linear" in args.only:
            linear_grids = parse_grids("perturbations", config_grid(DIGITS_CONFIG, 0))
            stacked = config_sweep(DIGITS_CONFIG, 0).get("trial_batch", 1)
            linear = digits_linear(device=args.device)
            figure("linear_digits_trial_batch", stacked, "d")
            overhead("linear_digits", linear, linear_grids, args.repeats, workdir, stacked)
            overhead("linear_digits_in_place", linear, linear_grids, args.repeats, workdir)
            few_trials = [SweepGrid(g.perturbation, g.levels, min(g.trials, 5), g.options) for g in linear_grids]
            versus_naive("linear_digits_T20", linear, few_trials, 1, subject_index=-1, trial_batch=stacked)
        if "scaling" in args.only:
            small_grid = [SweepGrid(g.perturbation, g.levels, min(g.trials, 2), g.options) for g in gpt2_grids]
            scaling(small_grid, workdir, args.repeats, args.device)


if __name__ == "__main__":
    main()
