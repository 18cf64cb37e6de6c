"""Compare two models' sweep CSVs: Figure 1-style overlay and the cross-over level per perturbation.

    python -m run_reports.compare MONO.csv BI.csv --out comparison/
    python -m run_reports.compare --a MONO_s0.csv MONO_s1.csv --b BI_s0.csv BI_s1.csv --out comparison/

writes ``<out>/compare_<metric>.png`` (one panel per perturbation: each model's curve with its 95%
interval, the cross-over and its interval shaded), ``<out>/crossover.csv`` (one row per perturbation
and metric) and prints one line per cross-over. Model B is the one expected to overtake (e.g. the
bilingual model). By default the metrics compared are those both tables share, restricted to
``bits_per_byte_*`` when there are any (per-token perplexity is not comparable between tokenizers).

**Training replicates.** ``--a``/``--b`` take several CSVs per side (at least 2 each): the sweeps of one
config trained under several ``seed_everything`` values. A side's curve is then the mean over its
training seeds of the trial means; its band is a Student-t interval over the seed means (S − 1 degrees of
freedom), and the cross-over interval inverts the per-level Welch t test of the difference — or the
paired t with ``--paired-seeds``, when the i-th CSV of A and of B were trained with the same seed (see
``cognitive_reserve.crossover`` and ``cognitive_reserve.contrasts``): they cover training-seed and trial
variance. With one CSV per side the band is the sweep summary's per-level interval over trials
(``cognitive_reserve.intervals``) and the cross-over interval inverts a t test over trials: they cover the
trials only. A cross-over interval that reaches both ends of the grid is reported as not identified.

**One table, several models.** A table holding several models (the linear experiment's sweep: one model per T)
needs ``--model-a``/``--model-b`` to pick the model of each side; one table may then stand on both sides
(``--model-a linear_svd_k4_T1 --model-b linear_svd_k4_T20``). A table compared with itself (the same file, or
another file with the same content, for the same model) is refused: it can only say "A never better than A".

Bad input prints ``error: field=value: reason`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import hashlib
import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from cognitive_reserve.crossover import CrossOver, find_replicated_crossover, seed_mean_curve
from cognitive_reserve.errors import ConfigError
from cognitive_reserve.io import read_sweep_csv, write_records
from cognitive_reserve.plots import (
    LEVEL_LABELS,
    MeanCiPoint,
    draw_mean_ci,
    interval_handles,
    method_words,
    metric_label,
    save_figure,
)
from cognitive_reserve.rows import all_targets
from cognitive_reserve.stats import LevelSummary, summarize
from cognitive_reserve.sweep import SweepRow
from run_reports.command import add_comparison_options, check_comparison_options, one_line_errors

#: Columns of ``crossover.csv``.
CROSSOVER_COLUMNS = (
    "perturbation",
    "metric",
    "model_a",
    "model_b",
    "direction",
    *CrossOver.FINDING,
    "paired_trials",
    "paired_seeds",
    "n_seeds_a",
    "n_seeds_b",
    "confidence",
)

#: One side of the comparison: one list of sweep rows per training seed.
Side = Sequence[Sequence[SweepRow]]


def compare(
    rows_a: Sequence[SweepRow] | Side,
    rows_b: Sequence[SweepRow] | Side,
    out_dir: str | Path,
    metrics: Sequence[str] | None = None,
    direction: str | None = None,
    confidence: float = 0.95,
    paired_seeds: bool = False,
) -> list[CrossOver]:
    """Cross-overs for every shared perturbation × chosen metric, plus figures and ``crossover.csv``.

    Each side is the rows of one sweep table, or a list of such tables (one per training seed);
    ``paired_seeds``: the i-th tables of both sides share a training seed.
    """
    side_a, side_b = _as_side(rows_a), _as_side(rows_b)
    all_a, all_b = [r for t in side_a for r in t], [r for t in side_b for r in t]
    out_dir = Path(out_dir)
    metrics = list(metrics) if metrics else default_metrics(all_a, all_b)
    perturbations = [p for p in _ordered(r.perturbation for r in all_a) if p in {r.perturbation for r in all_b}]
    if not perturbations:
        raise ConfigError("tables", "A/B", "share no perturbation")
    results = [
        find_replicated_crossover(side_a, side_b, perturbation, metric, direction, confidence, paired_seeds)  # type: ignore[arg-type]
        for metric in metrics
        for perturbation in perturbations
    ]
    records = ({c: getattr(r, c) for c in CROSSOVER_COLUMNS} for r in results)
    write_records(out_dir / "crossover.csv", CROSSOVER_COLUMNS, records)
    for metric in metrics:
        chosen = [r for r in results if r.metric == metric]
        plot_comparison(side_a, side_b, chosen, out_dir / f"compare_{metric}.png")
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
) -> Path:
    """One panel per perturbation: both models' curves with their intervals, cross-over line and interval.

    Each side is one table's rows (the summary's per-level bands over trials) or one table per training seed (t
    bands over the seed means); the confidence is the results'.
    """
    side_a, side_b = _as_side(side_a), _as_side(side_b)
    confidence = results[0].confidence
    fig = Figure(figsize=(4.4 * len(results), 4.0), layout="constrained")
    axes = fig.subplots(1, len(results), squeeze=False)[0]
    drawn: list[MeanCiPoint] = []  # every point of every curve, for the legend
    for ax, result in zip(axes, results, strict=True):
        for side, model, color in ((side_a, result.model_a, "tab:blue"), (side_b, result.model_b, "tab:orange")):
            if len(side) == 1:
                cell = (result.perturbation, result.metric)
                points = sorted(
                    (s for s in summarize(side[0], confidence) if (s.perturbation, s.metric) == cell), key=_level
                )
                draw_mean_ci(ax, points, color=color, label=points[0].model)
            else:
                points = seed_mean_curve(side, result.perturbation, result.metric, confidence)
                draw_mean_ci(ax, points, color=color, label=f"{model} (mean of {len(side)} seeds)")
            drawn += points
        if math.isfinite(result.ci_low) or math.isfinite(result.ci_high):  # a range of the grid
            low = max(result.ci_low, result.levels[0])
            high = min(result.ci_high, result.levels[-1])
            ax.axvspan(low, high, color="grey", alpha=0.15, label=f"{confidence:.0%} interval of the cross-over")
        if result.status == "crossing":
            ax.axvline(result.level, color="black", linestyle="--", linewidth=1, label="where the means cross")
        ax.text(0.03, 0.97, crossover_text(result), transform=ax.transAxes, va="top", fontsize="x-small")
        ax.set_xlabel(LEVEL_LABELS.get(result.perturbation, result.perturbation))
        ax.set_ylabel(metric_label(result.metric))
        ax.set_title(result.perturbation.replace("_", " "))
        ax.grid(alpha=0.3)
    if results[0].replicated:
        band = "t over training seeds"
    else:  # the sweep summaries' own intervals
        band = f"{method_words(s.method for s in drawn if math.isfinite(s.ci_low))} over trials"  # type: ignore[attr-defined]
    handles = {label: handle for ax in axes for handle, label in zip(*ax.get_legend_handles_labels(), strict=True)}
    for handle in interval_handles(drawn, f"band: {confidence:.0%} CI of the mean ({band})"):
        handles[handle.get_label()] = handle
    columns = 2 if len(results) > 1 else 1
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=columns, fontsize="small")
    return save_figure(fig, path, f"{metric_label(results[0].metric)} under damage to the weights")


def crossover_text(result: CrossOver) -> str:
    """What a panel says about its cross-over, in words (status ``none``: B never better anywhere in the grid)."""
    if result.status == "crossing":
        said = f"means cross at {result.level:.3g}"
    elif result.status == "b_better_from_start":
        said = f"no cross-over: {result.model_b}\nbetter from the first level"
    else:
        said = f"no cross-over: {result.model_b}\nnever better up to {result.levels[-1]:g}"
    if result.flag:  # no interval: too few trials
        return f"{said}\n{result.method}"
    interval = result.interval_text() if result.identified else "not identified"
    return f"{said}\n{result.confidence:.0%}: {interval}"


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
    add_comparison_options(parser)
    args = parser.parse_args(argv)
    with one_line_errors():
        paths_a, paths_b = _side_paths(args)
        check_distinct_tables(paths_a, paths_b, args.model_a, args.model_b)
        side_a = [load_sweep(field, path, args.model_a) for field, path in paths_a]
        side_b = [load_sweep(field, path, args.model_b) for field, path in paths_b]
        check_comparison_options(args)
        results = compare(side_a, side_b, args.out, args.metric, args.direction, args.confidence, args.paired_seeds)
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


def check_distinct_tables(
    paths_a: Sequence[tuple[str, str]], paths_b: Sequence[tuple[str, str]], model_a: str | None, model_b: str | None
) -> None:
    """``ConfigError`` when one table is given twice: within a side (one CSV per training seed), or on both sides
    for the same model (a model compared with itself). The same file, or files of the same content, count as one."""
    seen: dict[tuple[str, bytes], tuple[str, str]] = {}
    for side, paths in (("a", paths_a), ("b", paths_b)):
        for field, path in paths:
            if not Path(path).is_file():
                continue  # load_sweep says so
            content = hashlib.sha256(Path(path).read_bytes()).digest()
            for (earlier_side, earlier_content), (earlier_field, earlier_path) in seen.items():
                if content != earlier_content:
                    continue
                same = "the same file" if Path(path).resolve() == Path(earlier_path).resolve() else "the same content"
                if earlier_side == side:
                    raise ConfigError(
                        field, path, f"{same} as {earlier_path} ({earlier_field}): one CSV per training seed"
                    )
                if model_a == model_b:
                    raise ConfigError(
                        field,
                        path,
                        f"{same} as {earlier_path} ({earlier_field}): a model compared with itself is never better "
                        "than itself; give the other model's sweep CSV, or pick two models of one table with "
                        "--model-a/--model-b",
                    )
            seen[(side, content)] = (field, path)


def load_sweep(field: str, path: str, model: str | None, *, groups: bool = False) -> list[SweepRow]:
    """The rows of one sweep CSV (of ``model`` only, when given); a layer-wise sweep's all-targets rows only,
    unless ``groups``. Errors name ``field``; a table of several models needs ``model`` (``--model-a``/``--model-b``,
    after the side that ``field`` ends with)."""
    if not Path(path).is_file():
        raise ConfigError(field, path, "no such file")
    try:
        rows = read_sweep_csv(path)
    except ValueError as err:
        raise ConfigError(field, path, str(err).removeprefix(f"{path}: ")) from None
    rows = rows if groups else all_targets(rows)
    models = list(dict.fromkeys(row.model for row in rows))
    if model is not None:
        rows = [row for row in rows if row.model == model]
        if not rows:
            raise ConfigError(field, path, f"has no rows of model {model!r} (models: {', '.join(models)})")
    elif len(models) > 1:
        flag = f"--model-{field[-1]}"
        raise ConfigError(
            field,
            path,
            f"holds {len(models)} models ({', '.join(models)}): pick the one to compare with {flag} (e.g. {flag} "
            f"{models[0]})",
        )
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
