"""Structural against entry-wise damage of the same weights, model A against model B, over training seeds.

    python -m run_reports.structural --a MONO_s0.csv MONO_s1.csv ... --b BI_s0.csv ... --out DIR
        [--metric bits_per_byte_en] [--pair head_deletion:attn --pair neuron_deletion:mlp]

For each pair ``<structural perturbation>:<group>`` (the sweeps of ``configs/gpt2/tiny_structural.yaml``: head
deletion is compared with random deletion of the attention weights, group ``attn``; neuron deletion with random
deletion of the MLP weights, group ``mlp``) and each level p, from the rows of that group:

- the **loss** of a seed: its mean over trials at p minus its value at level 0 (the undamaged model), for the
  structural perturbation and for ``random_deletion`` at the same p (the same fraction of the same weights);
- per model, the mean loss over its seeds with a Student-t 95% interval over seeds (S − 1 degrees of freedom):
  it covers training seeds (each seed's trial mean stands for the seed);
- the **advantage** of B: A's mean loss − B's (> 0: B loses less), with a Welch interval whose degrees of freedom
  are min(S_A, S_B) − 1 (conservative);
- the **structural − entry-wise** difference of the advantage, from each seed's own contrast (structural loss −
  entry-wise loss: both measured on that seed), same interval: > 0 when B's advantage is larger under structural
  damage than under entry-wise damage of the same fraction.

Writes ``<out>/structural_<metric>.csv``, ``.md`` (printed too) and ``.png`` (the losses against p, one panel per
pair). Files only (no W&B run). A table without
the pair's rows is an error: ``error: field=value: reason``, exit status 2.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from scipy import stats

from cognitive_reserve.errors import ConfigError
from cognitive_reserve.io import read_sweep_csv, write_records
from cognitive_reserve.plots import LEVEL_LABELS, draw_mean_ci, metric_label, save_figure
from cognitive_reserve.rows import SweepRow
from cognitive_reserve.stats import mean_ci
from run_reports.command import one_line_errors
from run_reports.markdown import markdown_table

ENTRYWISE = "random_deletion"
PAIRS = ("head_deletion:attn", "neuron_deletion:mlp")
COLUMNS = (
    "structural", "group", "level", "n_seeds_a", "n_seeds_b",
    "loss_a", "loss_a_low", "loss_a_high", "loss_b", "loss_b_low", "loss_b_high",
    "entrywise_loss_a", "entrywise_loss_a_low", "entrywise_loss_a_high",
    "entrywise_loss_b", "entrywise_loss_b_low", "entrywise_loss_b_high",
    "advantage_b", "advantage_b_low", "advantage_b_high",
    "entrywise_advantage_b", "entrywise_advantage_b_low", "entrywise_advantage_b_high",
    "difference", "difference_low", "difference_high",
)  # fmt: skip


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.mean:+.4f} [{self.low:+.4f}, {self.high:+.4f}]"


def seed_losses(rows: Sequence[SweepRow], perturbation: str, group: str, metric: str) -> dict[float, float]:
    """``{level: mean over trials − value at level 0}`` of one seed's table (one model)."""
    values: dict[float, list[float]] = {}
    for row in rows:
        if row.perturbation == perturbation and row.group == group and row.metric == metric:
            values.setdefault(row.level, []).append(row.value)
    if 0.0 not in values:
        raise ConfigError("--pair", f"{perturbation}:{group}", f"a table has no rows of it at level 0 ({metric})")
    clean = float(np.mean(values[0.0]))
    return {level: float(np.mean(v)) - clean for level, v in sorted(values.items()) if level != 0.0}


def over_seeds(values: Sequence[float]) -> Interval:
    """Mean over seeds and its Student-t 95% interval (S − 1 degrees of freedom)."""
    mean, _, low, high = mean_ci(values)
    return Interval(mean, low, high)


def welch(a: Sequence[float], b: Sequence[float]) -> Interval:
    """mean(a) − mean(b) with a 95% interval: Welch's standard error, min(len) − 1 degrees of freedom."""
    difference = float(np.mean(a) - np.mean(b))
    if min(len(a), len(b)) < 2:
        return Interval(difference, math.nan, math.nan)
    error = math.sqrt(np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b))
    half = float(stats.t.ppf(0.975, df=min(len(a), len(b)) - 1)) * error
    return Interval(difference, difference - half, difference + half)


