"""Per-level 95 % intervals (``cognitive_reserve.intervals``): coverage against known truths where the manual
promises it, the flags where it does not, the all-equal bound, seeding, and the one table of metric bounds."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
from torch import nn

from cognitive_reserve import SweepGrid, SweepSubject, run_sweep, summarize
from cognitive_reserve.adaptive import DEFAULT_MIN, AdaptiveTrials
from cognitive_reserve.intervals import (
    ALL_EQUAL,
    BOOTSTRAP_T,
    CLOPPER_PEARSON,
    EXACT,
    FEW_TRIALS,
    HONEST_FLAGS,
    HONEST_TRIALS,
    intervals,
    level_interval,
)
from cognitive_reserve.io import write_summary_csv
from cognitive_reserve.metric_ranges import METRIC_KINDS, metric_range
from cognitive_reserve.metrics import metric_direction, worst_value
from cognitive_reserve.stats import LATER_SUMMARY_COLUMNS, SUMMARY_COLUMNS, LevelSummary
from cognitive_reserve.sweep import SweepRow
from run_outputs.sweeps import write_sweep_files
from run_reports.glue import build_tables, table_markdown
from tests.helpers.cli import ROOT
from tests.helpers.coverage_cases import adaptive_stops, cases

#: Levels per case and count: ±2 standard errors of a 95 % coverage are then under 1.5 points.
REPLICATES = 900
#: Where ``docs/intervals.md`` promises 95 %: (case, trial count). Not promised: the χ²₁-like squared error at 10
#: trials (92–93 %: its long tail is rarely in 10 trials) and the rare-event cases (``mse_deletion_uneven``,
#: ``digits_deletion``), whose misses no interval over so few trials can avoid.
PROMISED = [
    ("digits_noise", 10), ("mse_deletion", 10), ("accuracy_near_1", 10), ("mse_noise", 20), ("digits_noise", 20),
    ("mse_deletion", 20), ("accuracy_near_1", 20), ("accuracy_near_0", 20),
]  # fmt: skip


def case(name: str):
    return next(c for c in cases() if c.name == name)


def coverage(truth: float, low: np.ndarray, high: np.ndarray) -> float:
    return float(np.mean((low <= truth) & (truth <= high)))


@pytest.mark.parametrize(("name", "trials"), PROMISED)
def test_reported_intervals_cover_the_known_truth_at_least_93_percent_where_95_is_promised(name, trials):
    toy = case(name)
    generator = np.random.default_rng(trials)
    found = intervals(toy.draw((REPLICATES, trials), generator), metric_range(toy.metric), generator)
    assert np.isin(found.flag, HONEST_FLAGS).all()  # from 10 trials every level gets its interval
    assert coverage(toy.truth, found.low, found.high) >= 0.93


def test_the_default_adaptive_rule_loses_little_coverage_against_a_fixed_count():
    """Digits noise levels stop at the first honest interval within a target that a 20-trial interval reaches on
    average. Stopping on a narrow interval favours trials that happen to agree; with the default ``min`` the
    interval at the stop covers within 2 points of the fixed 20-trial interval of the same trials (the manual
    promises no more for the rule: ``docs/intervals.md``)."""
    toy = case("digits_noise")
    generator = np.random.default_rng(1)
    spread = np.std(toy.draw((20_000,), generator))
    rule = AdaptiveTrials(ci_half_width=2.09 * spread / math.sqrt(20) / abs(toy.truth), relative=True, max=30)
    assert rule.min == DEFAULT_MIN
    values = toy.draw((REPLICATES, rule.max), generator)
    stops = adaptive_stops(values, metric_range(toy.metric), rule, generator)
    fixed = intervals(values[:, :20], metric_range(toy.metric), generator)
    assert stops.honest.all() and 20 < stops.trials.mean() < 30
    adaptive_coverage = coverage(toy.truth, stops.low, stops.high)
    assert adaptive_coverage >= 0.92 and adaptive_coverage >= coverage(toy.truth, fixed.low, fixed.high) - 0.02


def test_below_10_trials_a_level_is_flagged_and_has_no_interval():
    generator = np.random.default_rng(0)
    spread = generator.gamma(1.0, size=(3, 10))
    found = intervals(spread[:, : HONEST_TRIALS - 1])
    assert set(found.flag) == {FEW_TRIALS} and set(found.method) == {"none"} and np.isnan(found.high).all()
    found = intervals(spread)
    assert set(found.flag) == {""} and set(found.method) == {BOOTSTRAP_T} and np.isfinite(found.high).all()


@pytest.mark.parametrize("n", [3, 10, 20])
def test_trials_all_at_one_value_give_a_clopper_pearson_bound_that_narrows_with_n(n):
    share = 1 - 0.05 ** (1 / n)  # at most this share of trials differ (95 %): the "rule of three", about 3/n
    at_top = level_interval([1.0] * n, (0.0, 1.0))
    assert (at_top.method, at_top.flag, at_top.n_tied) == (CLOPPER_PEARSON, ALL_EQUAL, n)
    assert (at_top.low, at_top.high) == pytest.approx((1 - share, 1.0))
    inside = level_interval([0.2] * n, (-1.0, 1.0))
    assert (inside.low, inside.high) == pytest.approx((0.2 - 1.2 * share, 0.2 + 0.8 * share))
    unbounded = level_interval([5.0] * n, (0.0, math.inf))
    assert unbounded.low == pytest.approx(5.0 * (1 - share)) and unbounded.high == math.inf and unbounded.honest
    assert level_interval([7.0], deterministic=True) == level_interval([7.0], deterministic=True)
    assert level_interval([7.0], deterministic=True).method == EXACT


def test_a_level_whose_trials_are_mostly_one_value_cannot_be_bounded_on_the_other_side():
    """19 trials at accuracy 1.0 and one at 0.99: 36 % of the resamples have no spread and a mean of 1.0, so the
    trials cannot rule out a rare collapse: the interval reaches the metric's floor."""
    found = level_interval([1.0] * 19 + [0.99], (0.0, 1.0))
    assert found.honest and (found.low, found.high) == (0.0, 1.0)


