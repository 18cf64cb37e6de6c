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
    MISS_RISK,
    NO_INTERVAL,
    RARE_EVENTS,
    intervals,
    level_interval,
    trials_needed,
)
from cognitive_reserve.io import write_summary_csv
from cognitive_reserve.metric_ranges import METRIC_KINDS, metric_range
from cognitive_reserve.metrics import metric_direction, worst_value
from cognitive_reserve.perturbations import PERTURBATIONS, GaussianNoise, make_perturbation
from cognitive_reserve.stats import LATER_SUMMARY_COLUMNS, SUMMARY_COLUMNS, LevelSummary
from cognitive_reserve.sweep import SweepRow
from run_outputs.sweeps import write_sweep_files
from run_reports.glue import build_tables, table_markdown
from tests.helpers.cli import ROOT
from tests.helpers.coverage_cases import adaptive_stops, cases

#: Levels per case and count: ±2 standard errors of a 95 % coverage are then under 1.5 points.
REPLICATES = 900
#: Where ``docs/intervals.md`` promises 95 %: (case, trial count). Not promised: the χ²₁-like squared error at 10
#: trials (92–93 %: its long tail is rarely in 10 trials). The deletion cases get no interval below the count their
#: p needs (``WITHHELD``; from that count: ``test_from_the_trials_a_deletion_level_needs...``).
PROMISED = [
    ("mse_noise", 20), ("mse_noise", 50), ("accuracy_near_0", 10), ("accuracy_near_0", 20), ("accuracy_near_0", 50),
    ("digits_noise", 10), ("digits_noise", 20), ("digits_noise", 50), ("digits_deletion", 50),
]  # fmt: skip
#: Where the page says the rare-events flag withholds every level's interval.
WITHHELD = [
    ("mse_deletion", 50), ("mse_deletion_uneven", 50), ("accuracy_near_1", 50), ("digits_deletion", 10),
    ("digits_deletion", 20),
]  # fmt: skip


def case(name: str):
    return next(c for c in cases() if c.name == name)


def coverage(truth: float, low: np.ndarray, high: np.ndarray) -> float:
    return float(np.mean((low <= truth) & (truth <= high)))


@pytest.mark.parametrize(("name", "trials"), PROMISED)
def test_reported_intervals_cover_the_known_truth_at_least_93_percent_where_95_is_promised(name, trials):
    toy = case(name)
    generator = np.random.default_rng(trials)
    values = toy.draw((REPLICATES, trials), generator)
    found = intervals(values, metric_range(toy.metric), generator, hit_probability=toy.hit_probability)
    assert np.isin(found.flag, HONEST_FLAGS).all()  # from the count the page names every level gets its interval
    assert coverage(toy.truth, found.low, found.high) >= 0.93


@pytest.mark.parametrize(("name", "trials"), WITHHELD)
def test_deletion_levels_with_too_few_trials_to_see_a_rare_weight_get_no_interval(name, trials):
    toy = case(name)
    generator = np.random.default_rng(trials)
    values = toy.draw((200, trials), generator)
    found = intervals(values, metric_range(toy.metric), generator, hit_probability=toy.hit_probability)
    spread = found.flag != ALL_EQUAL  # all-equal levels keep their Clopper–Pearson bound
    assert spread.any() and set(found.flag[spread]) == {RARE_EVENTS} and np.isnan(found.low[spread]).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mse_deletion", "mse_deletion_uneven", "accuracy_near_1", "digits_deletion"])
def test_from_the_trials_a_deletion_level_needs_its_intervals_cover_the_truth_at_least_93_percent(name):
    toy = case(name)
    trials = trials_needed(toy.hit_probability)
    generator = np.random.default_rng(trials)
    values = toy.draw((REPLICATES, trials), generator)
    found = intervals(values, metric_range(toy.metric), generator, hit_probability=toy.hit_probability)
    assert np.isin(found.flag, HONEST_FLAGS).all() and coverage(toy.truth, found.low, found.high) >= 0.93


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
            SweepRow("m", 1, "random_deletion", 0.5, t, seed * 100 + t, metric, float(value))
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


def test_trials_needed_are_those_at_which_every_trial_misses_a_unit_with_at_most_the_miss_risk():
    assert (trials_needed(0.1, 0.05), trials_needed(0.1, 0.01)) == (29, 44)  # 0.9^29 = 0.047, 0.9^28 = 0.052
    needed = trials_needed(0.1)
    assert 0.9**needed <= MISS_RISK < 0.9 ** (needed - 1)
    assert trials_needed(None) == trials_needed(0.0) == trials_needed(1.0) == trials_needed(0.9) == HONEST_TRIALS


