"""The end of a run, for a person: where its outputs are and its headline numbers.

``describe_run`` lists the sweep CSVs, figures and checkpoint a run wrote under its
``default_root_dir``, its W&B run directory with the ``wandb sync`` line (or its URL), then the
headline numbers: R(T) from the smallest to the largest T (``robustness_slope.csv``), and, for each
sweep of several models, where the last model overtakes the first (``robustness.crossover``).
"""

from __future__ import annotations

import csv
from pathlib import Path

from reporting.sweeps import first_last_crossovers
from robustness.io import read_sweep_csv
from tracking.wandb import WandbRunDir


def describe_run(root: Path, since: float, wandb_run: WandbRunDir | None) -> str:
    """A short summary of the files written under ``root`` after time ``since`` and the headline numbers."""
    fresh = sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.stat().st_mtime >= since and "wandb" not in p.relative_to(root).parts
    )  # fmt: skip
    sweeps = [p for p in fresh if p.parent.name == "robustness" and _is_sweep_csv(p)]
    figures = [p for p in fresh if p.suffix == ".png"]
    checkpoints = [p for p in fresh if p.suffix == ".ckpt"]
    lines = [f"Run finished; outputs under {root}:"]
    lines += [f"  sweep      {_rel(p, root)} (+ _summary.csv, .png)" for p in sweeps]
    if figures:
        lines.append(f"  figures    {len(figures)} PNG: {', '.join(_rel(p, root) for p in figures[:4])}")
        lines[-1] += ", ..." if len(figures) > 4 else ""
    lines += [f"  checkpoint {_rel(p, root)}" for p in checkpoints]
    if wandb_run is not None:
        where = wandb_run.url or f"offline; upload with: wandb sync {wandb_run.path}"
        lines.append(f"  W&B run    {wandb_run.path} ({where})")
    headlines = _slope_headline(root / "robustness" / "robustness_slope.csv", since)
    for path in sweeps:
        headlines += _crossover_headlines(path)
    if headlines:
        lines.append("Headline numbers:")
        lines += [f"  {line}" for line in headlines]
    return "\n".join(lines)


def _is_sweep_csv(path: Path) -> bool:
    return path.name.startswith("sweep_") and path.suffix == ".csv" and not path.stem.endswith("_summary")


def _rel(path: Path, root: Path) -> str:
    return str(path.relative_to(root))


def _slope_headline(path: Path, since: float) -> list[str]:
    """``R(T): T=1 0.277 … T=20 0.112``, from the smallest to the largest T."""
    if not path.is_file() or path.stat().st_mtime < since:
        return []
    with path.open(newline="", encoding="utf-8") as file:
        rows = sorted((int(r["num_tasks"]), float(r["robustness_slope"])) for r in csv.DictReader(file))
    return ["R(T) (robustness slope): " + "  ".join(f"T={t} {value:.3g}" for t, value in rows)] if rows else []


def _crossover_headlines(path: Path) -> list[str]:
    return [f"{path.stem}: {crossover.describe()}" for crossover in first_last_crossovers(read_sweep_csv(path))]
