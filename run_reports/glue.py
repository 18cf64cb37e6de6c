"""The paper's Table 2 and Figure 6 from the sweep CSVs of several GLUE tasks × {mono, bi}.

    python -m run_reports.glue runs/glue/*/robustness/sweep_test_epoch???.csv --out reports/glue

Every CSV row's ``model`` is ``<name>-<pretraining>-<task>`` (``GPT2GlueClassifier`` names its
sweeps ``gpt2-mono-sst2``, ``gpt2-bi-sst2``, ...). For each perturbation in the CSVs it writes a
table — rows = level, columns = task × pretraining, cells = mean [95% CI] over the trials of the
task's metric (Matthews correlation for CoLA, accuracy elsewhere; the bootstrap-t of
``cognitive_reserve.intervals``, clipped to the metric's range; a cell without one says why) — as
``glue_<perturbation>.md`` and ``.csv`` (mean, ci_low, ci_high, n per column), plus
``glue_figure.png`` (one panel per perturbation × task, one curve per pretraining with its CI
band), and logs tables and figure to a W&B run (offline by itself without credentials).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from cognitive_reserve.errors import ConfigError
from cognitive_reserve.io import read_sweep_csv, write_records
from cognitive_reserve.perturbations import describe
from cognitive_reserve.plots import LEVEL_LABELS, draw_mean_ci, interval_handles, save_figure, trial_band_label
from cognitive_reserve.rows import all_targets
from cognitive_reserve.stats import LevelSummary, summarize
from cognitive_reserve.sweep import SweepRow
from datamodules.glue_tasks import GLUE_TASKS, GlueTask
from run_reports.command import add_wandb_options, one_line_errors
from run_reports.markdown import markdown_table
from tracking.report_run import log_report, report_line
from tracking.wandb import WandbRunDir

#: Perturbations in the paper's order; any other comes after them.
PERTURBATION_ORDER = ("random_deletion", "gaussian_noise", "magnitude_pruning")
#: What the GLUE sweeps damage, in the perturbations' report titles (``cognitive_reserve.perturbations.describe``).
TARGETS = "the attention weights"
METRIC_NAMES = {"mcc": "Matthews correlation", "accuracy": "accuracy", "f1": "F1"}


@dataclass(frozen=True)
class GlueColumn:
    """One column of the table: a fine-tuned model (``task`` × ``pretraining``)."""

    model: str
    task: GlueTask
    pretraining: str
    num_tasks: int | None

    @property
    def header(self) -> str:
        return f"{self.task.display_name} {self.pretraining}"

    @property
    def key(self) -> str:
        return f"{self.task.name}_{self.pretraining}_{self.task.main_metric}"


@dataclass(frozen=True)
class GlueTable:
    """One perturbation: ``cells[(level, model)]`` summarises the trials of that model at that level."""

    perturbation: str
    levels: list[float]
    columns: list[GlueColumn]
    cells: dict[tuple[float, str], LevelSummary]

    def csv_header(self) -> list[str]:
        return ["level"] + [f"{c.key}_{stat}" for c in self.columns for stat in ("mean", "ci_low", "ci_high", "n")]

    def csv_rows(self) -> list[list[float | int | None]]:
        """Numbers of the CSV (and W&B table): one row per level, ``None`` where a model lacks the level."""
        rows = []
        for level in self.levels:
            row: list[float | int | None] = [level]
            for column in self.columns:
                cell = self.cells.get((level, column.model))
                row += [cell.mean, cell.ci_low, cell.ci_high, cell.n] if cell else [None] * 4
            rows.append(row)
        return rows


def parse_model_name(name: str) -> tuple[str, GlueTask]:
    """``(pretraining, task)`` of a model named ``<name>-<pretraining>-<task>``."""
    parts = name.rsplit("-", 2)
    if len(parts) != 3 or not parts[1] or parts[2] not in GLUE_TASKS:
        raise ConfigError(
            "model", name, f"is not named <name>-<pretraining>-<task> with a GLUE task ({', '.join(GLUE_TASKS)})"
        )
    return parts[1], GLUE_TASKS[parts[2]]


def read_glue_sweeps(paths: Sequence[str | Path]) -> list[SweepRow]:
    """Rows of every CSV; a (model, perturbation, level, trial, metric) met twice is an error."""
    seen: dict[tuple, str] = {}
    rows: list[SweepRow] = []
    for path in paths:
        if not Path(path).is_file():
            raise ConfigError("csv", str(path), "no such file")
        try:
            file_rows = all_targets(read_sweep_csv(path))
        except (ValueError, KeyError) as err:
            raise ConfigError("csv", str(path), str(err).splitlines()[0]) from None
        for row in file_rows:
            try:
                parse_model_name(row.model)
            except ConfigError as err:
                raise ConfigError("csv", str(path), f"model {row.model!r} {err.reason}") from None
            key = (row.model, row.perturbation, row.level, row.trial, row.metric)
            if key in seen:
                raise ConfigError(
                    "csv",
                    str(path),
                    f"repeats {row.model} {row.perturbation} level {row.level:g} trial {row.trial} already read "
                    f"from {seen[key]}: give each run's sweep once",
                )
            seen[key] = str(path)
            rows.append(row)
    if not rows:
        raise ConfigError("csv", [str(p) for p in paths], "no sweep rows")
    return rows


def build_tables(rows: Iterable[SweepRow]) -> list[GlueTable]:
    """One table per perturbation with each model's main metric (MCC for CoLA, accuracy elsewhere)."""
    summaries = summarize(rows)
    wanted = [s for s in summaries if s.metric == parse_model_name(s.model)[1].main_metric]
    columns: dict[str, GlueColumn] = {}
    for s in wanted:
        pretraining, task = parse_model_name(s.model)
        columns.setdefault(s.model, GlueColumn(s.model, task, pretraining, s.num_tasks))
    missing = sorted({s.model for s in summaries} - set(columns))
    if missing:
        raise ConfigError(
            "csv", missing, "these models have no rows of their task's metric (mcc for CoLA, else accuracy)"
        )
    order = list(GLUE_TASKS)
    ordered = sorted(
        columns.values(), key=lambda c: (order.index(c.task.name), c.num_tasks or 0, c.pretraining, c.model)
    )
    perturbations = sorted(
        {s.perturbation for s in wanted},
        key=lambda p: (PERTURBATION_ORDER.index(p) if p in PERTURBATION_ORDER else len(PERTURBATION_ORDER), p),
    )
    tables = []
    for perturbation in perturbations:
        cells = {(s.level, s.model): s for s in wanted if s.perturbation == perturbation}
        present = {model for _, model in cells}
        tables.append(
            GlueTable(
                perturbation=perturbation,
                levels=sorted({level for level, _ in cells}),
                columns=[c for c in ordered if c.model in present],
                cells=cells,
            )
        )
    return tables


