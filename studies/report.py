"""``report``: a study's points read back as one result.

Per group (the values of ``compare.group_by``; the other axes, e.g. seeds, are pooled as training
replicates): ``run_reports.compare`` on arm A's and arm B's sweep CSVs — the same function the command
runs, so the numbers are those of ``python -m run_reports.compare --a ... --b ...`` with the CSVs in the
study's point order (``report`` prints that command) — written to ``OUT/<group>/crossover.csv`` and
``compare_<metric>.png``; Table 1 of the group's points (``table1.md``/``.csv``) when they logged weight
norms. Where every point of A has a point of B with the same values on the pooled axes (a crossed grid:
the same training seeds), the comparison is paired over seeds (``--paired-seeds``). Then, over all
groups, ``OUT/report.csv``: per group, perturbation and metric the cross-over level and its interval,
and the **clean-metric gap** B − A at the first level (mean over seeds, with the same t interval as the
per-level differences of ``run_reports.compare``); with a scale axis ``OUT/scale_<metric>.png`` draws both
against it. Points with a robustness slope (linear models) add ``OUT/slopes.csv``/``.png`` (R(T) of
every point, ``run_reports.slope_comparison``). One W&B run in the study's group logs all of it.
"""

from __future__ import annotations

import csv
import math
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from cognitive_reserve.crossover import CrossOver, LevelDifference, level_differences
from cognitive_reserve.errors import ConfigError
from cognitive_reserve.io import read_sweep_csv, write_records
from cognitive_reserve.plots import LEVEL_LABELS, metric_label, save_figure
from cognitive_reserve.rows import all_targets
from cognitive_reserve.sweep import SweepRow
from run_reports import compare as compare_command
from run_reports import slope_comparison
from studies.points import Point, axis_names, safe_name, study_points
from studies.spec import Comparison, Study

#: What the ``WeightNorms`` monitor writes in a run directory (``run_reports.table1`` reads it).
NORMS_FILE = Path("monitors") / "weight_norms.csv"
REPORT_COLUMNS = (
    "group",
    "x",
    "x_label",
    "perturbation",
    "metric",
    "grid_low",
    "grid_high",
    "status",
    "level",
    "ci_low",
    "ci_high",
    "identified",
    "method",
    "n_seeds_a",
    "n_seeds_b",
    "clean_a",
    "clean_b",
    "clean_gap",
    "clean_gap_low",
    "clean_gap_high",
)


@dataclass(frozen=True)
class Group:
    """The points of one group: its labels on the ``group_by`` axes, where its outputs go, A's and B's CSVs
    (``paired_seeds``: the i-th CSVs of both share their values on the pooled axes, e.g. a training seed).

    ``x``/``x_label``: where the group sits on the scale axis and its label there."""

    name: str
    x: float | None
    x_label: str | None
    directory: Path
    csvs_a: list[Path]
    csvs_b: list[Path]
    paired_seeds: bool
    points: list[Point]
    missing: list[str]


def sweep_csv(point: Point, pattern: str) -> Path | None:
    """The point's sweep CSV: the last match of ``pattern`` (the latest epoch)."""
    matches = sorted(point.directory.glob(pattern))
    return matches[-1] if matches else None


def study_groups(study: Study, root: Path, out: Path) -> list[Group]:
    """The study's groups in grid order (one group without a comparison), each with the CSVs that exist."""
    compare = study.compare
    group_by = compare.group_by if compare else ()
    short = axis_names(list(study.grid))
    grouped: dict[tuple[str, ...], list[Point]] = {}
    for point in study_points(study, root):
        grouped.setdefault(tuple(point.level(axis).label for axis in group_by), []).append(point)
    groups = []
    for key, points in grouped.items():
        name = ",".join(f"{short[axis]}={label}" for axis, label in zip(group_by, key, strict=True)) or "all"
        found: dict[str, dict[tuple[str, ...], Path]] = {compare.a: {}, compare.b: {}} if compare else {}
        missing = []
        for point in points:
            if point.arm in found:
                path = sweep_csv(point, study.sweep_glob)
                if path is None:
                    missing.append(point.label)
                else:
                    found[point.arm][tuple(level.label for axis, level in point.levels if axis not in group_by)] = path
        scale = points[0].level(compare.scale) if compare and compare.scale else None
        a, b = (found[compare.a], found[compare.b]) if compare else ({}, {})
        paired = len(a) > 1 and list(a) == list(b)
        groups.append(
            Group(
                name,
                scale.x if scale else None,
                scale.label if scale else None,
                out / safe_name(name),
                list(a.values()),
                list(b.values()),
                paired,
                points,
                missing,
            )
        )
    return groups


