"""``run_reports.structural``: losses per seed, intervals over training seeds, B's advantage under structural and
entry-wise damage of the same weights, checked against hand-computed statistics; bad input in one line."""

from __future__ import annotations

import csv
import dataclasses
import math

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from scipy import stats

from cognitive_reserve import SweepCsvWriter
from cognitive_reserve.rows import SweepRow
from run_reports.structural import PAIRS, main, structural_figure, structural_table

METRIC = "bits_per_byte_en"


def table(clean: float, head: float, random: float, structural="head_deletion", group="attn") -> list[SweepRow]:
    """One seed: level 0 at ``clean``; at p = 0.5 two trials around ``clean + head`` and ``clean + random``."""
    rows = []
    for perturbation, loss in ((structural, head), ("random_deletion", random)):
        rows.append(SweepRow("m", 1, perturbation, 0.0, 0, 1, METRIC, clean, group=group))
        for trial, wobble in enumerate((-0.01, 0.01)):
            rows.append(
                SweepRow("m", 1, perturbation, 0.5, trial, 2 + trial, METRIC, clean + loss + wobble, group=group)
            )
    return rows


def written(tmp_path, name: str, rows: list[SweepRow]) -> str:
    path = tmp_path / f"{name}.csv"
    with SweepCsvWriter(path) as writer:
        writer.write(rows)
    return str(path)


def test_advantages_and_their_intervals_follow_the_stated_computation(tmp_path, capsys):
    a = [(1.0, 0.30, 0.10), (1.1, 0.36, 0.12), (0.9, 0.33, 0.08)]  # (clean, head loss, random loss) per seed
    b = [(1.2, 0.20, 0.09), (1.3, 0.22, 0.11)]
    paths_a = [written(tmp_path, f"a{i}", table(*seed)) for i, seed in enumerate(a)]
    paths_b = [written(tmp_path, f"b{i}", table(*seed)) for i, seed in enumerate(b)]
    main(["--a", *paths_a, "--b", *paths_b, "--out", str(tmp_path / "out"), "--pair", "head_deletion:attn"])
    (record,) = csv.DictReader((tmp_path / "out" / f"structural_{METRIC}.csv").open())
    head_a, head_b = [s[1] for s in a], [s[1] for s in b]
    assert math.isclose(float(record["loss_a"]), np.mean(head_a))
    half_a = stats.t.ppf(0.975, 2) * np.std(head_a, ddof=1) / math.sqrt(3)
    assert math.isclose(float(record["loss_a_high"]), np.mean(head_a) + half_a)
    advantage = np.mean(head_a) - np.mean(head_b)
    error = math.sqrt(np.var(head_a, ddof=1) / 3 + np.var(head_b, ddof=1) / 2)
    assert math.isclose(float(record["advantage_b"]), advantage)
    assert math.isclose(float(record["advantage_b_low"]), advantage - stats.t.ppf(0.975, 1) * error)
    contrast_a, contrast_b = [s[1] - s[2] for s in a], [s[1] - s[2] for s in b]
    assert math.isclose(float(record["difference"]), np.mean(contrast_a) - np.mean(contrast_b))
    assert "head_deletion (attn)" in capsys.readouterr().out
    assert (tmp_path / "out" / f"structural_{METRIC}.png").read_bytes()[:4] == b"\x89PNG"


def test_a_pair_without_rows_is_a_one_line_error(tmp_path, capsys):
    path = written(tmp_path, "a", table(1.0, 0.3, 0.1))
    with pytest.raises(SystemExit) as exit_:
        main(["--a", path, "--b", path, "--out", str(tmp_path / "out"), "--pair", "neuron_deletion:mlp"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith("error: --pair='neuron_deletion:mlp': a table has no rows of it")


def test_the_figure_labels_of_both_panels_fit_side_by_side():
    """Each x label stays inside its own panel's half of the figure (a one-line label ran into the next panel)."""
    seeds = [(1.0 + i / 10, 0.3 + i / 50, 0.1) for i in range(3)]
    side = [table(*s) + table(*s, structural="neuron_deletion", group="mlp") for s in seeds]
    fig = structural_figure(structural_table(side, side, METRIC, PAIRS), METRIC, ("mono", "bi"))
    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # lays the figure out
    renderer = canvas.get_renderer()
    (left, right) = [ax.xaxis.label.get_window_extent(renderer) for ax in fig.axes]
    assert left.x1 < right.x0 and left.x0 >= 0 and right.x1 <= fig.bbox.width


def test_a_study_side_of_layer_wise_sweeps_keeps_the_all_targets_rows(tmp_path):
    """The study report compares the sweep of all targets together: a layer-wise sweep's group rows (which repeat
    each (perturbation, level, trial)) are left out, not refused as a table appended twice."""
    from studies.report import load_side

    rows = table(1.0, 0.3, 0.1)
    reference = [dataclasses.replace(row, group="") for row in rows]
    path = written(tmp_path, "a", reference + rows)
    assert load_side([path], None, "study.compare.a") == [reference]
