"""Where each T-task linear model overtakes the 1-task one under noise: measured next to closed form.

    python -m run_reports.task_crossover --run runs/linear/gaussian_tasks   # or any linear run

reads the run's last ``robustness/sweep_fit_epoch*.csv``. Per T > T_min: the measured cross-over of the
T-task model over the T_min-task model (``cognitive_reserve.crossover.find_crossover`` on the Monte Carlo
trials, its 95% interval over trials from inverting the per-level t test) and the closed-form one: the
sweep's ``expected`` column is exactly ``a + b·σ²`` (eq. 7), so the curves cross at
``σ = √((a_T − a_1) / (b_1 − b_T))``, also beyond the swept grid (where the measured one reads ``none``).
Writes ``robustness/crossover_vs_T1.csv`` and prints it, the interval as ``run_reports.compare`` does (a bound
beyond the grid as ``> 0.2``; ``not identified`` where the trials cannot bound it, or are too few for an interval).
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict
from pathlib import Path

from cognitive_reserve.crossover import CrossOver, find_crossover
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
    return [_record(t, found, closed_form) for t, found, closed_form in measured_crossovers(rows)]


def measured_crossovers(rows: list[SweepRow]) -> list[tuple[int, CrossOver, float]]:
    """Per T > T_min of the noise sweep in ``rows``: ``(T, its measured cross-over over T_min, the closed form)``."""
    by_tasks: dict[int, list[SweepRow]] = defaultdict(list)
    for row in rows:
        if row.perturbation == PERTURBATION:
            by_tasks[row.num_tasks].append(row)
    if len(by_tasks) < 2:
        raise ConfigError("--run", sorted(by_tasks), f"needs a {PERTURBATION} sweep of at least two models")
    first, *others = sorted(by_tasks)
    return [
        (
            t,
            find_crossover(by_tasks[first], by_tasks[t], PERTURBATION, by_tasks[t][0].metric),
            closed_form_threshold(by_tasks[first], by_tasks[t]),
        )
        for t in others
    ]


def _record(t: int, found: CrossOver, closed_form: float) -> dict[str, object]:
    return {
        "num_tasks": t,
        "metric": found.metric,
        "measured": found.level,
        "measured_ci_low": found.ci_low,
        "measured_ci_high": found.ci_high,
        "status": found.status,
        "closed_form": closed_form,
    }


def describe(t: int, found: CrossOver, closed_form: float) -> str:
    """One line for people, e.g. ``T=20: measured 0.175 [0.142, 0.186], closed form 0.151``."""
    measured = "none in grid" if found.level is None else f"{found.level:.3f}"
    interval = found.interval_text()
    said = f"{measured} {interval}" if interval.startswith("[") else f"{measured} ({found.confidence:.0%}: {interval})"
    closed = "never" if math.isinf(closed_form) else f"{closed_form:.3f}"
    return f"T={t}: measured {said}, closed form {closed}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="a run directory of a linear config (with a noise sweep)")
    args = parser.parse_args(argv)
    sweeps = sorted((Path(args.run) / "robustness").glob("sweep_fit_epoch*[0-9].csv"))
    if not sweeps:
        raise ConfigError("--run", args.run, "no robustness/sweep_fit_epoch*.csv (run `python run.py fit` first)")
    found = measured_crossovers(all_targets(read_sweep_csv(sweeps[-1])))
    records = [_record(*one) for one in found]
    out = write_records(Path(args.run) / "robustness" / "crossover_vs_T1.csv", COLUMNS, records)
    for one in found:
        print(describe(*one))
    print(f"wrote {out}")


if __name__ == "__main__":
    run_command(main)
