"""Compare two models' sweep CSVs: Figure 1-style overlay and the cross-over level per perturbation.

    python -m robustness.compare MONO.csv BI.csv --out comparison/

writes ``<out>/compare_<metric>.png`` (one panel per perturbation: mean ± 95% CI of each model,
the cross-over and its interval shaded), ``<out>/crossover.csv`` (one row per perturbation and
metric) and prints one line per cross-over. Model B is the one expected to overtake (e.g. the
bilingual model). By default the metrics compared are those both tables share, restricted to
``bits_per_byte_*`` when there are any (per-token perplexity is not comparable between
tokenizers). Bad input prints ``error: field=value: reason`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from robustness.crossover import CrossOver, find_crossover
from robustness.errors import ConfigError
from robustness.io import read_sweep_csv
from robustness.plots import LEVEL_LABELS
from robustness.stats import summarize
from robustness.sweep import SweepRow

CROSSOVER_COLUMNS = tuple(f.name for f in dataclasses.fields(CrossOver) if f.name not in ("levels", "advantage"))


def compare(
    rows_a: Sequence[SweepRow],
    rows_b: Sequence[SweepRow],
    out_dir: str | Path,
    metrics: Sequence[str] | None = None,
    direction: str | None = None,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[CrossOver]:
    """Cross-overs for every shared perturbation × chosen metric, plus figures and ``crossover.csv``."""
    out_dir = Path(out_dir)
    metrics = list(metrics) if metrics else default_metrics(rows_a, rows_b)
    perturbations = [p for p in _ordered(r.perturbation for r in rows_a) if p in {r.perturbation for r in rows_b}]
    if not perturbations:
        raise ConfigError("tables", "A/B", "share no perturbation")
    results = [
        find_crossover(rows_a, rows_b, perturbation, metric, direction, n_boot, confidence, seed)  # type: ignore[arg-type]
        for metric in metrics
        for perturbation in perturbations
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "crossover.csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=CROSSOVER_COLUMNS)
        writer.writeheader()
        for result in results:
            writer.writerow({column: _cell(getattr(result, column)) for column in CROSSOVER_COLUMNS})
    for metric in metrics:
        plot_comparison(rows_a, rows_b, [r for r in results if r.metric == metric], out_dir / f"compare_{metric}.png")
    return results


def default_metrics(rows_a: Sequence[SweepRow], rows_b: Sequence[SweepRow]) -> list[str]:
    """Metrics of both tables; only the ``bits_per_byte*`` ones when there are any."""
    shared = [m for m in _ordered(r.metric for r in rows_a) if m in {r.metric for r in rows_b}]
    if not shared:
        raise ConfigError("metric", None, "the two tables share no metric")
    per_byte = [m for m in shared if m.startswith("bits_per_byte")]
    return per_byte or shared


def plot_comparison(
    rows_a: Sequence[SweepRow], rows_b: Sequence[SweepRow], results: Sequence[CrossOver], path: Path
) -> Path:
    """One panel per perturbation: both models' mean ± 95% CI, cross-over line and interval."""
    fig = Figure(figsize=(4.4 * len(results), 3.6), layout="constrained")
    axes = fig.subplots(1, len(results), squeeze=False)[0]
    for ax, result in zip(axes, results, strict=True):
        for rows, color in ((rows_a, "tab:blue"), (rows_b, "tab:orange")):
            points = sorted(
                (s for s in summarize(rows) if s.perturbation == result.perturbation and s.metric == result.metric),
                key=lambda s: s.level,
            )
            finite = [s for s in points if math.isfinite(s.mean)]
            ax.plot([s.level for s in finite], [s.mean for s in finite], marker=".", color=color, label=points[0].model)
            ax.fill_between(
                [s.level for s in finite],
                [s.ci_low for s in finite],
                [s.ci_high for s in finite],
                color=color,
                alpha=0.2,
            )
        if result.status == "crossing":
            low = max(result.ci_low, result.levels[0])
            high = min(result.ci_high, result.levels[-1])
            ax.axvspan(low, high, color="grey", alpha=0.15, label="cross-over interval")
            ax.axvline(result.level, color="black", linestyle="--", linewidth=1, label=f"cross-over {result.level:.3g}")
        else:
            ax.text(0.03, 0.95, result.status.replace("_", " "), transform=ax.transAxes, va="top", fontsize="small")
        ax.set_xlabel(LEVEL_LABELS.get(result.perturbation, result.perturbation))
        ax.set_ylabel(result.metric)
        ax.set_title(result.perturbation.replace("_", " "))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def main(argv: list[str] | None = None) -> None:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m robustness.compare", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("table_a", help="sweep CSV of model A (e.g. monolingual)")
    parser.add_argument("table_b", help="sweep CSV of model B, the one expected to overtake (e.g. bilingual)")
    parser.add_argument("--out", required=True, help="directory for crossover.csv and compare_<metric>.png")
    parser.add_argument("--metric", action="append", help="metric to compare (repeatable; default: see above)")
    parser.add_argument("--direction", choices=("lower", "higher"), help="override: is a lower or higher metric better")
    parser.add_argument("--model-a", help="model name to take from table A when it holds several")
    parser.add_argument("--model-b", help="model name to take from table B when it holds several")
    parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap replicates")
    parser.add_argument("--confidence", type=float, default=0.95, help="confidence of the interval")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    args = parser.parse_args(argv)
    try:
        rows_a = _load("table_a", args.table_a, args.model_a)
        rows_b = _load("table_b", args.table_b, args.model_b)
        if args.n_boot < 1:
            raise ConfigError("n_boot", args.n_boot, "must be >= 1")
        if not 0 < args.confidence < 1:
            raise ConfigError("confidence", args.confidence, "must lie in (0, 1)")
        results = compare(
            rows_a, rows_b, args.out, args.metric, args.direction, args.n_boot, args.confidence, args.seed
        )
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    for result in results:
        print(result.describe())
    print(f"wrote {Path(args.out) / 'crossover.csv'} and compare_<metric>.png")


def _load(field: str, path: str, model: str | None) -> list[SweepRow]:
    if not Path(path).is_file():
        raise ConfigError(field, path, "no such file")
    try:
        rows = read_sweep_csv(path)
    except ValueError as err:
        raise ConfigError(field, path, str(err)) from None
    if model is not None:
        rows = [row for row in rows if row.model == model]
        if not rows:
            raise ConfigError(field, path, f"has no rows of model {model!r}")
    return rows


def _ordered(values) -> list:
    return list(dict.fromkeys(values))


def _cell(value: object) -> object:
    return "" if value is None else value


if __name__ == "__main__":
    main()