def table_markdown(table: GlueTable) -> str:
    """The table in Markdown: a caption line, then rows = level, columns = task × pretraining."""
    metrics = sorted({c.task.main_metric for c in table.columns}, key=list(METRIC_NAMES).index)
    by_metric = "; ".join(
        f"{METRIC_NAMES[m]}: {', '.join(t.display_name for t in _unique_tasks(table.columns, m))}" for m in metrics
    )
    trials = sorted({cell.n for cell in table.cells.values()})
    counted = f"{trials[-1]} trials per level"
    if len(trials) > 1:
        counted += f" ({trials[0]} where it is deterministic)"
    caption = (
        f"**{describe(table.perturbation, TARGETS)}.** Mean [95% CI over the trials: bootstrap-t, "
        f"clipped to the metric's range; none below 10 trials, nor where too few trials see a rarely damaged unit] "
        f"over {counted}; {by_metric}."
    )
    header = ["level"] + [c.header for c in table.columns]
    rows = [
        [format_level(level), *(_format_cell(table.cells.get((level, c.model))) for c in table.columns)]
        for level in table.levels
    ]
    return "\n".join([caption, "", *markdown_table(header, rows)]) + "\n"


def write_table_csv(table: GlueTable, path: str | Path) -> Path:
    header = table.csv_header()
    return write_records(path, header, (dict(zip(header, row, strict=True)) for row in table.csv_rows()))


