"""``report``: a study's points read back as one result.

Per group (the values of ``compare.group_by``; the other axes, e.g. seeds, are pooled as training
replicates): ``run_reports.compare`` on arm A's and arm B's sweep CSVs — the same function the command
runs, so the numbers are those of ``python -m run_reports.compare --a ... --b ...`` with the CSVs in the
study's point order (``report`` prints that command) — written to ``OUT/<group>/crossover.csv`` and
``compare_<metric>.png``; Table 1 of the group's points (``table1.md``/``.csv``) when they logged weight
norms. Then, over all groups, ``OUT/report.csv``: per group, perturbation and metric the cross-over level
and its interval, and the **clean-metric gap** B − A at the first level (mean over seeds, with a
percentile bootstrap interval over training seeds); with a scale axis ``OUT/scale_<metric>.png`` draws
both against it. Points with a robustness slope (linear models) add ``OUT/slopes.csv``/``.png`` (R(T) of
every point, ``run_reports.slope_comparison``). One W&B run in the study's group logs all of it.
"""

from __future__ import annotations

import csv
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from cognitive_reserve.crossover import CrossOver, percentile_interval
from cognitive_reserve.errors import ConfigError
from cognitive_reserve.io import read_sweep_csv, write_records
from cognitive_reserve.plots import LEVEL_LABELS, save_figure
from cognitive_reserve.sweep import SweepRow
from run_reports import compare as compare_command
from run_reports import slope_comparison
from studies.points import Point, axis_names, safe_name, study_points
from studies.spec import Comparison, Study

#: What the ``WeightNorms`` monitor writes in a run directory (``run_reports.table1`` reads it).
NORMS_FILE = Path("monitors") / "weight_norms.csv"
REPORT_COLUMNS = (
    "group", "x", "perturbation", "metric", "grid_low", "grid_high", "status", "level", "ci_low", "ci_high",
    "fraction_crossing",
    "n_seeds_a", "n_seeds_b", "clean_a", "clean_b", "clean_gap", "clean_gap_low", "clean_gap_high",
)  # fmt: skip


@dataclass(frozen=True)
class Group:
    """The points of one group: its labels on the ``group_by`` axes, where its outputs go, A's and B's CSVs."""

    name: str
    x: float | None
    directory: Path
    csvs_a: list[Path]
    csvs_b: list[Path]
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
        csvs: dict[str, list[Path]] = {compare.a: [], compare.b: []} if compare else {}
        missing = []
        for point in points:
            if point.arm in csvs:
                path = sweep_csv(point, study.sweep_glob)
                if path is None:
                    missing.append(point.label)
                else:
                    csvs[point.arm].append(path)
        x = points[0].level(compare.scale).x if compare and compare.scale else None
        a, b = (csvs[compare.a], csvs[compare.b]) if compare else ([], [])
        groups.append(Group(name, x, out / safe_name(name), a, b, points, missing))
    return groups


def load_side(paths: Sequence[Path], model: str | None, field: str) -> list[list[SweepRow]]:
    """One side's tables (one per training seed), restricted to ``model`` when given."""
    tables = []
    for path in paths:
        try:
            rows = read_sweep_csv(path)
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
    argv += ["--n-boot", str(compare.n_boot), "--confidence", str(compare.confidence), "--seed", str(compare.seed)]
    return shlex.join([*argv, "--out", str(group.directory)])


def clean_gap(
    tables_a: Sequence[Sequence[SweepRow]],
    tables_b: Sequence[Sequence[SweepRow]],
    result: CrossOver,
    compare: Comparison,
) -> tuple[float, float, float, float, float]:
    """Mean clean metric (first level) of A and of B over seeds, the gap B − A and its bootstrap interval over
    training seeds (a point when both sides have one seed)."""
    first = result.levels[0]

    cell = (result.perturbation, result.metric, first)

    def per_seed(tables: Sequence[Sequence[SweepRow]]) -> np.ndarray:
        return np.array([np.mean([r.value for r in t if (r.perturbation, r.metric, r.level) == cell]) for t in tables])

    a, b = per_seed(tables_a), per_seed(tables_b)
    rng = np.random.default_rng(compare.seed)
    draws = [
        b[rng.integers(0, len(b), len(b))].mean() - a[rng.integers(0, len(a), len(a))].mean()
        for _ in range(compare.n_boot)
    ]
    low, high = percentile_interval(np.array(draws), compare.confidence)
    return float(a.mean()), float(b.mean()), float(b.mean() - a.mean()), low, high


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
        side_a, side_b, group.directory, compare.metrics, compare.direction, compare.n_boot, compare.confidence,
        compare.seed,
    )  # fmt: skip
    say(f"{group.name}: the numbers of {by_hand_command(group, compare)}")
    records = []
    for result in results:
        clean = clean_gap(side_a, side_b, result, compare)
        records.append(_record(group, result, clean))
        say(f"  {result.describe()}")
        say(
            f"  {result.perturbation} / {result.metric}: clean {compare.b} − {compare.a} = {clean[2]:+.4g} "
            f"[{clean[3]:+.4g}, {clean[4]:+.4g}] (over {len(side_a)} + {len(side_b)} training seeds)"
        )
    for metric in dict.fromkeys(r.metric for r in results):
        figures[f"study/compare/{group.name}/{metric}"] = group.directory / f"compare_{metric}.png"
    return records


