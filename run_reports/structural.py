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

Writes ``<out>/structural_<metric>.csv`` and ``.md`` and prints the table. Files only (no W&B run). A table without
the pair's rows is an error: ``error: field=value: reason``, exit status 2.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from cognitive_reserve.errors import ConfigError
from cognitive_reserve.io import read_sweep_csv, write_records
from cognitive_reserve.rows import SweepRow
from cognitive_reserve.stats import mean_ci
from run_reports.command import one_line_errors
from run_reports.markdown import markdown_table

ENTRYWISE = "random_deletion"
PAIRS = ("head_deletion:attn", "neuron_deletion:mlp")
COLUMNS = (
    "structural", "group", "level", "n_seeds_a", "n_seeds_b",
    "loss_a", "loss_a_low", "loss_a_high", "loss_b", "loss_b_low", "loss_b_high",
    "entrywise_loss_a", "entrywise_loss_b",
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
            advantage = welch(at[("a", structural)], at[("b", structural)])
            entrywise = welch(at[("a", ENTRYWISE)], at[("b", ENTRYWISE)])
            difference = welch(contrast["a"], contrast["b"])
            records.append({
                "structural": structural, "group": group, "level": level,
                "n_seeds_a": len(side_a), "n_seeds_b": len(side_b),
                "loss_a": loss_a.mean, "loss_a_low": loss_a.low, "loss_a_high": loss_a.high,
                "loss_b": loss_b.mean, "loss_b_low": loss_b.low, "loss_b_high": loss_b.high,
                "entrywise_loss_a": float(np.mean(at[("a", ENTRYWISE)])),
                "entrywise_loss_b": float(np.mean(at[("b", ENTRYWISE)])),
                "advantage_b": advantage.mean, "advantage_b_low": advantage.low, "advantage_b_high": advantage.high,
                "entrywise_advantage_b": entrywise.mean, "entrywise_advantage_b_low": entrywise.low,
                "entrywise_advantage_b_high": entrywise.high,
                "difference": difference.mean, "difference_low": difference.low, "difference_high": difference.high,
            })  # fmt: skip
    return records


def markdown(records: Sequence[dict[str, object]], metric: str) -> list[str]:
    """The table for people: losses and advantages with their intervals."""

    def cell(record: dict[str, object], key: str) -> str:
        return str(Interval(record[key], record[f"{key}_low"], record[f"{key}_high"]))  # type: ignore[arg-type]

    header = [
        "structural (group)", "p", f"loss A ({metric})", "loss B", "advantage of B, structural",
        "advantage of B, random deletion", "structural − entry-wise advantage",
    ]  # fmt: skip
    body = [
        [f"{r['structural']} ({r['group']})", f"{r['level']:g}", cell(r, "loss_a"), cell(r, "loss_b"),
         cell(r, "advantage_b"), cell(r, "entrywise_advantage_b"), cell(r, "difference")]
        for r in records
    ]  # fmt: skip
    return markdown_table(header, body)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m run_reports.structural", description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", nargs="+", required=True, type=Path, help="model A's sweep CSVs, one per seed")
    parser.add_argument("--b", nargs="+", required=True, type=Path, help="model B's sweep CSVs, one per seed")
    parser.add_argument("--out", required=True, type=Path, help="directory of the table files")
    parser.add_argument("--metric", default="bits_per_byte_en", help="metric compared (default bits_per_byte_en)")
    parser.add_argument("--pair", action="append", help=f"structural:group (default: {' '.join(PAIRS)})")
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
    print(table)


if __name__ == "__main__":
    main()
