"""R(T) of several linear runs on one figure, with R(T)/R(1): how much of the fall a control leaves.

    python -m run_reports.slope_comparison --run diverse=runs/linear/digits \\
        --run aligned=runs/linear/digits_aligned --out docs/figures/linear_digits_controls

reads each run's ``robustness/robustness_slope.csv`` and writes ``OUT.csv`` (label, num_tasks,
robustness_slope, ratio_to_first = R(T)/R(T_min)) and ``OUT.png``; prints R(T_max)/R(T_min) per run.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from cognitive_reserve.errors import ConfigError
from cognitive_reserve.io import write_records
from run_outputs.slope_figures import SlopeCurve, plot_slope_curves
from run_reports.command import run_command

COLUMNS = ("label", "num_tasks", "robustness_slope", "ratio_to_first")


def read_slopes(run_dir: str | Path, column: str = "robustness_slope") -> tuple[list[int], list[float]]:
    """``(T, R(T))`` from ``RUN/robustness/robustness_slope.csv``, ``column`` giving R."""
    path = Path(run_dir) / "robustness" / "robustness_slope.csv"
    if not path.is_file():
        raise ConfigError(
            "--run", str(run_dir), f"no {path} (run `python run.py fit` with RobustnessSlopeReport first)"
        )
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    if not rows or column not in rows[0]:
        raise ConfigError("--column", column, f"not a column of {path}")
    return [int(r["num_tasks"]) for r in rows], [float(r[column]) for r in rows]


def compare(runs: dict[str, str], out: str | Path, column: str = "robustness_slope") -> list[dict[str, object]]:
    """Write ``OUT.csv`` and ``OUT.png`` for ``runs`` (label → run directory); returns the CSV records."""
    records, curves = [], {}
    for label, run_dir in runs.items():
        tasks, slopes = read_slopes(run_dir, column)
        curves[label] = SlopeCurve(tasks, slopes)
        records += [
            {"label": label, "num_tasks": t, "robustness_slope": r, "ratio_to_first": r / slopes[0]}
            for t, r in zip(tasks, slopes, strict=True)
        ]
    out = Path(out)
    write_records(out.with_suffix(".csv"), COLUMNS, records)
    plot_slope_curves(curves, out.with_suffix(".png"), ylabel=f"R(T) ({column})", title="robustness slope")
    return records


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", action="append", required=True, metavar="LABEL=DIR", help="a run to show")
    parser.add_argument("--out", required=True, help="output path without suffix (.csv and .png are written)")
    parser.add_argument("--column", default="robustness_slope", help="column of robustness_slope.csv to plot")
    args = parser.parse_args(argv)
    runs = {}
    for spec in args.run:
        label, sep, run_dir = spec.partition("=")
        if not sep or not label or not run_dir:
            raise ConfigError("--run", spec, "expected LABEL=DIR")
        runs[label] = run_dir
    records = compare(runs, args.out, args.column)
    for label in runs:
        mine = [r for r in records if r["label"] == label]
        first, last = mine[0], mine[-1]
        print(
            f"{label}: R({first['num_tasks']}) = {first['robustness_slope']:.3f}, "
            f"R({last['num_tasks']}) = {last['robustness_slope']:.3f}, ratio {last['ratio_to_first']:.2f}"
        )


if __name__ == "__main__":
    run_command(main)
