"""Figure 5: σ_max of one block's attention matrices over a base run and its continued branches.

    python -m run_reports.figure5 BASE_DIR BRANCH_DIR [BRANCH_DIR ...] --out DIR
        [--label BASE_LABEL BRANCH_LABEL ...] [--block 0] [--no-wandb]

Reads ``monitors/spectral.csv`` of each run directory (written by ``callbacks.SpectralMonitor``). A
branch continued from the base's checkpoint (``configs/gpt2/figure5/``) counts the base's global
steps on, so all runs share one step axis: the base is drawn up to where the branches start, each
branch from there on (joined to the base's last point before it). One panel per matrix of block
``--block`` (default 0: ``c_attn`` cut into Q, K, V, and ``c_proj``). Writes ``DIR/figure5.csv``
(columns ``label, segment, step, matrix, sigma_max``: exactly the points drawn) and
``DIR/figure5.png``, and logs both to a W&B run (offline without credentials). Labels default to
the run directories' names.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from cognitive_reserve.errors import ConfigError
from cognitive_reserve.history import HistoryCsv
from cognitive_reserve.io import write_records
from cognitive_reserve.plots import save_figure
from run_reports.command import add_wandb_options, one_line_errors
from tracking.report_run import log_report, report_line
from tracking.wandb import WandbRunDir

COLUMNS = ("label", "segment", "step", "matrix", "sigma_max")
QUANTITY = "sigma_max"


@dataclass(frozen=True)
class Point:
    """One drawn σ_max: run label, ``base`` or ``branch``, global step, matrix name within the block."""

    label: str
    segment: str
    step: int
    matrix: str
    sigma_max: float


def read_block(run_dir: str | Path, block: int, field: str) -> dict[str, list[tuple[int, float]]]:
    """``{matrix: [(step, σ_max), ...]}`` of block ``block`` in ``run_dir/monitors/spectral.csv``, by step."""
    path = Path(run_dir) / "monitors" / "spectral.csv"
    if not path.is_file():
        raise ConfigError(field, str(run_dir), f"has no {path.relative_to(run_dir)} (run it with a SpectralMonitor)")
    pattern = re.compile(rf"(^|\.)h\.{block}\.attn\.(?P<matrix>.+)$")
    series: dict[str, list[tuple[int, float]]] = {}
    for row in HistoryCsv(path).read():
        match = pattern.search(row.name)
        if match and row.quantity == QUANTITY:
            series.setdefault(match["matrix"], []).append((row.step, row.value))
    if not series:
        raise ConfigError("--block", block, f"no σ_max of block {block}'s attention matrices in {path}")
    return {matrix: sorted(points) for matrix, points in series.items()}


def figure5_points(
    base: dict[str, list[tuple[int, float]]], branches: dict[str, dict[str, list[tuple[int, float]]]], base_label: str
) -> list[Point]:
    """The base's points up to the latest branch start, then every branch's points (see module docstring)."""
    starts = {
        label: min(step for points in series.values() for step, _ in points) for label, series in branches.items()
    }
    base_first = min(step for points in base.values() for step, _ in points)
    for label, start in starts.items():
        if start <= base_first:
            raise ConfigError(
                "BRANCH_DIR",
                label,
                f"starts at step {start}, not after the base (from step {base_first}): not a continuation of it",
            )
        if set(branches[label]) != set(base):
            raise ConfigError("BRANCH_DIR", label, f"monitors {sorted(branches[label])}, the base {sorted(base)}")
    cut = max(starts.values())
    points = [
        Point(base_label, "base", step, matrix, value)
        for matrix, series in base.items()
        for step, value in series
        if step <= cut
    ]
    for label, series in branches.items():
        points += [
            Point(label, "branch", step, matrix, value) for matrix, steps in series.items() for step, value in steps
        ]
    return points


#: Panel titles of the matrices of a GPT-2 block (c_attn is cut into Q, K, V by the SpectralMonitor).
MATRIX_TITLES = {
    "c_attn.q": "query weights W_Q (c_attn)",
    "c_attn.k": "key weights W_K (c_attn)",
    "c_attn.v": "value weights W_V (c_attn)",
    "c_proj": "output projection (c_proj)",
}


def plot_figure5(points: Sequence[Point], path: str | Path, block: int) -> Path:
    """One panel per matrix: σ_max against the global step, the base in black, each branch in colour, the branch
    point dotted; one legend for all panels."""
    matrices = list(dict.fromkeys(point.matrix for point in points))
    fig = Figure(figsize=(3.2 * len(matrices), 3.6), layout="constrained")
    axes = fig.subplots(1, len(matrices), squeeze=False)[0]
    base = [point for point in points if point.segment == "base"]
    branch_labels = list(dict.fromkeys(point.label for point in points if point.segment == "branch"))
    branch_step = max(p.step for p in base)
    for ax, matrix in zip(axes, matrices, strict=True):
        base_steps = [(p.step, p.sigma_max) for p in base if p.matrix == matrix]
        ax.plot(*zip(*base_steps, strict=True), color="black", label=f"{base[0].label} (base)")
        for index, label in enumerate(branch_labels):
            steps = [
                (p.step, p.sigma_max)
                for p in points
                if p.label == label and p.segment == "branch" and p.matrix == matrix
            ]
            joined = [max((s for s in base_steps if s[0] < steps[0][0]), default=steps[0]), *steps]
            ax.plot(*zip(*joined, strict=True), color=f"C{index}", label=f"{label} (branch)")
        ax.axvline(branch_step, color="grey", linestyle=":", linewidth=1, label=f"branch point (step {branch_step})")
        ax.set_title(f"block {block}: {MATRIX_TITLES.get(matrix, matrix)}", fontsize="medium")
        ax.set_xlabel("global step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("largest singular value σ_max")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=len(branch_labels) + 2)
    return save_figure(fig, path, title=f"σ_max of block {block}'s attention weights: the base run, then each branch")


def write_figure5(
    base_dir: str | Path, branch_dirs: Sequence[str | Path], labels: Sequence[str] | None, block: int, out: str | Path
) -> tuple[Path, Path, list[Point]]:
    """Read the runs, write ``out/figure5.csv`` and ``out/figure5.png``; returns both paths and the points."""
    names = list(labels) if labels else [Path(d).name for d in (base_dir, *branch_dirs)]
    if len(names) != 1 + len(branch_dirs) or len(set(names)) != len(names):
        raise ConfigError(
            "--label", names, f"give {1 + len(branch_dirs)} distinct labels: the base's, then each branch's"
        )
    base = read_block(base_dir, block, "BASE_DIR")
    branches = {name: read_block(d, block, "BRANCH_DIR") for name, d in zip(names[1:], branch_dirs, strict=True)}
    points = figure5_points(base, branches, names[0])
    out = Path(out)
    table = write_records(out / "figure5.csv", COLUMNS, (vars(point) for point in points))
    return table, plot_figure5(points, out / "figure5.png", block), points


def log_to_wandb(figure: Path, points: Sequence[Point], project: str, name: str | None, save_dir: Path) -> WandbRunDir:
    """Log the figure (``figure5/figure``) and its points (``figure5/table``) to a new W&B run; returns where it is."""

    def payload(wandb: Any) -> dict[str, object]:
        rows = [[getattr(point, column) for column in COLUMNS] for point in points]
        return {
            "figure5/figure": wandb.Image(str(figure)),
            "figure5/table": wandb.Table(columns=list(COLUMNS), data=rows),
        }

    return log_report(payload, project=project, name=name, save_dir=save_dir, job_type="figure5")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", metavar="BASE_DIR", help="the base run's default_root_dir")
    parser.add_argument("branches", metavar="BRANCH_DIR", nargs="+", help="each branch's default_root_dir")
    parser.add_argument("--label", nargs="+", help="legend names: the base's, then each branch's (default: dir names)")
    parser.add_argument("--block", type=int, default=0, help="transformer block to draw (default: 0, the first)")
    parser.add_argument("--out", required=True, help="output directory of figure5.csv and figure5.png")
    add_wandb_options(parser, "figure5")
    args = parser.parse_args(argv)
    with one_line_errors():
        table, figure, points = write_figure5(args.base, args.branches, args.label, args.block, args.out)
    print(f"wrote {table}\nwrote {figure}")
    if not args.no_wandb:
        print(report_line(log_to_wandb(figure, points, args.wandb_project, args.wandb_name, Path(args.out))))


if __name__ == "__main__":
    main()
