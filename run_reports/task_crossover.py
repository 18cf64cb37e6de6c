"""Where each T-task linear model overtakes the 1-task one under noise: measured next to closed form.

    python -m run_reports.task_crossover --run runs/linear/gaussian_tasks   # or any linear run

reads the run's last ``robustness/sweep_fit_epoch*.csv``. Per T > T_min: the measured cross-over of the
T-task model over the T_min-task model (``cognitive_reserve.crossover.find_crossover`` on the Monte Carlo
trials, its 95% interval over trials from inverting the per-level t test) and the closed-form one: the
sweep's ``expected`` column is exactly ``a + b·σ²`` (eq. 7), so the curves cross at
``σ = √((a_T − a_1) / (b_1 − b_T))``, also beyond the swept grid (where the measured one reads ``none``).
Writes ``robustness/crossover_vs_T1.csv`` and prints it.
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict
from pathlib import Path

from cognitive_reserve.crossover import find_crossover
from cognitive_reserve.errors import ConfigError
from cognitive_reserve.io import read_sweep_csv, write_records
from cognitive_reserve.rows import all_targets
from cognitive_reserve.sweep import SweepRow
from run_reports.command import run_command

PERTURBATION = "gaussian_noise"
COLUMNS = ("num_tasks", "metric", "measured", "measured_ci_low", "measured_ci_high", "status", "closed_form")


def closed_form_threshold(rows_a: list[SweepRow], rows_b: list[SweepRow]) -> float:
    """σ where the closed forms ``a + b·σ²`` of A and B cross (0: B never worse, inf: never better)."""
    a_clean, a_slope = _quadratic(rows_a)
    b_clean, b_slope = _quadratic(rows_b)
    if b_clean <= a_clean:
        return 0.0
    return math.sqrt((b_clean - a_clean) / (a_slope - b_slope)) if b_slope < a_slope else math.inf


def _quadratic(rows: list[SweepRow]) -> tuple[float, float]:
    """``(a, b)`` of ``expected(σ) = a + b·σ²`` from the clean level and the largest one."""
    by_level = {row.level: row.expected for row in rows if row.expected is not None}
    if 0.0 not in by_level or len(by_level) < 2:
        raise ConfigError("expected", rows[0].model, "needs closed-form values at σ = 0 and one σ > 0")
    top = max(by_level)
    return by_level[0.0], (by_level[top] - by_level[0.0]) / top**2


def crossovers(rows: list[SweepRow]) -> list[dict[str, object]]:
    """One record per T > T_min of the noise sweep in ``rows`` (see the module docstring)."""
    by_tasks: dict[int, list[SweepRow]] = defaultdict(list)
    for row in rows:
        if row.perturbation == PERTURBATION:
            by_tasks[row.num_tasks].append(row)
    if len(by_tasks) < 2:
        raise ConfigError("--run", sorted(by_tasks), f"needs a {PERTURBATION} sweep of at least two models")
    first, *others = sorted(by_tasks)
    records = []
    for t in others:
        metric = by_tasks[t][0].metric
        found = find_crossover(by_tasks[first], by_tasks[t], PERTURBATION, metric)
        records.append(
            {
                "num_tasks": t,
                "metric": metric,
                "measured": found.level,
                "measured_ci_low": found.ci_low,
                "measured_ci_high": found.ci_high,
                "status": found.status,
                "closed_form": closed_form_threshold(by_tasks[first], by_tasks[t]),
            }
        )
    return records


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="a run directory of a linear config (with a noise sweep)")
    args = parser.parse_args(argv)
    sweeps = sorted((Path(args.run) / "robustness").glob("sweep_fit_epoch*[0-9].csv"))
    if not sweeps:
        raise ConfigError("--run", args.run, "no robustness/sweep_fit_epoch*.csv (run `python run.py fit` first)")
    records = crossovers(all_targets(read_sweep_csv(sweeps[-1])))
    out = write_records(Path(args.run) / "robustness" / "crossover_vs_T1.csv", COLUMNS, records)
    for r in records:
        measured = "none in grid" if r["measured"] is None else f"{r['measured']:.3f}"
        print(
            f"T={r['num_tasks']}: measured {measured} [{r['measured_ci_low']:.3f}, {r['measured_ci_high']:.3f}]"
            f", closed form {r['closed_form']:.3f}"
        )
    print(f"wrote {out}")


if __name__ == "__main__":
    run_command(main)
