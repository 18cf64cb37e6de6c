"""Compare two models' sweep CSVs: Figure 1-style overlay and the cross-over level per perturbation.

    python -m run_reports.compare MONO.csv BI.csv --out comparison/
    python -m run_reports.compare --a MONO_s0.csv MONO_s1.csv --b BI_s0.csv BI_s1.csv --out comparison/

writes ``<out>/compare_<metric>.png`` (one panel per perturbation: each model's curve with its 95%
interval, the cross-over and its interval shaded), ``<out>/crossover.csv`` (one row per perturbation
and metric) and prints one line per cross-over. Model B is the one expected to overtake (e.g. the
bilingual model). By default the metrics compared are those both tables share, restricted to
``bits_per_byte_*`` when there are any (per-token perplexity is not comparable between tokenizers).

**Training replicates.** ``--a``/``--b`` take several CSVs per side: the sweeps of one config trained
under several ``seed_everything`` values. A side's curve is then the mean over its training seeds of
the trial means, and both its band and the cross-over interval come from a two-level bootstrap
(training seeds resampled, then trials within each; trials paired when every table used the same
perturbation seeds, see ``cognitive_reserve.crossover``): they cover training-seed and trial variance.
``crossover.csv`` then has two more columns, ``n_seeds_a`` and ``n_seeds_b``. With one CSV per side
bands are the per-level intervals over trials (``cognitive_reserve.intervals``), the interval covers trials only.

Bad input prints ``error: field=value: reason`` and exits with status 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from cognitive_reserve.crossover import CrossOver, find_replicated_crossover, seed_mean_curve
from cognitive_reserve.errors import ConfigError
from cognitive_reserve.io import read_sweep_csv, write_records
from cognitive_reserve.plots import LEVEL_LABELS, draw_mean_ci, metric_label, save_figure
from cognitive_reserve.rows import all_targets
from cognitive_reserve.stats import LevelSummary, summarize
from cognitive_reserve.sweep import SweepRow
from run_reports.command import add_bootstrap_options, check_bootstrap_options, one_line_errors

#: Columns of ``crossover.csv``; with training replicates on either side, ``REPLICATE_COLUMNS``.
CROSSOVER_COLUMNS = (
    "perturbation", "metric", "model_a", "model_b", "direction", "status", "level", "ci_low", "ci_high",
    "fraction_crossing", "paired", "n_boot",
)  # fmt: skip
REPLICATE_COLUMNS = (*CROSSOVER_COLUMNS, "n_seeds_a", "n_seeds_b")

#: One side of the comparison: one list of sweep rows per training seed.
Side = Sequence[Sequence[SweepRow]]


def compare(
    rows_a: Sequence[SweepRow] | Side,
    rows_b: Sequence[SweepRow] | Side,
    out_dir: str | Path,
    metrics: Sequence[str] | None = None,
    direction: str | None = None,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[CrossOver]:
    """Cross-overs for every shared perturbation × chosen metric, plus figures and ``crossover.csv``.

    Each side is the rows of one sweep table, or a list of such tables (one per training seed).
    """
    side_a, side_b = _as_side(rows_a), _as_side(rows_b)
    all_a, all_b = [r for t in side_a for r in t], [r for t in side_b for r in t]
    out_dir = Path(out_dir)
    metrics = list(metrics) if metrics else default_metrics(all_a, all_b)
    perturbations = [p for p in _ordered(r.perturbation for r in all_a) if p in {r.perturbation for r in all_b}]
    if not perturbations:
        raise ConfigError("tables", "A/B", "share no perturbation")
    results = [
        find_replicated_crossover(side_a, side_b, perturbation, metric, direction, n_boot, confidence, seed)  # type: ignore[arg-type]
        for metric in metrics
        for perturbation in perturbations
    ]
    columns = REPLICATE_COLUMNS if len(side_a) > 1 or len(side_b) > 1 else CROSSOVER_COLUMNS
    write_records(out_dir / "crossover.csv", columns, ({c: getattr(r, c) for c in columns} for r in results))
    for metric in metrics:
        chosen = [r for r in results if r.metric == metric]
        plot_comparison(side_a, side_b, chosen, out_dir / f"compare_{metric}.png", n_boot, confidence, seed)
    return results


def default_metrics(rows_a: Sequence[SweepRow], rows_b: Sequence[SweepRow]) -> list[str]:
    """Metrics of both tables; only the ``bits_per_byte*`` ones when there are any."""
    shared = [m for m in _ordered(r.metric for r in rows_a) if m in {r.metric for r in rows_b}]
    if not shared:
        raise ConfigError("metric", None, "the two tables share no metric")
    per_byte = [m for m in shared if m.startswith("bits_per_byte")]
    return per_byte or shared


def plot_comparison(
    side_a: Sequence[SweepRow] | Side,
    side_b: Sequence[SweepRow] | Side,
    results: Sequence[CrossOver],
    path: Path,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Path:
    """One panel per perturbation: both models' curves with their intervals, cross-over line and interval.

    Each side is one table's rows (per-level bands over trials) or one table per training seed (two-level bands).
    """
    side_a, side_b = _as_side(side_a), _as_side(side_b)
    fig = Figure(figsize=(4.4 * len(results), 4.0), layout="constrained")
    axes = fig.subplots(1, len(results), squeeze=False)[0]
    for ax, result in zip(axes, results, strict=True):
        for side, model, color in ((side_a, result.model_a, "tab:blue"), (side_b, result.model_b, "tab:orange")):
            if len(side) == 1:
                cell = (result.perturbation, result.metric)
                points = sorted((s for s in summarize(side[0]) if (s.perturbation, s.metric) == cell), key=_level)
                draw_mean_ci(ax, points, color=color, label=points[0].model)
            else:
                points = seed_mean_curve(side, result.perturbation, result.metric, n_boot, confidence, seed)
                draw_mean_ci(ax, points, color=color, label=f"{model} (mean of {len(side)} seeds)")
        if result.status == "crossing":
            low = max(result.ci_low, result.levels[0])
            high = min(result.ci_high, result.levels[-1])
            ax.axvspan(low, high, color="grey", alpha=0.15, label=f"cross-over and its {confidence:.0%} interval")
            ax.axvline(result.level, color="black", linestyle="--", linewidth=1)
        ax.text(0.03, 0.97, crossover_text(result), transform=ax.transAxes, va="top", fontsize="x-small")
        ax.set_xlabel(LEVEL_LABELS.get(result.perturbation, result.perturbation))
        ax.set_ylabel(metric_label(result.metric))
        ax.set_title(result.perturbation.replace("_", " "))
        ax.grid(alpha=0.3)
    band = "two-level bootstrap over training seeds and trials" if results[0].replicated else "bootstrap-t over trials"
    handles = {label: handle for ax in axes for handle, label in zip(*ax.get_legend_handles_labels(), strict=True)}
    handles[f"band: {confidence:.0%} CI of the mean ({band})"] = Patch(color="black", alpha=0.2)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=2, fontsize="small")
    return save_figure(fig, path, f"{metric_label(results[0].metric)} under damage to the weights")


def crossover_text(result: CrossOver) -> str:
    """What a panel says about its cross-over (status ``none``: B never better anywhere in the grid)."""
    if result.status == "crossing":
        return f"{result.model_b} better from {result.level:.3g}\n[{result.ci_low:.3g}, {result.ci_high:.3g}]"
    if result.status == "b_better_from_start":
        return f"no cross-over: {result.model_b}\nbetter from the first level"
    return f"no cross-over: {result.model_b}\nnever better up to {result.levels[-1]:g}"


def main(argv: list[str] | None = None) -> None:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m run_reports.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("table_a", nargs="?", help="sweep CSV of model A (e.g. monolingual)")
    parser.add_argument(
        "table_b", nargs="?", help="sweep CSV of model B, the one expected to overtake (e.g. bilingual)"
    )
    parser.add_argument("--a", nargs="+", metavar="CSV", help="model A's sweep CSVs, one per training seed")
    parser.add_argument("--b", nargs="+", metavar="CSV", help="model B's sweep CSVs, one per training seed")
    parser.add_argument("--out", required=True, help="directory for crossover.csv and compare_<metric>.png")
    parser.add_argument("--metric", action="append", help="metric to compare (repeatable; default: see above)")
    parser.add_argument("--direction", choices=("lower", "higher"), help="override: is a lower or higher metric better")
    add_bootstrap_options(parser)
    args = parser.parse_args(argv)
    with one_line_errors():
        paths_a, paths_b = _side_paths(args)
        side_a = [load_sweep(field, path, args.model_a) for field, path in paths_a]
        side_b = [load_sweep(field, path, args.model_b) for field, path in paths_b]
        check_bootstrap_options(args)
        results = compare(
            side_a, side_b, args.out, args.metric, args.direction, args.n_boot, args.confidence, args.seed
        )
    for result in results:
        print(result.describe())
    print(f"wrote {Path(args.out) / 'crossover.csv'} and compare_<metric>.png")


def _side_paths(args: argparse.Namespace) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(field, path)`` of each side's CSVs: the two positional tables, or ``--a``/``--b``."""
    if args.a or args.b:
        if args.table_a is not None:
            raise ConfigError("table_a", args.table_a, "give the tables either as two positionals or with --a/--b")
        if not (args.a and args.b):
            missing = "b" if args.a else "a"
            raise ConfigError(missing, None, "--a and --b go together (one or more CSVs each)")
        every = args.a + args.b
        twice = sorted({path for path in every if every.count(path) > 1})
        if twice:
            raise ConfigError("a/b", twice, "given twice (one CSV per training seed)")
        return [("a", path) for path in args.a], [("b", path) for path in args.b]
    if args.table_b is None:
        raise ConfigError("table_b" if args.table_a else "table_a", None, "two sweep CSVs (A B) or --a ... --b ...")
    return [("table_a", args.table_a)], [("table_b", args.table_b)]


def load_sweep(field: str, path: str, model: str | None, *, groups: bool = False) -> list[SweepRow]:
    """The rows of one sweep CSV (of ``model`` only, when given); a layer-wise sweep's all-targets rows only,
    unless ``groups``. Errors name ``field``."""
    if not Path(path).is_file():
        raise ConfigError(field, path, "no such file")
    try:
        rows = read_sweep_csv(path)
    except ValueError as err:
        raise ConfigError(field, path, str(err).removeprefix(f"{path}: ")) from None
    rows = rows if groups else all_targets(rows)
    if model is not None:
        rows = [row for row in rows if row.model == model]
        if not rows:
            raise ConfigError(field, path, f"has no rows of model {model!r}")
    return rows


def _as_side(rows: Sequence[SweepRow] | Side) -> list[list[SweepRow]]:
    """One table (a sequence of rows) or several (a sequence of such sequences) as a list of tables."""
    rows = list(rows)
    if rows and isinstance(rows[0], SweepRow):
        return [rows]  # type: ignore[list-item]
    return [list(table) for table in rows]  # type: ignore[arg-type]


def _level(point: LevelSummary) -> float:
    return point.level


def _ordered(values) -> list:
    return list(dict.fromkeys(values))


if __name__ == "__main__":
    main()