def _read_records(path: Path) -> list[dict[str, object]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def _record(group: Group, result: CrossOver, clean: tuple[float, float, float, float, float]) -> dict[str, Any]:
    fields = ("perturbation", "metric", "status", "level", "ci_low", "ci_high", "fraction_crossing")
    return {
        "group": group.name,
        "x": group.x,
        **{name: getattr(result, name) for name in fields},
        "grid_low": result.levels[0],
        "grid_high": result.levels[-1],
        "n_seeds_a": result.n_seeds_a,
        "n_seeds_b": result.n_seeds_b,
        **dict(zip(("clean_a", "clean_b", "clean_gap", "clean_gap_low", "clean_gap_high"), clean, strict=True)),
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
    """Per perturbation: the cross-over level (interval as error bar, open ends clipped to the grid) and the
    clean gap B − A (interval over training seeds) against the scale axis."""
    compare = study.compare
    assert compare is not None
    mine = [r for r in records if r["metric"] == metric]
    perturbations = list(dict.fromkeys(r["perturbation"] for r in mine))
    groups = list(dict.fromkeys(r["group"] for r in mine))
    numeric = all(r["x"] is not None for r in mine)
    position = {g: next(r["x"] for r in mine if r["group"] == g) if numeric else i for i, g in enumerate(groups)}
    fig = Figure(figsize=(4.2 * len(perturbations), 6.4), layout="constrained")
    axes = fig.subplots(2, len(perturbations), squeeze=False, sharex=True)
    for col, perturbation in enumerate(perturbations):
        rows = [r for r in mine if r["perturbation"] == perturbation]
        levels = (min(r["grid_low"] for r in rows), max(r["grid_high"] for r in rows))
        top, bottom = axes[0][col], axes[1][col]
        for r in rows:
            x = position[r["group"]]
            if r["status"] == "crossing":
                low, high = max(r["ci_low"], levels[0]), min(r["ci_high"], levels[1])
                top.errorbar(
                    [x], [r["level"]], yerr=[[r["level"] - low], [high - r["level"]]], fmt="o", color="black", capsize=3
                )
            else:
                edge = levels[1] if r["status"] == "none" else levels[0]
                marker = "^" if r["status"] == "none" else "v"
                top.plot([x], [edge], marker=marker, color="grey", linestyle="none")
            gap = r["clean_gap"]
            bottom.errorbar(
                [x], [gap], yerr=[[gap - r["clean_gap_low"]], [r["clean_gap_high"] - gap]], fmt="s", color="tab:orange",
                capsize=3,
            )  # fmt: skip
        top.set_title(perturbation.replace("_", " "))
        top.set_ylabel(f"cross-over ({LEVEL_LABELS.get(perturbation, perturbation)})")
        top.set_ylim(levels[0], levels[1] * 1.05 if levels[1] else 1)
        top.grid(alpha=0.3)
        bottom.axhline(0, color="black", linewidth=0.8)
        bottom.set_ylabel(f"clean {metric}: {compare.b} − {compare.a}")
        bottom.set_xlabel(compare.scale)
        bottom.grid(alpha=0.3)
        if numeric and min(position.values()) > 0 and max(position.values()) >= 4 * min(position.values()):
            bottom.set_xscale("log", base=2)
            bottom.set_xticks(list(position.values()), [str(g) for g in position])
        else:
            bottom.set_xticks(list(position.values()), groups)
    lines = [
        f"{study.name}: where {compare.b} overtakes {compare.a} ({metric})",
        f"▲ no cross-over in the grid, ▼ {compare.b} better from the first level; intervals: cross-over two-level "
        "bootstrap (seeds and trials), clean gap over seeds",
        *([study.caption] if study.caption else []),
    ]
    fig.suptitle("\n".join(lines), fontsize="medium")
    return save_figure(fig, path)


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