def plot_panels(tables: Sequence[GlueTable], path: str | Path) -> Path:
    """Figure 6 style: rows = perturbations, columns = tasks, one curve (with CI band) per pretraining."""
    tasks = sorted({c.task.name for t in tables for c in t.columns}, key=list(GLUE_TASKS).index)
    pretrainings = list(dict.fromkeys(c.pretraining for t in tables for c in t.columns))
    colors = {p: f"C{i}" for i, p in enumerate(pretrainings)}
    fig = Figure(figsize=(max(3.4 * len(tasks), 6.4), 2.9 * len(tables) + 0.9), layout="constrained")
    axes = fig.subplots(len(tables), len(tasks), squeeze=False)
    for row, table in enumerate(tables):
        for col, task in enumerate(tasks):
            ax = axes[row][col]
            for column in (c for c in table.columns if c.task.name == task):
                points = [table.cells[(lv, column.model)] for lv in table.levels if (lv, column.model) in table.cells]
                draw_mean_ci(ax, points, color=colors[column.pretraining], label=f"pretraining: {column.pretraining}")
            ax.set_title(f"{GLUE_TASKS[task].display_name} · {table.perturbation.replace('_', ' ')}")
            ax.set_xlabel(LEVEL_LABELS.get(table.perturbation, table.perturbation))
            ax.set_ylabel(METRIC_NAMES[GLUE_TASKS[task].main_metric])
            ax.grid(alpha=0.3)
    handles, _ = axes[0][0].get_legend_handles_labels()
    cells = [cell for table in tables for cell in table.cells.values()]
    handles += interval_handles(cells, trial_band_label(cells))
    fig.legend(handles=handles, loc="outside lower center", ncols=1, fontsize="small")
    return save_figure(fig, path, "GLUE under damage to the attention weights: mono- vs bilingual pretraining")


def write_report(tables: Sequence[GlueTable], out: str | Path) -> dict[str, Path]:
    """``glue_<perturbation>.{md,csv}`` per table and ``glue_figure.png`` under ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for table in tables:
        markdown = out / f"glue_{table.perturbation}.md"
        markdown.write_text(table_markdown(table), encoding="utf-8")
        files[f"{table.perturbation}.md"] = markdown
        files[f"{table.perturbation}.csv"] = write_table_csv(table, out / f"glue_{table.perturbation}.csv")
    files["figure"] = plot_panels(tables, out / "glue_figure.png")
    return files


def log_to_wandb(
    tables: Sequence[GlueTable], figure: Path, project: str, name: str | None, save_dir: Path
) -> WandbRunDir:
    """Log each table (``glue/<perturbation>/table``, plus its Markdown) and the figure to a new W&B run.

    Without W&B credentials the run is offline (``wandb sync`` uploads it later). Returns where the run is.
    """

    def payload(wandb: Any) -> dict[str, object]:
        logged: dict[str, object] = {"glue/figure": wandb.Image(str(figure))}
        for table in tables:
            logged[f"glue/{table.perturbation}/table"] = wandb.Table(columns=table.csv_header(), data=table.csv_rows())
            logged[f"glue/{table.perturbation}/markdown"] = wandb.Html(f"<pre>{table_markdown(table)}</pre>")
        return logged

    return log_report(payload, project=project, name=name, save_dir=save_dir, job_type="glue-report")


def format_level(level: float) -> str:
    return f"{level:.2f}" if round(level, 2) == level else f"{level:g}"


def _format_cell(cell: LevelSummary | None) -> str:
    if cell is None:
        return "–"
    if not math.isfinite(cell.mean):
        return f"{cell.mean} ({cell.n_nonfinite} non-finite)"
    if math.isnan(cell.ci_low):
        return f"{cell.mean:.3f} (no 95% CI: {cell.flag}, {cell.n} trials)"
    return f"{cell.mean:.3f} [{cell.ci_low:.3f}, {cell.ci_high:.3f}]"


def _unique_tasks(columns: Sequence[GlueColumn], metric: str) -> list[GlueTask]:
    return list({c.task.name: c.task for c in columns if c.task.main_metric == metric}.values())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", nargs="+", help="sweep CSVs (robustness/sweep_<stage>_epoch<E>.csv), each run once")
    parser.add_argument("--out", default="reports/glue", help="output directory (default: reports/glue)")
    add_wandb_options(parser, "glue-table2")
    args = parser.parse_args(argv)
    with one_line_errors():
        tables = build_tables(read_glue_sweeps(args.csv))
    files = write_report(tables, args.out)
    for table in tables:
        print(table_markdown(table))
    print("\n".join(f"wrote {path}" for path in files.values()))
    if not args.no_wandb:
        run_dir = log_to_wandb(tables, files["figure"], args.wandb_project, args.wandb_name, Path(args.out))
        print(report_line(run_dir))


if __name__ == "__main__":
    main()