def load_side(paths: Sequence[Path], model: str | None, field: str) -> list[list[SweepRow]]:
    """One side's tables (one per training seed): the rows of all targets together (a layer-wise sweep's groups
    left out), restricted to ``model`` when given."""
    tables = []
    for path in paths:
        try:
            rows = all_targets(read_sweep_csv(path))
        except ValueError as err:
            raise ConfigError("study.compare.sweep", str(path), str(err).removeprefix(f"{path}: ")) from None
        if model is not None:
            rows = [row for row in rows if row.model == model]
            if not rows:
                raise ConfigError(field, model, f"no rows of this model in {path}")
        tables.append(rows)
    return tables


def by_hand_command(group: Group, compare: Comparison) -> str:
    """The ``run_reports.compare`` command that gives the group's numbers."""
    argv = ["python", "-m", "run_reports.compare", "--a", *map(str, group.csvs_a), "--b", *map(str, group.csvs_b)]
    for metric in compare.metrics or ():
        argv += ["--metric", metric]
    for option, value in (
        ("--model-a", compare.model_a),
        ("--model-b", compare.model_b),
        ("--direction", compare.direction),
    ):
        if value is not None:
            argv += [option, value]
    argv += ["--confidence", str(compare.confidence), *(["--paired-seeds"] if group.paired_seeds else [])]
    return shlex.join([*argv, "--out", str(group.directory)])


def clean_gap(
    tables_a: Sequence[Sequence[SweepRow]], tables_b: Sequence[Sequence[SweepRow]], result: CrossOver, group: Group
) -> LevelDifference:
    """B − A of the clean metric (the first level of the result's grid), means over seeds, with the t interval
    of ``run_reports.compare``'s per-level differences (over training seeds; a point for one seed per side)."""
    return level_differences(
        tables_a, tables_b, result.perturbation, result.metric, result.confidence, group.paired_seeds
    )[0]


def report(
    study: Study, root: Path, out: Path, wandb_project: str | None = None, say: Callable[[str], None] = print
) -> int:
    """Write the report of ``study`` under ``out`` (see the module docstring); exit status."""
    out.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    figures: dict[str, Path] = {}
    tables: dict[str, list[dict[str, object]]] = {}
    for group in study_groups(study, root, out):
        if study.compare is not None:
            records += _compare_group(study.compare, group, figures, say)
        norms = _table1(group)
        if norms:
            tables[f"study/table1/{group.name}"] = norms
    if records:
        write_records(out / "report.csv", REPORT_COLUMNS, records)
        tables["study/report"] = records
        say(f"wrote {out / 'report.csv'}")
    if records and study.compare is not None and study.compare.scale is not None:
        for metric in dict.fromkeys(r["metric"] for r in records):
            figures[f"study/scale/{metric}"] = plot_scale(records, metric, study, out / f"scale_{metric}.png")
            say(f"wrote {figures[f'study/scale/{metric}']}")
    slopes = _slopes(study, root, out, say)
    if slopes is not None:
        figures["study/slopes"] = slopes
        tables["study/slopes"] = _read_records(out / "slopes.csv")
    if not records and slopes is None:
        raise ConfigError(
            "study", study.name, f"nothing to report yet under {root / study.name} (python -m studies status)"
        )
    if wandb_project is not None:
        say(_log(study, out, wandb_project, tables, figures))
    return 0


def _compare_group(
    compare: Comparison, group: Group, figures: dict[str, Path], say: Callable[[str], None]
) -> list[dict[str, Any]]:
    """The group's comparison (``OUT/<group>/crossover.csv`` and figures) and its rows of ``report.csv``."""
    if group.missing:
        say(f"{group.name}: no sweep CSV yet for {', '.join(group.missing)} (not launched, running or failed)")
    if not group.csvs_a or not group.csvs_b:
        say(f"{group.name}: skipped, {'A' if not group.csvs_a else 'B'} has no sweep CSV")
        return []
    side_a = load_side(group.csvs_a, compare.model_a, "study.compare.model_a")
    side_b = load_side(group.csvs_b, compare.model_b, "study.compare.model_b")
    results = compare_command.compare(
        side_a, side_b, group.directory, compare.metrics, compare.direction, compare.confidence, group.paired_seeds
    )
    say(f"{group.name}: the numbers of {by_hand_command(group, compare)}")
    records = []
    for result in results:
        clean = clean_gap(side_a, side_b, result, group)
        records.append(_record(group, result, clean))
        say(f"  {result.describe()}")
        say(
            f"  {result.perturbation} / {result.metric}: clean {compare.b} − {compare.a} = {clean.difference:+.4g} "
            f"[{clean.ci_low:+.4g}, {clean.ci_high:+.4g}] ({result.confidence:.0%} {clean.method})"
        )
    for metric in dict.fromkeys(r.metric for r in results):
        figures[f"study/compare/{group.name}/{metric}"] = group.directory / f"compare_{metric}.png"
    return records


