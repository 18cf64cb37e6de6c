"""Cost of a layer-wise test sweep relative to the all-targets sweep, on the tiny GPT-2.

    python bench/layer_sweep_cost.py [--threads 1] [--repeats 2]

The grid is the test-time sweep of ``configs/gpt2/tiny_layers.yaml`` (the tiny configs' grid); the model the
tiny GPT-2 of ``configs/gpt2/tiny_bilingual.yaml`` (random weights, its own BPE) on the whole test split of the
sample corpus, scored in place (``trial_batch`` 1, as configured). Three sweeps, interleaved, best of
``--repeats``: all attention targets together (an ordinary sweep), then layer-wise ``per_block`` and
``per_matrix`` (each: the all-targets sweep, then every group alone; level-0 rows reused, not re-measured).

Figures: ``groups_<rule>`` (how many groups), ``evaluations_all_targets`` / ``evaluations_<rule>`` (evaluation
passes over the test split), ``<rule>_evaluations_ratio``, ``<rule>_wall_ratio`` and ``<rule>_cpu_ratio``
(layer-wise ÷ all-targets; with one thread, process CPU time is what the wall time would be on an idle
machine), ``all_targets_wall_s``.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml
from common import ROOT, best_times, config_grid, figure, setup, tiny_gpt2

from callbacks.perturbation_sweep import parse_grids
from cognitive_reserve import SweepSubject, run_sweep
from cognitive_reserve.groups import run_grouped_sweep, split_targets

LAYERS_CONFIG = yaml.safe_load((ROOT / "configs/gpt2/tiny_layers.yaml").read_text())
RULES = ("per_block", "per_matrix")


def counted(subject: SweepSubject) -> tuple[SweepSubject, list[int]]:
    """``subject`` whose ``evaluate`` counts its calls (in the returned one-item list)."""
    calls = [0]
    evaluate = subject.evaluate

    def evaluate_counted() -> dict[str, float]:
        calls[0] += 1
        return evaluate()

    subject.evaluate = evaluate_counted
    return subject, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    setup(args.threads)
    grids = parse_grids("perturbations", config_grid(LAYERS_CONFIG, 0))
    with tempfile.TemporaryDirectory() as tmp:
        bench = tiny_gpt2(Path(tmp))
    subject, calls = counted(bench.module.robustness_subjects(bench.batches)[0])
    sweeps: dict[str, Callable[[], object]] = {"all_targets": lambda: run_sweep(subject, grids, 0)}
    for rule in RULES:
        sweeps[rule] = lambda rule=rule: run_grouped_sweep(subject, grids, 0, rule)
    evaluations = {}
    for name, sweep in sweeps.items():
        calls[0] = 0
        sweep()
        evaluations[name] = calls[0]
    times = best_times(sweeps, args.repeats)
    figure("eval_blocks", sum(len(batch["input_ids"]) for batch in bench.batches), "d")
    figure("evaluations_all_targets", evaluations["all_targets"], "d")
    figure("all_targets_wall_s", times["all_targets"].wall)
    for rule in RULES:
        figure(f"groups_{rule}", len(split_targets(subject.module, subject.targets, rule)), "d")
        figure(f"evaluations_{rule}", evaluations[rule], "d")
        figure(f"{rule}_evaluations_ratio", evaluations[rule] / evaluations["all_targets"])
        figure(f"{rule}_wall_ratio", times[rule].wall / times["all_targets"].wall)
        figure(f"{rule}_cpu_ratio", times[rule].cpu / times["all_targets"].cpu)


if __name__ == "__main__":
    main()
