"""Compare two models layer by layer: B − A per group of a layer-wise sweep, with its interval over seeds.

    python -m run_reports.layers A_s0.csv A_s1.csv --b B_s0.csv B_s1.csv --out layers/ [--level 0.4]

Each side is one or more sweep CSVs of a layer-wise sweep (``PerturbationSweep`` with ``groups``), one per
training seed, all with the same groups and grid. For every group (and all targets together), perturbation,
metric and level, two differences, each with the t interval of ``run_reports.compare``
(``cognitive_reserve.crossover.level_differences``):

- ``damage``: B's damage − A's damage, a model's damage being its metric minus its undamaged metric (level 0
  of the same table): how much more (or less) damaging that group hurts B than A. The clean gap between the
  models cancels out; this is what the figure and printout show (``--measure damage``, the default).
- ``raw``: B − A of the metric itself (``--measure raw``), the clean gap included.

With several CSVs per side (at least 2 each) the interval is Student t over the training seeds' means (Welch,
or paired with ``--paired-seeds`` when the i-th CSVs of A and B share a training seed), so it covers
training-seed and trial variance; with one CSV per side it covers trials only (and has zero width where a
level has one trial, e.g. magnitude pruning). Each interval is for one cell on its own: nothing corrects for
the many groups and levels looked at together.

Writes ``<out>/layers.csv`` (one row per group, perturbation, metric and level, both differences with their
intervals and ``excludes_zero``) and ``<out>/layers_<metric>.png`` (one panel per perturbation: the difference
per group at the chosen level, with its interval; groups whose interval excludes 0 drawn filled), and prints,
per perturbation and metric, the groups whose difference excludes 0 at that level. ``--level`` picks the level
(default: each perturbation's highest). Metrics: as ``run_reports.compare`` (the shared ones, only
``bits_per_byte_*`` when there are any).

Bad input prints ``error: field=value: reason`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
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
from run_reports.command import add_comparison_options, check_comparison_options, one_line_errors
from run_reports.compare import default_metrics, load_sweep

COLUMNS = (
    "group",
    "perturbation",
    "metric",
    "level",
    "model_a",
    "model_b",
    "mean_a",
    "mean_b",
    "difference",
    "ci_low",
    "ci_high",
    "excludes_zero",
    "damage_a",
    "damage_b",
    "damage_difference",
    "damage_ci_low",
    "damage_ci_high",
    "damage_excludes_zero",
    "method",
    "n_seeds_a",
    "n_seeds_b",
    "confidence",
)
MEASURES = ("damage", "raw")

#: One side: the rows of each of its tables (one per training seed).
Side = Sequence[Sequence[SweepRow]]


@dataclass(frozen=True)
class GroupDifference:
    """``B − A`` of one group, perturbation and metric at one level: of the metric (``raw``) and of the damage
    (the metric minus the undamaged one)."""

    group: str
    perturbation: str
    metric: str
    model_a: str
    model_b: str
    raw: LevelDifference
    damage: LevelDifference

    def measured(self, measure: str) -> LevelDifference:
        return self.damage if measure == "damage" else self.raw

    def record(self, confidence: float) -> dict[str, object]:
        d, h = self.raw, self.damage
        return {
            "group": self.group,
            "perturbation": self.perturbation,
            "metric": self.metric,
            "level": d.level,
            "model_a": self.model_a,
            "model_b": self.model_b,
            "mean_a": d.mean_a,
            "mean_b": d.mean_b,
            "difference": d.difference,
            "ci_low": d.ci_low,
            "ci_high": d.ci_high,
            "excludes_zero": d.excludes_zero,
            "damage_a": h.mean_a,
            "damage_b": h.mean_b,
            "damage_difference": h.difference,
            "damage_ci_low": h.ci_low,
            "damage_ci_high": h.ci_high,
            "damage_excludes_zero": h.excludes_zero,
            "method": d.method,
            "n_seeds_a": d.n_seeds_a,
            "n_seeds_b": d.n_seeds_b,
            "confidence": confidence,
        }


def compare_groups(
    side_a: Side,
    side_b: Side,
    metrics: Sequence[str] | None = None,
    confidence: float = 0.95,
    paired_seeds: bool = False,
) -> list[GroupDifference]:
    """``B − A`` for every group both sides share (``""``: all targets), perturbation, chosen metric and level,
    of the raw metric and of the damage."""
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
                options = (perturbation, metric, confidence, paired_seeds)
                raw = level_differences(tables_a, tables_b, *options)
                damage = level_differences(_damage(tables_a, "A"), _damage(tables_b, "B"), *options)
                model_a, model_b = _model(tables_a), _model(tables_b)
                found += [
                    GroupDifference(group, perturbation, metric, model_a, model_b, r, d)
                    for r, d in zip(raw, damage, strict=True)
                ]
    return found


def _damage(tables: Side, label: str) -> list[list[SweepRow]]:
    """Each table's rows with its undamaged value (the mean of its level-0 trials of the same model,
    perturbation and metric) subtracted."""
    shifted = []
    for table in tables:
        clean: dict[tuple[str, str, str], list[float]] = {}
        for row in table:
            if row.level == 0:
                clean.setdefault((row.model, row.perturbation, row.metric), []).append(row.value)
        missing = {(r.perturbation, r.metric) for r in table if (r.model, r.perturbation, r.metric) not in clean}
        if missing:
            (perturbation, metric), *_ = sorted(missing)
            raise ConfigError(f"table {label}", f"{perturbation}/{metric}", "has no level 0 to measure damage from")
        means = {key: sum(values) / len(values) for key, values in clean.items()}
        shifted.append(
            [dataclasses.replace(r, value=r.value - means[(r.model, r.perturbation, r.metric)]) for r in table]
        )
    return shifted


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
        levels = sorted({r.raw.level for r in results if r.perturbation == perturbation})
        wanted = levels[-1] if level is None else level
        if wanted not in levels:
            raise ConfigError("level", level, f"not a level of {perturbation} ({', '.join(f'{x:g}' for x in levels)})")
        chosen += [r for r in results if r.perturbation == perturbation and r.raw.level == wanted]
    return chosen


def plot_differences(
    chosen: Sequence[GroupDifference], metric: str, path: Path, confidence: float, measure: str = "damage"
) -> Path:
    """One panel per perturbation: ``B − A`` (of ``measure``) per group, all targets first, with its interval."""
    panels = list(dict.fromkeys(r.perturbation for r in chosen if r.metric == metric))
    groups = list(dict.fromkeys(r.group for r in chosen))
    fig = Figure(figsize=(max(4.0, 0.45 * len(groups) + 1.5) * len(panels), 4.6), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, perturbation in zip(axes, panels, strict=True):
        cells = [r for r in chosen if r.metric == metric and r.perturbation == perturbation]
        for x, r in enumerate(cells):
            d = r.measured(measure)
            color = "tab:grey" if not r.group else "tab:purple"
            ax.errorbar(
                x,
                d.difference,
                yerr=[[d.difference - d.ci_low], [d.ci_high - d.difference]],
                fmt="o",
                color=color,
                markerfacecolor=color if d.excludes_zero else "white",
                capsize=3,
            )
        ax.axhline(0, color="black", linestyle="--", linewidth=1)
        labels = [r.group or ALL_TARGETS for r in cells]
        ax.set_xticks(range(len(cells)), labels, rotation=60, ha="right", fontsize="x-small")
        level = cells[0].raw.level
        ax.set_title(f"{perturbation.replace('_', ' ')} at {level:g}", fontsize="small")
        ax.set_xlabel(LEVEL_LABELS.get(perturbation, perturbation) + f" = {level:g}: group damaged")
        direction = metric_direction(metric)
        quantity = f"B − A: damage to {metric}" if measure == "damage" else f"B − A: {metric}"
        ax.set_ylabel(quantity + (f"\n({direction} is better)" if direction else ""), fontsize="small")
        ax.grid(alpha=0.3, axis="y")
    first = chosen[0].raw
    seeds = f"{first.n_seeds_a} + {first.n_seeds_b} training seeds"
    title = f"{chosen[0].model_b} − {chosen[0].model_a} ({seeds}); {confidence:.0%} {first.method}; filled: excludes 0"
    return save_figure(fig, path, title)


def describe(chosen: Sequence[GroupDifference], measure: str = "damage") -> list[str]:
    """Per perturbation and metric, the groups whose difference (of ``measure``) excludes 0, for people."""
    lines = []
    for perturbation, metric in dict.fromkeys((r.perturbation, r.metric) for r in chosen):
        cells = [r for r in chosen if (r.perturbation, r.metric) == (perturbation, metric)]
        excluding = [
            f"{r.group or ALL_TARGETS} {d.difference:+.4g} [{d.ci_low:+.4g}, {d.ci_high:+.4g}]"
            for r in cells
            if (d := r.measured(measure)).excludes_zero
        ]
        found = "; ".join(excluding) if excluding else "no group"
        what = "damage" if measure == "damage" else "metric"
        lines.append(f"{perturbation} {cells[0].raw.level:g} / {metric}: B − A ({what}) excludes 0 for {found}")
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
    parser.add_argument("--measure", choices=MEASURES, default="damage", help="what the figure and printout compare")
    add_comparison_options(parser)
    args = parser.parse_args(argv)
    with one_line_errors():
        check_comparison_options(args)
        twice = sorted({path for path in args.a + args.b if (args.a + args.b).count(path) > 1})
        if twice:
            raise ConfigError("a/b", twice, "given twice (one CSV per training seed)")
        side_a = [load_sweep("a", path, args.model_a, groups=True) for path in args.a]
        side_b = [load_sweep("b", path, args.model_b, groups=True) for path in args.b]
        results = compare_groups(side_a, side_b, args.metric, args.confidence, args.paired_seeds)
        chosen = at_level(results, args.level)
    out = Path(args.out)
    write_records(out / "layers.csv", COLUMNS, (r.record(args.confidence) for r in results))
    for metric in dict.fromkeys(r.metric for r in chosen):
        plot_differences(chosen, metric, out / f"layers_{metric}.png", args.confidence, args.measure)
    for line in describe(chosen, args.measure):
        print(line)
    print(f"wrote {out / 'layers.csv'} and layers_<metric>.png")


def _model(tables: Sequence[Sequence[SweepRow]]) -> str:
    return "+".join(dict.fromkeys(row.model for table in tables for row in table))


if __name__ == "__main__":
    main()
