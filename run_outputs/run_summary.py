"""The end of a run, for a person: where its outputs are and its headline numbers.

``describe_run`` lists the sweep CSVs, figures and checkpoint a run wrote under its
``default_root_dir``, its W&B run directory with the ``wandb sync`` line (or its URL), then the
headline numbers: the last validation metrics of a ``fit``, R(T) from the smallest to the largest T
(``robustness_slope.csv``), and for each final sweep where its last model overtakes its first (several
models) or its clean metric and AUC per perturbation (one model), and how many of its levels have no honest
95% interval (the ``flag`` column of its summary).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from pathlib import Path

from cognitive_reserve.intervals import HONEST_FLAGS
from cognitive_reserve.io import read_sweep_csv
from cognitive_reserve.rows import all_targets
from cognitive_reserve.stats import area_under_curve, clean_value, curves, summarize
from run_outputs.sweeps import first_last_crossovers
from tracking.wandb import WandbRunDir

#: The folders of ``default_root_dir`` a run writes its outputs to (W&B's own files are not listed).
OUTPUT_FOLDERS = ("robustness", "monitors", "checkpoints")


#: Validation metrics the summary shows at most (a linear run logs one per task).
SHOWN_METRICS = 6
#: The last validation of a fit: its global step and ``{val/<metric>: value}``.
LastValidation = tuple[int, Mapping[str, float]]


def describe_run(
    root: Path, since: float, wandb_run: WandbRunDir | None, last_validation: LastValidation | None = None
) -> str:
    """A short summary of the files written under ``root`` after time ``since`` and the headline numbers."""
    fresh = sorted(
        p for folder in OUTPUT_FOLDERS for p in (root / folder).rglob("*") if p.is_file() and p.stat().st_mtime >= since
    )
    sweeps = [p for p in fresh if p.parent.name == "robustness" and _is_sweep_csv(p)]
    per_epoch = [p for p in sweeps if p.name.startswith("sweep_train_")]
    final = [p for p in sweeps if p not in per_epoch]
    figures = [p for p in fresh if p.suffix == ".png"]
    checkpoints = [p for p in fresh if p.suffix == ".ckpt"]
    lines = [f"Run finished; outputs under {root}:"]
    lines += [f"  sweep      {_rel(p, root)} (+ _summary.csv, .png)" for p in final]
    if per_epoch:
        span = _rel(per_epoch[0], root) + (f" … {per_epoch[-1].name}" if len(per_epoch) > 1 else "")
        lines.append(f"  per-epoch  {span} ({len(per_epoch)} sweeps; robustness/sensitivity_train.csv)")
    if figures:
        lines.append(f"  figures    {len(figures)} PNG: {', '.join(_rel(p, root) for p in figures[:4])}")
        lines[-1] += ", ..." if len(figures) > 4 else ""
    lines += [f"  checkpoint {_rel(p, root)}" for p in checkpoints]
    if wandb_run is not None:
        where = wandb_run.url or f"offline; upload with: wandb sync {wandb_run.path}"
        lines.append(f"  W&B run    {wandb_run.path} ({where})")
    headlines = _validation_headline(last_validation)
    headlines += _slope_headline(root / "robustness" / "robustness_slope.csv", since)
    for path in final:
        headlines += _sweep_headlines(path)
    if headlines:
        lines.append("Headline numbers:")
        lines += [f"  {line}" for line in headlines]
    return "\n".join(lines)


def _is_sweep_csv(path: Path) -> bool:
    return path.name.startswith("sweep_") and path.suffix == ".csv" and not path.stem.endswith("_summary")


def _rel(path: Path, root: Path) -> str:
    return str(path.relative_to(root))


def _validation_headline(last: LastValidation | None) -> list[str]:
    """``last validation (step 300): val/bits_per_byte_en 0.2915, val/loss 0.9698, ...`` (natural order,
    at most ``SHOWN_METRICS``; the rest are in the logger)."""
    if not last or not last[1]:
        return []
    step, metrics = last
    names = sorted(metrics, key=lambda name: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)])
    shown = ", ".join(f"{name} {metrics[name]:.4g}" for name in names[:SHOWN_METRICS])
    more = f" (+{len(names) - SHOWN_METRICS} more in the logger)" if len(names) > SHOWN_METRICS else ""
    return [f"last validation (step {step}): {shown}{more}"]


def _slope_headline(path: Path, since: float) -> list[str]:
    """``R(T): T=1 0.277 … T=20 0.112``, from the smallest to the largest T."""
    if not path.is_file() or path.stat().st_mtime < since:
        return []
    with path.open(newline="", encoding="utf-8") as file:
        rows = sorted((int(r["num_tasks"]), float(r["robustness_slope"])) for r in csv.DictReader(file))
    return ["R(T) (robustness slope): " + "  ".join(f"T={t} {value:.3g}" for t, value in rows)] if rows else []


def _sweep_headlines(path: Path) -> list[str]:
    """A sweep of several models: where the last overtakes the first. Of one model: its clean metric and
    level-averaged metric (AUC) per perturbation."""
    rows = all_targets(read_sweep_csv(path))
    summaries = summarize(rows)
    flagged = sum(s.flag not in HONEST_FLAGS for s in summaries)
    no_interval = f"{path.stem}: {flagged} of {len(summaries)} levels × metrics have no honest 95% interval"
    intervals = [no_interval] if flagged else []
    crossovers = first_last_crossovers(rows)
    if crossovers:
        return [f"{path.stem}: {crossover.describe()}" for crossover in crossovers] + intervals
    clean: dict[tuple[str, str], float | None] = {}
    areas: dict[tuple[str, str], list[str]] = {}
    for (model, perturbation, metric), points in curves(summaries).items():
        clean.setdefault((model, metric), clean_value(points))
        areas.setdefault((model, metric), []).append(f"{perturbation} {area_under_curve(points):.4g}")
    return [
        f"{path.stem}: {model} {metric}: clean {_number(clean[(model, metric)])}; "
        f"level-averaged (AUC) {', '.join(parts)}"
        for (model, metric), parts in areas.items()
    ] + intervals


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
