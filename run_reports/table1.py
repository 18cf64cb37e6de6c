"""The paper's Table 1: Σw² of the attention weights per block and in total, runs side by side.

    python -m run_reports.table1 runs/gpt2/tiny_monolingual runs/gpt2/tiny_bilingual --out reports/table1
    python -m run_reports.table1 --label mono=runs/glue/sst2-mono --label bi=runs/glue/sst2-bi --step 800 --out ...

Reads ``<run>/monitors/weight_norms.csv`` (written by the ``WeightNorms`` callback during ``fit``; a
path to the CSV itself works too) of any set of runs — GPT-2 language models, GLUE fine-tunes —
and takes each run's ``sum_sq`` rows at its last logged step (the end of training) or at ``--step``.
A positional run is labelled by its directory name, ``--label NAME=DIR`` names it. Writes
``table1.md`` (rows = blocks then ``total``, one column per run, plus ``<2nd>/<1st>`` when there are
two runs), ``table1.csv`` (``run, run_dir, step, epoch, layer, sum_sq``: one row per run and layer)
and logs both to a W&B run (offline by itself without credentials). Bad input prints
``error: field=value: reason`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cognitive_reserve.errors import ConfigError
from cognitive_reserve.history import HistoryCsv
from cognitive_reserve.io import write_records
from run_reports.command import add_wandb_options, one_line_errors
from run_reports.markdown import markdown_table
from tracking.report_run import log_report, report_line
from tracking.wandb import WandbRunDir

NORMS_FILE = Path("monitors") / "weight_norms.csv"
QUANTITY = "sum_sq"
TOTAL = "total"
CSV_COLUMNS = ("run", "run_dir", "step", "epoch", "layer", QUANTITY)


@dataclass(frozen=True)
class RunNorms:
    """One column of the table: the Σw² of each layer of one run at one step."""

    label: str
    run_dir: Path
    step: int
    epoch: int
    sum_sq: dict[str, float]


def read_run_norms(label: str, run: str | Path, step: int | None = None) -> RunNorms:
    """Σw² per layer of ``run`` at ``step`` (default: the last logged step)."""
    run = Path(run)
    path = run if run.is_file() else run / NORMS_FILE
    if not path.is_file():
        raise ConfigError("run", str(run), f"has no {NORMS_FILE} (trained with the WeightNorms callback?)")
    try:
        rows = [row for row in HistoryCsv(path).read() if row.quantity == QUANTITY]
    except (KeyError, ValueError) as err:
        raise ConfigError("run", str(path), f"not a monitor history CSV ({err})") from None
    if not rows:
        raise ConfigError("run", str(path), f"has no {QUANTITY} rows")
    steps = sorted({row.step for row in rows})
    chosen = steps[-1] if step is None else step
    if chosen not in steps:
        nearest = sorted(steps, key=lambda s: (abs(s - chosen), s))[:2]
        raise ConfigError(
            "step", step, f"run {label!r} has no weight norms at this step (nearest logged: {sorted(nearest)})"
        )
    at_step = [row for row in rows if row.step == chosen]
    values = {row.name: row.value for row in at_step}
    return RunNorms(
        label, path.parent.parent if path.name == NORMS_FILE.name else run, chosen, at_step[-1].epoch, values
    )


def layers(runs: Sequence[RunNorms]) -> list[str]:
    """Every run's layers in natural order (``h.2`` before ``h.10``), ``total`` last."""
    names = {name for run in runs for name in run.sum_sq if name != TOTAL}
    ordered = sorted(names, key=lambda name: [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)])
    return [*ordered, TOTAL]


def table_records(runs: Sequence[RunNorms]) -> list[dict[str, object]]:
    """Rows of ``table1.csv`` (and of the W&B table): one per run and layer it has."""
    return [
        {
            "run": run.label,
            "run_dir": str(run.run_dir),
            "step": run.step,
            "epoch": run.epoch,
            "layer": layer,
            QUANTITY: run.sum_sq[layer],
        }
        for run in runs
        for layer in layers(runs)
        if layer in run.sum_sq
    ]