def test_a_level_with_too_few_trials_to_see_a_rare_damaged_unit_gets_no_interval_unless_all_trials_agree():
    needed = trials_needed(0.1)
    spread = np.random.default_rng(0).gamma(1.0, size=needed)
    for n in (5, HONEST_TRIALS, needed - 1):
        withheld = level_interval(spread[:n], (0.0, math.inf), hit_probability=0.1)
        assert (withheld.method, withheld.flag) == (NO_INTERVAL, RARE_EVENTS) and math.isnan(withheld.low)
    found = level_interval(spread, (0.0, math.inf), hit_probability=0.1)
    assert (found.method, found.flag) == (BOOTSTRAP_T, "") and found.low < spread.mean() < found.high
    assert level_interval(spread[:HONEST_TRIALS], (0.0, math.inf), hit_probability=0.5).flag == ""  # 0.5^10 < risk
    assert level_interval(spread[:5], hit_probability=0.5).flag == FEW_TRIALS
    assert level_interval([2.0], hit_probability=0.1).flag == FEW_TRIALS  # one trial: nothing to resample
    tied = level_interval([1.0] * 20, (0.0, 1.0), hit_probability=0.1)  # the bound holds: it needs no unseen unit
    assert (tied.method, tied.flag) == (CLOPPER_PEARSON, ALL_EQUAL)


def test_perturbations_declare_whether_their_level_is_the_chance_that_a_unit_is_damaged():
    declared = {name: make_perturbation(name, 0.1).level_is_hit_probability for name in PERTURBATIONS}
    assert {name for name, hits in declared.items() if hits} >= {
        "random_deletion", "head_deletion", "neuron_deletion", "bit_flip", "activation_fault"
    }  # fmt: skip
    assert not declared["gaussian_noise"] and not declared["magnitude_pruning"]
    assert not make_perturbation("neuron_deletion", 0.1, select="norm").level_is_hit_probability

    @dataclasses.dataclass(frozen=True)
    class Custom(GaussianNoise):  # a perturbation that says nothing: no rare-events flag
        name = "custom_noise"

    assert not Custom(0.1).level_is_hit_probability


def test_a_summary_flags_rare_events_by_its_perturbations_declaration_and_the_warning_names_the_trials(tmp_path):
    values = iter(np.random.default_rng(0).random(1000))
    subject = SweepSubject("m", nn.Linear(4, 4), lambda: {"mse": float(next(values))})
    grids = [SweepGrid("random_deletion", [0.0, 0.1, 0.5], trials=12), SweepGrid("gaussian_noise", [0.1], trials=12)]
    rows = run_sweep(subject, grids, seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        files = write_sweep_files(rows, tmp_path, "sweep_fit_epoch000")
    flags = {(s.perturbation, s.level): (s.method, s.flag) for s in files.summaries}
    assert flags == {
        ("random_deletion", 0.0): (EXACT, ""), ("random_deletion", 0.1): (NO_INTERVAL, RARE_EVENTS),
        ("random_deletion", 0.5): (BOOTSTRAP_T, ""), ("gaussian_noise", 0.1): (BOOTSTRAP_T, ""),
    }  # fmt: skip
    (message,) = [str(w.message) for w in caught]
    assert f"random_deletion p=0.1 needs ≥ {trials_needed(0.1)} trials" in message and "0.5" not in message
    renamed = summarize([dataclasses.replace(r, perturbation="my_deletion") for r in rows if r.level == 0.1])
    assert {s.flag for s in renamed} == {""}  # a name the registry lacks: no declaration, no flag


def test_an_adaptive_level_flagged_rare_events_continues_until_it_has_enough_trials():
    needed = trials_needed(0.1)
    values = list(np.random.default_rng(1).normal(1.0, 0.01, 50))
    rule = AdaptiveTrials(ci_half_width=1.0, min=10, max=50)  # any honest interval is narrow enough
    settled = [rule.settled("random_deletion", 0.1, list(range(n)), {"mse": values[:n]}) for n in range(10, 51)]
    assert settled.index(True) + 10 == needed
    assert rule.settled("gaussian_noise", 0.1, list(range(10)), {"mse": values[:10]})
    few = AdaptiveTrials(ci_half_width=1.0, min=10, max=needed - 5)
    assert few.settled("random_deletion", 0.1, list(range(needed - 5)), {"mse": values[: needed - 5]})  # at max


def test_glue_table_says_why_a_cell_has_no_interval():
    rows = [
        SweepRow("gpt2-mono-sst2", 1, "random_deletion", level, t, t, "accuracy", value)
        for level, values in ((0.0, [1.0]), (0.2, [1.0, 1.0, 0.7]), (0.5, [1.0, 1.0, 0.7]))
        for t, value in enumerate(values)
    ]
    (table,) = build_tables(rows)
    assert "| 0.50 | 0.900 (no 95% CI: few_trials, 3 trials) |" in table_markdown(table)
    assert "| 0.20 | 0.900 (no 95% CI: rare_events, 3 trials) |" in table_markdown(table)  # needs 15 trials


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
