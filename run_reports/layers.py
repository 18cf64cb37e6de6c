"""Compare two models layer by layer: B − A per group of a layer-wise sweep, with its interval over seeds.

    python -m run_reports.layers A_s0.csv A_s1.csv --b B_s0.csv B_s1.csv --out layers/ [--level 0.4]

Each side is one or more sweep CSVs of a layer-wise sweep (``PerturbationSweep`` with ``groups``), one per
training seed, all with the same groups and grid. For every group (and all targets together), perturbation,
metric and level: the seed-mean metric of each side, ``B − A`` and its interval from ``run_reports.compare``'s
bootstrap (``cognitive_reserve.crossover.level_differences``): two-level (training seeds resampled, then
trials within each) with several CSVs per side, so it covers training-seed and trial variance; with one CSV
per side it covers trials only (and has zero width where a level has one trial, e.g. magnitude pruning).
Trials are paired where every table used the same perturbation seeds.

Writes ``<out>/layers.csv`` (one row per group, perturbation, metric and level, with ``excludes_zero``) and
``<out>/layers_<metric>.png`` (one panel per perturbation: ``B − A`` per group at the chosen level, with its
interval; groups whose interval excludes 0 drawn filled), and prints, per perturbation and metric, the groups
whose difference excludes 0 at that level. ``--level`` picks the level (default: each perturbation's
highest). Metrics: as ``run_reports.compare`` (the shared ones, only ``bits_per_byte_*`` when there are any).

Bad input prints ``error: field=value: reason`` and exits with status 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from cognitive_reserve.crossover import LevelDifference, level_differences
from cognitive_reserve.errors import ConfigError
from cognitive_reserve.io import write_records
from cognitive_reserve.layerwise import ALL_TARGETS
from cognitive_reserve.metrics import metric_direction
from cognitive_reserve.plots import LEVEL_LABELS, save_figure
from cognitive_reserve.sweep import SweepRow
from run_reports.command import one_line_errors
from run_reports.compare import default_metrics, load_sweep

COLUMNS = (
    "group", "perturbation", "metric", "level", "model_a", "model_b", "mean_a", "mean_b", "difference",
    "ci_low", "ci_high", "excludes_zero", "paired", "n_seeds_a", "n_seeds_b", "n_boot", "confidence",
)  # fmt: skip

#: One side: the rows of each of its tables (one per training seed).
Side = Sequence[Sequence[SweepRow]]


@dataclass(frozen=True)
class GroupDifference:
    """``B − A`` of one group, perturbation and metric at one level."""

    group: str
    perturbation: str
    metric: str
    model_a: str
    model_b: str
    difference: LevelDifference

    def record(self, n_boot: int, confidence: float) -> dict[str, object]:
        d = self.difference
        return {
            "group": self.group, "perturbation": self.perturbation, "metric": self.metric, "level": d.level,
            "model_a": self.model_a, "model_b": self.model_b, "mean_a": d.mean_a, "mean_b": d.mean_b,
            "difference": d.difference, "ci_low": d.ci_low, "ci_high": d.ci_high, "excludes_zero": d.excludes_zero,
            "paired": d.paired, "n_seeds_a": d.n_seeds_a, "n_seeds_b": d.n_seeds_b, "n_boot": n_boot,
            "confidence": confidence,
        }  # fmt: skip


def compare_groups(
    side_a: Side,
    side_b: Side,
    metrics: Sequence[str] | None = None,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[GroupDifference]:
    """``B − A`` for every group both sides share (``""``: all targets), perturbation, chosen metric and level."""
    all_a, all_b = [r for t in side_a for r in t], [r for t in side_b for r in t]
    metrics = list(metrics) if metrics else default_metrics(all_a, all_b)
    groups = shared_groups(side_a, side_b)
    perturbations = [p for p in dict.fromkeys(r.perturbation for r in all_a) if p in {r.perturbation for r in all_b}]
    if not perturbations:
        raise ConfigError("tables", "A/B", "share no perturbation")
    found = []
    for metric in metrics:
        for perturbation in perturbations:
            for group in groups:
                tables_a = [[r for r in table if r.group == group] for table in side_a]
                tables_b = [[r for r in table if r.group == group] for table in side_b]
                differences = level_differences(tables_a, tables_b, perturbation, metric, n_boot, confidence, seed)
                model_a, model_b = _model(tables_a), _model(tables_b)
                found += [GroupDifference(group, perturbation, metric, model_a, model_b, d) for d in differences]
    return found


def shared_groups(side_a: Side, side_b: Side) -> list[str]:
    """The groups of every table of both sides, in the first table's order; an error where tables differ."""
    tables = [*side_a, *side_b]
    first = list(dict.fromkeys(r.group for r in tables[0]))
    for table in tables[1:]:
        groups = list(dict.fromkeys(r.group for r in table))
        if set(groups) != set(first):
            raise ConfigError("groups", sorted(set(groups) ^ set(first)), "not in every table (sweep both sides alike)")
    if first == [""]:
        raise ConfigError("tables", "A/B", "hold no layer-wise sweep (no group column values): sweep with `groups`")
    return first


def at_level(results: Sequence[GroupDifference], level: float | None) -> list[GroupDifference]:
    """Each (perturbation, metric, group) at ``level`` (None: its perturbation's highest level)."""
    chosen = []
    for perturbation in dict.fromkeys(r.perturbation for r in results):
        levels = sorted({r.difference.level for r in results if r.perturbation == perturbation})
        wanted = levels[-1] if level is None else level
        if wanted not in levels:
            raise ConfigError("level", level, f"not a level of {perturbation} ({', '.join(f'{x:g}' for x in levels)})")
        chosen += [r for r in results if r.perturbation == perturbation and r.difference.level == wanted]
    return chosen


