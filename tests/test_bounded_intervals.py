"""Intervals of bounded metrics stay inside the metric's range: at 3 trials with values at the bound, the
Student-t interval is clipped there, on the side that would leave the range, and nowhere else."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from cognitive_reserve.metric_ranges import metric_range
from cognitive_reserve.stats import mean_ci, summarize
from cognitive_reserve.sweep import SweepRow
from run_reports.glue import build_tables, table_markdown

#: metric: (3 trial values with two at the bound, the bound, which side the interval would cross)
AT_THE_BOUND = {
    "accuracy": ([1.0, 1.0, 0.5], 1.0, "high"),
    "f1": ([0.0, 0.0, 0.3], 0.0, "low"),
    "mcc": ([-1.0, -1.0, -0.4], -1.0, "low"),
    "perplexity_en": ([1.0, 1.0, 4.0], 1.0, "low"),
    "bits_per_byte_el": ([0.0, 0.0, 0.3], 0.0, "low"),
    "mse_task_vector": ([0.0, 0.0, 2.0], 0.0, "low"),
}


def student_t(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values)
    half = stats.t.ppf(0.975, len(array) - 1) * array.std(ddof=1) / math.sqrt(len(array))
    return float(array.mean() - half), float(array.mean() + half)


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("val/accuracy", (0.0, 1.0)), ("f1", (0.0, 1.0)), ("mcc", (-1.0, 1.0)), ("perplexity_el", (1.0, math.inf)),
        ("bits_per_byte_en", (0.0, math.inf)), ("mse_label", (0.0, math.inf)), ("loss", (-math.inf, math.inf)),
    ],
)  # fmt: skip
def test_range_is_read_from_the_metric_name(metric, expected):
    assert metric_range(metric) == expected


@pytest.mark.parametrize("metric", AT_THE_BOUND)
def test_three_trials_at_the_bound_give_an_interval_inside_the_range(metric):
    values, bound, side = AT_THE_BOUND[metric]
    rows = [SweepRow("m", 1, "random_deletion", 0.1, t, t, metric, v) for t, v in enumerate(values)]
    (summary,) = summarize(rows)
    low, high = student_t(values)
    lowest, highest = metric_range(metric)
    assert lowest <= summary.ci_low <= summary.mean <= summary.ci_high <= highest
    if side == "high":
        assert high > bound and summary.ci_high == bound and summary.ci_low == pytest.approx(low)
    else:
        assert low < bound and summary.ci_low == bound and summary.ci_high == pytest.approx(high)


def test_unbounded_metrics_and_the_default_keep_the_plain_student_t_interval():
    values = [0.0, 0.0, 2.0]
    (summary,) = summarize([SweepRow("m", 1, "gaussian_noise", 0.1, t, t, "loss", v) for t, v in enumerate(values)])
    assert (summary.ci_low, summary.ci_high) == pytest.approx(student_t(values))
    assert mean_ci(values)[2:] == pytest.approx(student_t(values))  # without bounds: as before


def test_glue_table_of_an_accuracy_at_one_stays_at_or_below_one():
    rows = [
        SweepRow("gpt2-mono-sst2", 1, "random_deletion", level, t, t, "accuracy", value)
        for level, values in ((0.0, [1.0]), (0.2, [1.0, 1.0, 0.7]))
        for t, value in enumerate(values)
    ]
    (table,) = build_tables(rows)
    cell = table.cells[(0.2, "gpt2-mono-sst2")]
    assert cell.ci_high == 1.0 and cell.ci_low == pytest.approx(student_t([1.0, 1.0, 0.7])[0])
    assert f"0.900 [{cell.ci_low:.3f}, 1.000]" in table_markdown(table)