def test_intervals_are_seeded_by_the_trials_reproducibly_and_stay_inside_the_metrics_range(tmp_path):
    def rows(seed: int) -> list[SweepRow]:
        generator = np.random.default_rng(seed)
        return [
            SweepRow("m", 1, "random_deletion", 0.1, t, seed * 100 + t, metric, float(value))
            for metric, values in (("accuracy", 1 - generator.gamma(0.3, 0.05, 12)), ("loss", generator.random(12)))
            for t, value in enumerate(values)
        ]

    first = write_summary_csv(tmp_path / "a.csv", summarize(rows(1))).read_bytes()
    assert write_summary_csv(tmp_path / "b.csv", summarize(rows(1))).read_bytes() == first  # bit for bit
    again = summarize(rows(1))
    other_seeds = summarize([dataclasses.replace(r, seed=r.seed + 1) for r in rows(1)])
    assert [s.ci_low for s in other_seeds] != [s.ci_low for s in again]  # another sweep seed, another resampling
    for s in again:
        lowest, highest = metric_range(s.metric)
        assert s.method == BOOTSTRAP_T and lowest <= s.ci_low <= s.mean <= s.ci_high <= highest
    header = first.decode().splitlines()[0].split(",")
    assert header[: len(SUMMARY_COLUMNS) - 3] == list(SUMMARY_COLUMNS[:-3])  # old readers by name keep working
    assert header[-3:] == ["method", "flag", "n_tied"]


def test_a_summary_kept_before_the_new_columns_reads_back_as_student_t():
    old = {name: 1.0 for name in SUMMARY_COLUMNS if name not in LATER_SUMMARY_COLUMNS}
    summary = LevelSummary.from_record(old | {"model": "m", "perturbation": "random_deletion", "metric": "mse"})
    assert (summary.method, summary.flag, summary.n_tied) == ("student-t", "", 0)


def test_a_sweep_with_flagged_levels_warns_once_and_its_figure_marks_them(tmp_path):
    values = iter(np.random.default_rng(0).random(4))
    subject = SweepSubject("m", nn.Linear(2, 2), lambda: {"mse": float(next(values))})
    rows = run_sweep(subject, [SweepGrid("random_deletion", [0.0, 0.5], trials=3)], seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        files = write_sweep_files(rows, tmp_path, "sweep_fit_epoch000")
    assert [str(w.message) for w in caught] == [
        "levels of this sweep need more trials for an honest 95% interval (fewer than 10 trials: no interval); "
        "their flag column of the summary CSV says which (docs/intervals.md)"
    ]
    by_level = {s.level: s for s in files.summaries}
    assert by_level[0.0].method == EXACT and by_level[0.5].flag == FEW_TRIALS
    assert files.figure.stat().st_size > 0


def test_glue_table_says_why_a_cell_has_no_interval():
    rows = [
        SweepRow("gpt2-mono-sst2", 1, "random_deletion", level, t, t, "accuracy", value)
        for level, values in ((0.0, [1.0]), (0.2, [1.0, 1.0, 0.7]))
        for t, value in enumerate(values)
    ]
    (table,) = build_tables(rows)
    assert "0.900 (no 95% CI: few_trials, 3 trials)" in table_markdown(table)


# ---- one table of metric bounds (issue #29) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "bounds", "direction", "worst"),
    [
        ("val/accuracy", (0.0, 1.0), "higher", 0.0), ("f1", (0.0, 1.0), "higher", 0.0),
        ("precision", (0.0, 1.0), "higher", 0.0), ("recall_macro", (0.0, 1.0), "higher", 0.0),
        ("mcc", (-1.0, 1.0), "higher", -1.0), ("perplexity_el", (1.0, math.inf), "lower", math.inf),
        ("bits_per_byte_en", (0.0, math.inf), "lower", math.inf), ("mse_label", (0.0, math.inf), "lower", math.inf),
        ("mae", (0.0, math.inf), "lower", math.inf), ("loss", (-math.inf, math.inf), "lower", math.inf),
        ("r2", (-math.inf, 1.0), "higher", -math.inf), ("layer2_accuracy", (0.0, 1.0), "higher", 0.0),
    ],
)  # fmt: skip
def test_one_entry_gives_a_metrics_range_direction_and_worst_value(metric, bounds, direction, worst):
    assert metric_range(metric) == bounds and metric_direction(metric) == direction
    assert worst_value(metric) == worst


def test_the_worst_value_is_the_end_of_the_range_the_interval_is_clipped_to():
    for kind in METRIC_KINDS:
        name = kind.fragments[0]
        assert worst_value(name) == (kind.highest if kind.better == "lower" else kind.lowest)
    assert math.isnan(worst_value("weirdness")) and metric_range("weirdness") == (-math.inf, math.inf)
    assert worst_value("weirdness", "higher") == -math.inf and worst_value("weirdness", "lower") == math.inf
    # precision and recall were unknown to the worst-value rule: a NaN precision (no positive prediction) was
    # recorded as NaN (direction unknown) or -inf (declared higher); now as 0, the floor of its range
    assert worst_value("precision", "higher") == 0.0


def test_the_coverage_tables_of_the_manual_are_the_recorded_ones():
    """``python bench/coverage_table.py`` writes ``docs/intervals.md``'s tables from ``bench/results/coverage.txt``."""
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "coverage_table.py"), "--check"], capture_output=True)
    assert done.returncode == 0, done.stdout + done.stderr
