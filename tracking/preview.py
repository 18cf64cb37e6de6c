"""What the dashboard's robustness-curve panels show, rendered from offline W&B runs (no network).

    python -m tracking.preview OUT.png RUN_DIR [RUN_DIR ...] [--stage test] [--metric bits_per_byte_en]

Reads every ``run-*.wandb`` under the run directories (``tracking.offline_run``), takes the history
rows ``tracking.panels`` logged — ``robustness/<stage>/<model>/<perturbation>/<metric>/{mean,ci_low,ci_high}``
against ``robustness/<stage>/<perturbation>/level`` — and draws one panel per perturbation the runs logged (in
the order of ``PERTURBATIONS``) with every run's models overlaid, as the W&B line plots do (here the 95% CI is
shaded; W&B draws its bounds as lines).
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from cognitive_reserve.perturbations import PERTURBATIONS
from cognitive_reserve.plots import LEVEL_LABELS, save_figure
from tracking.offline_run import OfflineRun, find_runs, read_run
from tracking.panels import curve_key, level_key


def run_curves(run: OfflineRun, stage: str, perturbation: str, metric: str) -> dict[str, list[tuple[float, ...]]]:
    """``{model: [(level, mean, ci_low, ci_high), ...]}`` of one panel, from a run's history rows; a level without
    an honest interval (no band logged, ``tracking.panels``) has NaN ends: no band there."""
    pattern = re.compile(rf"^robustness/{stage}/([^/]+)/{perturbation}/{metric}/mean$")
    models = [m.group(1) for key in sorted(run.logged_keys()) if (m := pattern.match(key))]
    x = level_key(stage, perturbation)
    found = {}
    for model in models:
        stats = [run.curve(curve_key(stage, model, perturbation, metric, s), x) for s in ("mean", "ci_low", "ci_high")]
        found[model] = [
            (level, stats[0][level], stats[1].get(level, math.nan), stats[2].get(level, math.nan))
            for level in sorted(stats[0])
        ]
    return found


def logged_perturbations(runs: Sequence[OfflineRun], stage: str) -> list[str]:
    """The perturbations whose curves of ``stage`` some run logged, in the order of ``PERTURBATIONS``."""
    keys = {key for run in runs for key in run.logged_keys()}
    return [p for p in PERTURBATIONS if level_key(stage, p) in keys]


def render(runs: Sequence[OfflineRun], out: Path, stage: str, metric: str) -> Path:
    """One panel per perturbation the runs logged; a line (and CI band) per model of every run."""
    perturbations = logged_perturbations(runs, stage)
    if not perturbations:
        raise SystemExit(f"error: --stage={stage}: the runs logged no robustness curve of this stage")
    fig = Figure(figsize=(4.2 * len(perturbations), 3.4), layout="constrained")
    axes = fig.subplots(1, len(perturbations), squeeze=False)[0]
    for ax, perturbation in zip(axes, perturbations, strict=True):
        for run in runs:
            for model, points in run_curves(run, stage, perturbation, metric).items():
                levels, means, lows, highs = zip(*points, strict=True)
                (line,) = ax.plot(levels, means, marker=".", label=model)
                ax.fill_between(levels, lows, highs, color=line.get_color(), alpha=0.2)
        ax.set_xlabel(f"robustness/{stage}/{perturbation}/level\n({LEVEL_LABELS[perturbation]})", fontsize="small")
        ax.set_ylabel(metric)
        ax.set_title(f"{stage}: {metric} under {perturbation.replace('_', ' ')}", fontsize="small")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="x-small")
    return save_figure(fig, out, "W&B robustness-curve panels, rendered from offline runs", dpi=100)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tracking.preview", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("runs", nargs="+", type=Path, help="directories holding offline W&B runs (searched)")
    parser.add_argument("--stage", default="test", help="sweep stage: fit or test (default test)")
    parser.add_argument("--metric", default="bits_per_byte_en", help="metric of the panels")
    args = parser.parse_args(argv)
    runs = [read_run(path) for directory in args.runs for path in find_runs(directory)]
    if not runs:
        raise SystemExit(f"error: runs={[str(r) for r in args.runs]}: no run-*.wandb file under them")
    print(f"wrote {render(runs, args.out, args.stage, args.metric)} from {len(runs)} runs")


if __name__ == "__main__":
    main()
