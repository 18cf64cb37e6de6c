"""Figure 2 of the paper as output: the best rank-1 approximation of orthogonal task vectors shrinks with T.

    python -m run_reports.figure2 --out docs/figures

``C`` is the standard basis of R³ and ``k = 1``. For T = 2 (``c_1, c_2``) the SVD solution gives
``ĉ_i = [1/2, 1/2, 0]`` (‖ĉ_i‖² = 1/2); for T = 3 it gives ``ĉ_i = [1/3, 1/3, 1/3]`` (‖ĉ_i‖² = 1/3).
Prints every ĉ_i, writes ``figure2.csv`` (num_tasks, task, c_hat_1..3, c_hat_sq_norm, gamma,
robustness_slope) and ``figure2.png`` (the task vectors and their approximations, in 3-D).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from matplotlib.figure import Figure

from cognitive_reserve.io import write_records
from cognitive_reserve.plots import save_figure
from cognitive_reserve.theory import robustness_slope, svd_solution
from run_reports.command import run_command

COLUMNS = ("num_tasks", "task", "c_hat_1", "c_hat_2", "c_hat_3", "c_hat_sq_norm", "gamma", "robustness_slope")


def toy_records(task_counts: tuple[int, ...] = (2, 3), k: int = 1) -> list[dict[str, float]]:
    """One record per (T, task): the approximation ``ĉ_i = Wᵀγ_i`` of ``c_i = e_i`` by the SVD solution."""
    basis = torch.eye(3, dtype=torch.float64)
    records = []
    for t in task_counts:
        c = basis[:, :t]
        w, gamma = svd_solution(c, k)
        approximations = w.T @ gamma  # 3 × T
        slope = robustness_slope(c, k)
        for i in range(t):
            c_hat = approximations[:, i].tolist()
            records.append(
                {
                    "num_tasks": t,
                    "task": i + 1,
                    **{f"c_hat_{j + 1}": value for j, value in enumerate(c_hat)},
                    "c_hat_sq_norm": float(approximations[:, i].square().sum()),
                    "gamma": float(gamma[:, i].norm()),
                    "robustness_slope": slope,
                }
            )
    return records


def plot_toy(records: list[dict[str, float]], path: Path) -> Path:
    """The basis vectors c_i (grey) and each T's approximation ĉ (coloured), on 3-D axes."""
    fig = Figure(figsize=(4.6, 4.2), layout="constrained")
    ax = fig.add_subplot(projection="3d")
    for i in range(3):
        end = [float(i == j) for j in range(3)]
        ax.quiver(0, 0, 0, *end, color="grey", arrow_length_ratio=0.08)
        ax.text(*[1.05 * v for v in end], f"c{i + 1}", color="grey")
    for color, t in zip(("tab:blue", "tab:orange"), sorted({r["num_tasks"] for r in records}), strict=False):
        first = next(r for r in records if r["num_tasks"] == t)
        vector = [first["c_hat_1"], first["c_hat_2"], first["c_hat_3"]]
        label = f"T={t}: ĉ = [{', '.join(f'{v:.2f}' for v in vector)}], ‖ĉ‖² = {first['c_hat_sq_norm']:.3f}"
        ax.quiver(0, 0, 0, *vector, color=color, linewidth=2, arrow_length_ratio=0.15, label=label)
    ax.set(xlim=(0, 1), ylim=(0, 1), zlim=(0, 1))
    ax.legend(fontsize="x-small", loc="upper left")
    return save_figure(fig, path, "Figure 2: k = 1, orthogonal tasks")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="directory for figure2.csv and figure2.png")
    args = parser.parse_args(argv)
    records = toy_records()
    out = Path(args.out)
    write_records(out / "figure2.csv", COLUMNS, records)
    plot_toy(records, out / "figure2.png")
    for r in records:
        print(
            f"T={r['num_tasks']} task {r['task']}: ĉ = [{r['c_hat_1']:.4f}, {r['c_hat_2']:.4f}, {r['c_hat_3']:.4f}]"
            f"  ‖ĉ‖² = {r['c_hat_sq_norm']:.4f}  γ = {r['gamma']:.4f}"
        )
    print(f"wrote {out / 'figure2.csv'} and {out / 'figure2.png'}")


if __name__ == "__main__":
    run_command(main)