def structural_table(
    side_a: Sequence[Sequence[SweepRow]], side_b: Sequence[Sequence[SweepRow]], metric: str, pairs: Sequence[str]
) -> list[dict[str, object]]:
    """One record per (pair, level) with the columns ``COLUMNS``."""
    records = []
    for pair in pairs:
        structural, _, group = pair.partition(":")
        losses = {
            (side, name): [seed_losses(rows, name, group, metric) for rows in tables]
            for side, tables in (("a", side_a), ("b", side_b))
            for name in (structural, ENTRYWISE)
        }
        levels = sorted(set.intersection(*(set(seed) for runs in losses.values() for seed in runs)))
        if not levels:
            reason = f"no damaging level shared by {structural} and {ENTRYWISE} in group {group}"
            raise ConfigError("--pair", pair, reason)
        for level in levels:
            at = {key: [seed[level] for seed in runs] for key, runs in losses.items()}
            contrast = {
                side: [s - e for s, e in zip(at[(side, structural)], at[(side, ENTRYWISE)], strict=True)]
                for side in "ab"
            }
            loss_a, loss_b = over_seeds(at[("a", structural)]), over_seeds(at[("b", structural)])
            entry_a, entry_b = over_seeds(at[("a", ENTRYWISE)]), over_seeds(at[("b", ENTRYWISE)])
            advantage = welch(at[("a", structural)], at[("b", structural)])
            entrywise = welch(at[("a", ENTRYWISE)], at[("b", ENTRYWISE)])
            difference = welch(contrast["a"], contrast["b"])
            records.append(
                {
                    "structural": structural,
                    "group": group,
                    "level": level,
                    "n_seeds_a": len(side_a),
                    "n_seeds_b": len(side_b),
                    "loss_a": loss_a.mean,
                    "loss_a_low": loss_a.low,
                    "loss_a_high": loss_a.high,
                    "loss_b": loss_b.mean,
                    "loss_b_low": loss_b.low,
                    "loss_b_high": loss_b.high,
                    "entrywise_loss_a": entry_a.mean,
                    "entrywise_loss_a_low": entry_a.low,
                    "entrywise_loss_a_high": entry_a.high,
                    "entrywise_loss_b": entry_b.mean,
                    "entrywise_loss_b_low": entry_b.low,
                    "entrywise_loss_b_high": entry_b.high,
                    "advantage_b": advantage.mean,
                    "advantage_b_low": advantage.low,
                    "advantage_b_high": advantage.high,
                    "entrywise_advantage_b": entrywise.mean,
                    "entrywise_advantage_b_low": entrywise.low,
                    "entrywise_advantage_b_high": entrywise.high,
                    "difference": difference.mean,
                    "difference_low": difference.low,
                    "difference_high": difference.high,
                }
            )
    return records


def markdown(records: Sequence[dict[str, object]], metric: str) -> list[str]:
    """The table for people: losses and advantages with their intervals."""

    def cell(record: dict[str, object], key: str) -> str:
        return str(Interval(record[key], record[f"{key}_low"], record[f"{key}_high"]))  # type: ignore[arg-type]

    header = [
        "structural (group)",
        "p",
        f"loss A ({metric})",
        "loss B",
        "advantage of B, structural",
        "advantage of B, random deletion",
        "structural − entry-wise advantage",
    ]
    body = [
        [
            f"{r['structural']} ({r['group']})",
            f"{r['level']:g}",
            cell(r, "loss_a"),
            cell(r, "loss_b"),
            cell(r, "advantage_b"),
            cell(r, "entrywise_advantage_b"),
            cell(r, "difference"),
        ]
        for r in records
    ]
    return markdown_table(header, body)


def structural_figure(records: Sequence[dict[str, object]], metric: str, names: tuple[str, str]) -> Figure:
    """One panel per pair: each model's loss against p under the structural perturbation (solid) and under random
    deletion of the same weights (dashed), with the Student-t 95% band over seeds."""
    pairs = list(dict.fromkeys((str(r["structural"]), str(r["group"])) for r in records))
    fig = Figure(figsize=(4.6 * len(pairs), 3.8), layout="constrained")
    for ax, (structural, group) in zip(fig.subplots(1, len(pairs), squeeze=False)[0], pairs, strict=True):
        rows = [r for r in records if (r["structural"], r["group"]) == (structural, group)]
        for side, (name, color) in zip("ab", zip(names, ("C0", "C1"), strict=True), strict=True):
            for prefix, style, what in (("", "-", structural), ("entrywise_", "--", f"{ENTRYWISE} ({group})")):
                key = f"{prefix}loss_{side}"
                points = [_Point(r["level"], r[key], r[f"{key}_low"], r[f"{key}_high"]) for r in rows]
                draw_mean_ci(ax, points, color=color, label=f"{name}: {what}")
                ax.lines[-1].set_linestyle(style)
        ax.set_xlabel(f"{LEVEL_LABELS.get(structural, structural)}\n(dashed: that fraction of the weights, at random)")
        ax.set_ylabel(f"{metric_label(metric)}: damaged − undamaged")
        ax.set_title(f"{structural.replace('_', ' ')} vs random deletion, group {group}", fontsize="medium")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    fig.suptitle("Loss over training seeds: mean and 95% Student-t interval (S − 1 df)")
    return fig


@dataclass(frozen=True)
class _Point:
    level: float
    mean: float
    ci_low: float
    ci_high: float


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m run_reports.structural", description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", nargs="+", required=True, type=Path, help="model A's sweep CSVs, one per seed")
    parser.add_argument("--b", nargs="+", required=True, type=Path, help="model B's sweep CSVs, one per seed")
    parser.add_argument("--out", required=True, type=Path, help="directory of the table files")
    parser.add_argument("--metric", default="bits_per_byte_en", help="metric compared (default bits_per_byte_en)")
    parser.add_argument("--pair", action="append", help=f"structural:group (default: {' '.join(PAIRS)})")
    parser.add_argument("--names", nargs=2, default=("A", "B"), metavar=("A", "B"), help="the models in the figure")
    args = parser.parse_args(argv)
    with one_line_errors():
        for path in [*args.a, *args.b]:
            if not path.is_file():
                raise ConfigError("--a/--b", str(path), "no such sweep CSV")
        side_a = [read_sweep_csv(path) for path in args.a]
        side_b = [read_sweep_csv(path) for path in args.b]
        records = structural_table(side_a, side_b, args.metric, args.pair or PAIRS)
    args.out.mkdir(parents=True, exist_ok=True)
    write_records(args.out / f"structural_{args.metric}.csv", COLUMNS, records)
    table = "\n".join(markdown(records, args.metric))
    (args.out / f"structural_{args.metric}.md").write_text(table + "\n", encoding="utf-8")
    save_figure(structural_figure(records, args.metric, tuple(args.names)), args.out / f"structural_{args.metric}.png")
    print(table)


if __name__ == "__main__":
    main()