def table_markdown(runs: Sequence[RunNorms]) -> str:
    """Caption, then rows = layers, columns = runs (and the ratio of the second to the first of two)."""
    steps = ", ".join(f"{run.label} step {run.step} (epoch {run.epoch})" for run in runs)
    caption = f"**Sum of squared attention weights (Σw²) per block and in total** — {steps}."
    header = ["layer", *(run.label for run in runs)]
    ratio = len(runs) == 2
    if ratio:
        header.append(f"{runs[1].label} / {runs[0].label}")
    rows = []
    for layer in layers(runs):
        values = [run.sum_sq.get(layer) for run in runs]
        cells = [layer, *("–" if v is None else f"{v:.3f}" for v in values)]
        if ratio:
            cells.append("–" if None in values or values[0] == 0 else f"{values[1] / values[0]:.3f}")
        rows.append(cells)
    return "\n".join([caption, "", *markdown_table(header, rows)]) + "\n"


def write_table(runs: Sequence[RunNorms], out: str | Path) -> dict[str, Path]:
    """``table1.md`` and ``table1.csv`` under ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    markdown = out / "table1.md"
    markdown.write_text(table_markdown(runs), encoding="utf-8")
    return {"markdown": markdown, "csv": write_records(out / "table1.csv", CSV_COLUMNS, table_records(runs))}


def log_to_wandb(runs: Sequence[RunNorms], project: str, name: str | None, save_dir: Path) -> WandbRunDir:
    """Log the table (``table1/table``, the CSV's rows) and its Markdown to a new W&B run; returns where it is."""

    def payload(wandb: Any) -> dict[str, object]:
        records = table_records(runs)
        return {
            "table1/table": wandb.Table(columns=list(CSV_COLUMNS), data=[[r[c] for c in CSV_COLUMNS] for r in records]),
            "table1/markdown": wandb.Html(f"<pre>{table_markdown(runs)}</pre>"),
        }

    return log_report(payload, project=project, name=name, save_dir=save_dir, job_type="table1")


def parse_runs(positional: Sequence[str], labelled: Sequence[str]) -> list[tuple[str, str]]:
    """``(label, run)`` pairs: positional runs named after their directory, ``NAME=DIR`` as given."""
    pairs = [(_run_dir(Path(run)).name, run) for run in positional]
    for item in labelled:
        label, sep, run = item.partition("=")
        if not sep or not label or not run:
            raise ConfigError("label", item, "expected NAME=DIR")
        pairs.append((label, run))
    if not pairs:
        raise ConfigError("runs", [], "give at least one run directory (RUN_DIR or --label NAME=DIR)")
    labels = [label for label, _ in pairs]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise ConfigError("label", twice[0], "names two runs: set distinct names with --label NAME=DIR")
    return pairs


def main(argv: list[str] | None = None) -> None:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m run_reports.table1", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="*", metavar="RUN_DIR", help="run directories (trainer.default_root_dir)")
    parser.add_argument("--label", action="append", default=[], metavar="NAME=DIR", help="a named run (repeatable)")
    parser.add_argument("--step", type=int, help="global step to read (default: each run's last logged step)")
    parser.add_argument("--out", default="reports/table1", help="output directory (default: reports/table1)")
    add_wandb_options(parser, "table1")
    args = parser.parse_args(argv)
    with one_line_errors():
        if args.step is not None and args.step < 0:
            raise ConfigError("step", args.step, "must be >= 0")
        runs = [read_run_norms(label, run, args.step) for label, run in parse_runs(args.runs, args.label)]
    files = write_table(runs, args.out)
    print(table_markdown(runs))
    print("\n".join(f"wrote {path}" for path in files.values()))
    if not args.no_wandb:
        print(report_line(log_to_wandb(runs, args.wandb_project, args.wandb_name, Path(args.out))))


def _run_dir(run: Path) -> Path:
    """The run directory of ``run`` (a run directory, or its ``monitors/weight_norms.csv``)."""
    return run.parent.parent if run.is_file() else run


if __name__ == "__main__":
    main()