def _read_records(path: Path) -> list[dict[str, object]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def _record(group: Group, result: CrossOver, clean: LevelDifference) -> dict[str, Any]:
    fields = ("perturbation", "metric", "status", "level", "ci_low", "ci_high", "identified", "method")
    return {
        "group": group.name,
        "x": group.x,
        "x_label": group.x_label,
        **{name: getattr(result, name) for name in fields},
        "grid_low": result.levels[0],
        "grid_high": result.levels[-1],
        "n_seeds_a": result.n_seeds_a,
        "n_seeds_b": result.n_seeds_b,
        "clean_a": clean.mean_a,
        "clean_b": clean.mean_b,
        "clean_gap": clean.difference,
        "clean_gap_low": clean.ci_low,
        "clean_gap_high": clean.ci_high,
    }


def _table1(group: Group) -> list[dict[str, object]]:
    """Table 1 of the group's points that logged weight norms (``table1.md``/``.csv`` in the group's folder);
    its rows."""
    norms = [point for point in group.points if (point.directory / NORMS_FILE).is_file()]
    if not norms:
        return []
    from run_reports import table1  # imports tracking, hence Lightning: only when there is a table to make

    runs = [table1.read_run_norms(point.label, point.directory) for point in norms]
    table1.write_table(runs, group.directory)
    return table1.table_records(runs)


def _slopes(study: Study, root: Path, out: Path, say: Callable[[str], None]) -> Path | None:
    """R(T) of every point that wrote one (linear models): ``slopes.csv``/``.png`` and R(T_max)/R(T_min) each."""
    runs = {
        point.label: str(point.directory)
        for point in study_points(study, root)
        if (point.directory / "robustness" / "robustness_slope.csv").is_file()
    }
    if not runs:
        return None
    records = slope_comparison.compare(runs, out / "slopes")
    say(f"wrote {out / 'slopes.csv'} and {out / 'slopes.png'}: R(T) of {len(runs)} points")
    for label in runs:
        mine = [r for r in records if r["label"] == label]
        say(
            f"{label}: R({mine[0]['num_tasks']}) = {mine[0]['robustness_slope']:.3f}, "
            f"R({mine[-1]['num_tasks']}) = {mine[-1]['robustness_slope']:.3f}, ratio {mine[-1]['ratio_to_first']:.2f}"
        )
    return out / "slopes.png"


def plot_scale(records: Sequence[dict[str, Any]], metric: str, study: Study, path: Path) -> Path:
    """``scale_figure`` written to ``path``."""
    return save_figure(scale_figure(records, metric, study), path)


def scale_figure(records: Sequence[dict[str, Any]], metric: str, study: Study) -> Figure:
    """Against the scale axis: the clean gap B − A with its interval (one panel), then per perturbation the
    cross-over's interval (a bar; a dot where the means cross; an arrow where it reaches an end of the grid),
    and in words where there is none or it is not identified."""
    compare = study.compare
    assert compare is not None and compare.scale is not None
    mine = [r for r in records if r["metric"] == metric]
    perturbations = list(dict.fromkeys(r["perturbation"] for r in mine))
    groups = list(dict.fromkeys(r["group"] for r in mine))
    first = {g: next(r for r in mine if r["group"] == g) for g in groups}
    numeric = all(r["x"] is not None for r in first.values())
    position = {g: first[g]["x"] if numeric else i for i, g in enumerate(groups)}
    fig = Figure(figsize=(3.4 * (1 + len(perturbations)), 4.2), layout="constrained")
    axes = fig.subplots(1, 1 + len(perturbations), squeeze=False)[0]
    _clean_gap_panel(axes[0], [first[g] for g in groups], position, metric, compare)
    for ax, perturbation in zip(axes[1:], perturbations, strict=True):
        _crossover_panel(ax, [r for r in mine if r["perturbation"] == perturbation], position, compare.b)
        ax.set_title(f"cross-over: {perturbation.replace('_', ' ')}", fontsize="medium")
        ax.set_ylabel(LEVEL_LABELS.get(perturbation, perturbation))
    low, high = min(position.values()), max(position.values())
    logarithmic = numeric and low > 0 and high >= 4 * low
    for ax in axes:
        if logarithmic:
            ax.set_xscale("log")
            ax.minorticks_off()
            ax.set_xlim(low / 1.5, high * 1.5)
        else:
            step = (high - low) / max(len(groups) - 1, 1) or 1.0
            ax.set_xlim(low - step / 2, high + step / 2)
        ax.set_xticks(list(position.values()), [first[g]["x_label"] or g for g in groups])
        ax.set_xlabel(compare.scale_label or axis_names(list(study.grid))[compare.scale])
        ax.grid(alpha=0.3)
    method = next(iter(first.values()))["method"]
    lines = [
        f"{study.name}: where {compare.b} overtakes {compare.a} ({metric_label(metric)})",
        f"bars: {compare.confidence:.0%} intervals ({method}); ● where the means cross; "
        "▲/▼ the interval reaches the end of the grid",
        *([study.caption] if study.caption else []),
    ]
    fig.suptitle("\n".join(lines), fontsize="medium")
    return fig


def _clean_gap_panel(
    ax: Any, rows: Sequence[dict[str, Any]], position: dict[str, float], metric: str, compare: Comparison
) -> None:
    """The undamaged gap B − A of every group, with its interval over training seeds."""
    for r in rows:
        gap = r["clean_gap"]
        ax.errorbar(
            [position[r["group"]]],
            [gap],
            yerr=[[gap - r["clean_gap_low"]], [r["clean_gap_high"] - gap]],
            fmt="s",
            color="tab:orange",
            capsize=3,
        )
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_title("undamaged: clean gap", fontsize="medium")
    ax.set_ylabel(f"{compare.b} − {compare.a}: {metric_label(metric)}")


def _crossover_panel(ax: Any, rows: Sequence[dict[str, Any]], position: dict[str, float], model_b: str) -> None:
    """Each group's cross-over interval on the perturbation's grid, or why there is none, in words."""
    low_end, high_end = min(r["grid_low"] for r in rows), max(r["grid_high"] for r in rows)
    margin = 0.05 * (high_end - low_end or 1.0)
    for r in rows:
        x, low, high = position[r["group"]], r["ci_low"], r["ci_high"]
        words = _in_words(r, model_b)
        if words:
            ax.text(
                x,
                (low_end + high_end) / 2,
                words,
                rotation=90,
                ha="center",
                va="center",
                fontsize="small",
                color="dimgrey",
                backgroundcolor="white",
            )
            if words == "not identified":  # anywhere in the grid, or beyond it
                ax.plot([x, x], [low_end, high_end], color="grey", linestyle=":", linewidth=1.5)
            continue
        bottom, top = max(low, low_end), min(high, high_end)
        ax.plot([x, x], [bottom, top], color="black", linewidth=2, solid_capstyle="butt")
        for end, reached, marker in ((bottom, math.isinf(low), "v"), (top, math.isinf(high), "^")):
            ax.plot([x], [end], marker=marker if reached else "_", color="black", markersize=8, linestyle="none")
        if r["status"] == "crossing":
            ax.plot([x], [r["level"]], "o", color="tab:red", markersize=5)
    ax.set_ylim(low_end - margin, high_end + margin)


def _in_words(record: dict[str, Any], model_b: str) -> str:
    """What a cross-over panel says instead of an interval: no cross-over in the grid (A better at every
    level, or B), or not identified (the interval spans the grid)."""
    low, high = record["ci_low"], record["ci_high"]
    if low == high == math.inf:
        return f"none: {model_b} never better"
    if low == high == -math.inf:
        return f"none: {model_b} better throughout"
    if math.isinf(low) and math.isinf(high):
        return "not identified"
    return ""


def _log(
    study: Study, out: Path, project: str, tables: dict[str, list[dict[str, object]]], figures: dict[str, Path]
) -> str:
    from tracking.report_run import log_report, report_line

    def payload(wandb: Any) -> dict[str, Any]:
        logged: dict[str, Any] = {}
        for key, records in tables.items():
            columns = list(records[0]) if records else []
            logged[f"{key}/table"] = wandb.Table(columns=columns, data=[[r[c] for c in columns] for r in records])
        for key, path in figures.items():
            logged[key] = wandb.Image(str(path))
        return logged

    run = log_report(
        payload, project=project, name=f"{study.name}-report", save_dir=out, job_type="study-report", group=study.name
    )
    return f"{report_line(run)}, group {study.name}"