def plot_differences(chosen: Sequence[GroupDifference], metric: str, path: Path, confidence: float) -> Path:
    """One panel per perturbation: ``B − A`` per group (all targets first) with its interval, 0 dashed."""
    panels = list(dict.fromkeys(r.perturbation for r in chosen if r.metric == metric))
    groups = list(dict.fromkeys(r.group for r in chosen))
    fig = Figure(figsize=(max(4.0, 0.45 * len(groups) + 1.5) * len(panels), 4.2), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, perturbation in zip(axes, panels, strict=True):
        cells = [r for r in chosen if r.metric == metric and r.perturbation == perturbation]
        for x, r in enumerate(cells):
            d = r.difference
            color = "tab:grey" if not r.group else "tab:purple"
            ax.errorbar(
                x, d.difference, yerr=[[d.difference - d.ci_low], [d.ci_high - d.difference]], fmt="o", color=color,
                markerfacecolor=color if d.excludes_zero else "white", capsize=3,
            )  # fmt: skip
        ax.axhline(0, color="black", linestyle="--", linewidth=1)
        labels = [r.group or ALL_TARGETS for r in cells]
        ax.set_xticks(range(len(cells)), labels, rotation=60, ha="right", fontsize="x-small")
        level = cells[0].difference.level
        ax.set_title(f"{perturbation.replace('_', ' ')} at {level:g}", fontsize="small")
        ax.set_xlabel(LEVEL_LABELS.get(perturbation, perturbation) + f" = {level:g}: group damaged")
        direction = metric_direction(metric)
        ax.set_ylabel(f"{metric}: B − A" + (f" ({direction} is better)" if direction else ""))
        ax.grid(alpha=0.3, axis="y")
    first = chosen[0]
    seeds = f"{first.difference.n_seeds_a} + {first.difference.n_seeds_b} training seeds"
    covers = (
        "training seeds and trials" if max(first.difference.n_seeds_a, first.difference.n_seeds_b) > 1 else "trials"
    )
    title = f"{first.model_b} − {first.model_a} ({seeds}); {confidence:.0%} intervals over {covers}; filled: excludes 0"
    return save_figure(fig, path, title)


def describe(chosen: Sequence[GroupDifference]) -> list[str]:
    """Per perturbation and metric, the groups whose difference excludes 0 (with its sign), for people."""
    lines = []
    for perturbation, metric in dict.fromkeys((r.perturbation, r.metric) for r in chosen):
        cells = [r for r in chosen if (r.perturbation, r.metric) == (perturbation, metric)]
        level = cells[0].difference.level
        excluding = [
            f"{r.group or ALL_TARGETS} {r.difference.difference:+.4g} [{r.difference.ci_low:+.4g}, "
            f"{r.difference.ci_high:+.4g}]"
            for r in cells
            if r.difference.excludes_zero
        ]
        found = "; ".join(excluding) if excluding else "none"
        lines.append(f"{perturbation} {level:g} / {metric}: B − A excludes 0 for {found}")
    return lines


def main(argv: list[str] | None = None) -> None:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m run_reports.layers", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("a", nargs="+", metavar="A_CSV", help="model A's layer-wise sweep CSVs, one per training seed")
    parser.add_argument("--b", nargs="+", metavar="B_CSV", required=True, help="model B's, one per training seed")
    parser.add_argument("--out", required=True, help="directory for layers.csv and layers_<metric>.png")
    parser.add_argument("--level", type=float, help="the level of the figure and printout (default: the highest)")
    parser.add_argument("--metric", action="append", help="metric to compare (repeatable; default: see above)")
    parser.add_argument("--model-a", help="model name to take from A's tables when they hold several")
    parser.add_argument("--model-b", help="model name to take from B's tables when they hold several")
    parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap replicates")
    parser.add_argument("--confidence", type=float, default=0.95, help="confidence of the intervals")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    args = parser.parse_args(argv)
    with one_line_errors():
        if args.n_boot < 1:
            raise ConfigError("n_boot", args.n_boot, "must be >= 1")
        if not 0 < args.confidence < 1:
            raise ConfigError("confidence", args.confidence, "must lie in (0, 1)")
        twice = sorted({path for path in args.a + args.b if (args.a + args.b).count(path) > 1})
        if twice:
            raise ConfigError("a/b", twice, "given twice (one CSV per training seed)")
        side_a = [load_sweep("a", path, args.model_a, groups=True) for path in args.a]
        side_b = [load_sweep("b", path, args.model_b, groups=True) for path in args.b]
        results = compare_groups(side_a, side_b, args.metric, args.n_boot, args.confidence, args.seed)
        chosen = at_level(results, args.level)
    out = Path(args.out)
    write_records(out / "layers.csv", COLUMNS, (r.record(args.n_boot, args.confidence) for r in results))
    for metric in dict.fromkeys(r.metric for r in chosen):
        plot_differences(chosen, metric, out / f"layers_{metric}.png", args.confidence)
    for line in describe(chosen):
        print(line)
    print(f"wrote {out / 'layers.csv'} and layers_<metric>.png")


def _model(tables: Sequence[Sequence[SweepRow]]) -> str:
    return "+".join(dict.fromkeys(row.model for table in tables for row in table))


if __name__ == "__main__":
    main()
