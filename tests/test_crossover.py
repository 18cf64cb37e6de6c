"""Cross-over of two sweep tables: known crossing, none, the interval over trials, and the compare command."""

from __future__ import annotations

import csv
import math
import subprocess
import sys

import numpy as np
import pytest

from cognitive_reserve.crossover import (
    crossover_level,
    find_crossover,
    find_replicated_crossover,
    known_direction,
    level_differences,
)
from cognitive_reserve.errors import ConfigError
from cognitive_reserve.intervals import FEW_TRIALS, HONEST_TRIALS, trials_needed
from cognitive_reserve.io import SweepCsvWriter
from cognitive_reserve.seeding import trial_seed
from cognitive_reserve.sweep import SweepRow
from run_reports.compare import main as compare_main
from tests.helpers.cli import OFFLINE_ENV, ROOT

LEVELS = [0.0, 0.1, 0.2, 0.3, 0.4]


def table(model, curve, noise=0.0, trials=40, metric="bits_per_byte_en", perturbation="random_deletion", seed=0):
    """Rows of a synthetic sweep: value = curve(level) + trial noise; seeds as the real sweep draws them."""
    rng = np.random.default_rng(seed)
    rows = []
    for index, level in enumerate(LEVELS):
        for trial in range(1 if level == 0 else trials):
            rows.append(
                SweepRow(
                    model=model,
                    num_tasks=1,
                    perturbation=perturbation,
                    level=level,
                    trial=trial,
                    seed=trial_seed(0, perturbation, index, trial),
                    metric=metric,
                    value=curve(level) + noise * rng.standard_normal(),
                    stage="test",
                    epoch=0,
                )
            )
    return rows


def mono(level):
    return 1.0 + 4.0 * level  # better (lower) at first, degrades fast


def bi(level):
    return 1.3 + 2.0 * level  # worse at first, degrades slowly: equal at level 0.15


def test_crossover_level_interpolates_the_sign_change():
    assert crossover_level([0, 1, 2], [-1.0, -0.5, 1.5]) == ("crossing", pytest.approx(1.25))
    assert crossover_level([0, 1, 2], [-1.0, -0.5, -0.1]) == ("none", None)
    assert crossover_level([0, 1, 2], [0.2, 0.5, 0.1]) == ("b_better_from_start", None)
    assert crossover_level([0, 1, 2], [0.0, 0.0, 2.0]) == ("crossing", 1.0)


def test_known_crossover_found_with_a_paired_interval():
    result = find_crossover(table("mono", mono), table("bi", bi), "random_deletion", "bits_per_byte_en")
    assert result.status == "crossing" and result.direction == "lower" and result.paired_trials
    assert result.level == pytest.approx(0.15)  # exact: the curves are linear between grid levels
    assert result.ci_low == result.ci_high == pytest.approx(0.15)  # no trial noise, no width
    assert result.method == "paired t over trials" and not result.replicated

    shared_noise = find_crossover(
        table("mono", mono, noise=0.05, seed=1), table("bi", bi, noise=0.05, seed=1), "random_deletion",
        "bits_per_byte_en",
    )  # fmt: skip
    # paired trials share their noise: it cancels in the difference, the interval stays tight
    assert shared_noise.ci_low == pytest.approx(0.15) and shared_noise.ci_high == pytest.approx(0.15)

    independent = find_crossover(
        table("mono", mono, noise=0.05, seed=1), table("bi", bi, noise=0.05, seed=2), "random_deletion",
        "bits_per_byte_en",
    )  # fmt: skip
    assert independent.status == "crossing"
    assert independent.ci_low < 0.15 < independent.ci_high < 0.2


def test_no_crossover_is_reported_as_none_in_the_grid():
    result = find_crossover(table("mono", mono), table("bi", lambda level: 2.0 + 5.0 * level), "random_deletion",
                            "bits_per_byte_en")  # fmt: skip
    assert result.status == "none" and result.level is None and result.identified
    assert result.ci_low == result.ci_high == math.inf
    assert result.describe() == (
        "random_deletion / bits_per_byte_en: none in the grid (bi never better than mono up to 0.4); "
        "interval: mono better at every level (95% paired t over trials)"
    )


def test_fewer_trials_than_an_interval_needs_leave_the_crossover_not_identified():
    few = HONEST_TRIALS - 1
    a, b = table("mono", mono, noise=0.05, trials=few, seed=1), table("bi", bi, noise=0.05, trials=few, seed=2)
    result = find_crossover(a, b, "random_deletion", "bits_per_byte_en")
    # where the means cross is still given; the interval over the trials is not
    assert result.status == "crossing" and result.level == pytest.approx(0.15, abs=0.05)
    assert not result.identified and (result.ci_low, result.ci_high) == (-math.inf, math.inf)
    assert result.flag == FEW_TRIALS
    assert result.method == f"no interval: {few} trials at level 0.1, fewer than the {trials_needed(0.1)} it needs"
    assert result.describe() == (
        f"random_deletion / bits_per_byte_en: bi's mean overtakes mono's at {result.level:.4g}; {result.method}"
    )
    never = find_crossover(a, table("bi", lambda level: 2.0 + 5.0 * level, trials=few), "random_deletion",
                           "bits_per_byte_en")  # fmt: skip
    assert never.status == "none" and not never.identified and never.describe().endswith(f"up to 0.4); {never.method}")

    enough = find_crossover(
        table("mono", mono, noise=0.05, trials=trials_needed(0.1), seed=1),
        table("bi", bi, noise=0.05, trials=trials_needed(0.1), seed=2), "random_deletion", "bits_per_byte_en",
    )  # fmt: skip
    assert enough.identified and enough.flag == "" and enough.method == "paired t over trials"


def test_level_differences_over_trials_withhold_only_the_levels_short_of_their_trials():
    """20 trials: deletion p = 0.1 needs 31 (rare events), 0.2 and up need 15 or 10."""
    a, b = table("mono", mono, noise=0.05, trials=20, seed=1), table("bi", bi, noise=0.05, trials=20, seed=2)
    by_level = {d.level: d for d in level_differences([a], [b], "random_deletion", "bits_per_byte_en")}
    short = by_level[0.1]
    assert math.isnan(short.ci_low) and math.isnan(short.ci_high) and not short.excludes_zero
    assert short.method == f"no interval: 20 trials at level 0.1, fewer than the {trials_needed(0.1)} it needs"
    assert short.difference == pytest.approx(bi(0.1) - mono(0.1), abs=0.05)  # the means are still given
    for level in (0.2, 0.3, 0.4):
        assert by_level[level].ci_low < by_level[level].difference < by_level[level].ci_high
        assert by_level[level].method == "paired t over trials"


def test_the_few_trials_rule_spares_deterministic_levels_and_intervals_over_training_seeds():
    pruning = find_crossover(table("mono", mono, trials=1, perturbation="magnitude_pruning"),
                             table("bi", bi, trials=1, perturbation="magnitude_pruning"),
                             "magnitude_pruning", "bits_per_byte_en")  # fmt: skip
    assert pruning.flag == "" and (pruning.ci_low, pruning.ci_high) == pytest.approx((0.15, 0.15))  # exact levels
    seeds = [
        table(model, curve, noise=0.05, trials=3, seed=s)
        for model, curve in (("mono", mono), ("bi", bi))
        for s in (1, 2)
    ]
    replicated = find_replicated_crossover(seeds[:2], seeds[2:], "random_deletion", "bits_per_byte_en")
    assert replicated.flag == "" and replicated.method.startswith("Welch t over 2 + 2 training seeds")


def test_higher_is_better_metrics_and_override():
    assert known_direction("accuracy_sst2") == "higher" and known_direction("mcc") == "higher"
    assert known_direction("perplexity_el") == "lower" and known_direction("mse") == "lower"
    with pytest.raises(ConfigError):
        known_direction("score")
    accuracy_a = table("mono", lambda level: 0.9 - level, metric="score")
    accuracy_b = table("bi", lambda level: 0.8 - 0.5 * level, metric="score")
    result = find_crossover(accuracy_a, accuracy_b, "random_deletion", "score", direction="higher")
    assert result.status == "crossing" and result.level == pytest.approx(0.2)
    assert find_crossover(accuracy_a, accuracy_b, "random_deletion", "score", direction="lower").status == (
        "b_better_from_start"
    )


def test_different_grids_and_duplicate_rows_are_errors():
    shorter = [row for row in table("bi", bi) if row.level != 0.4]
    with pytest.raises(ConfigError, match="different grids"):
        find_crossover(table("mono", mono), shorter, "random_deletion", "bits_per_byte_en")
    with pytest.raises(ConfigError, match="appears twice"):
        find_crossover(table("mono", mono) * 2, table("bi", bi), "random_deletion", "bits_per_byte_en")


def write_csv(path, rows):
    with SweepCsvWriter(path) as writer:
        writer.write(rows)
    return path


def test_compare_command_writes_figure_and_table(tmp_path, capsys):
    rows_a = table("mono", mono) + table("mono", mono, perturbation="gaussian_noise")
    rows_a += table("mono", lambda level: 3.0, metric="perplexity_en")
    rows_b = table("bi", bi) + table("bi", lambda level: 2.0 + 5.0 * level, perturbation="gaussian_noise")
    rows_b += table("bi", lambda level: 9.0, metric="perplexity_en")
    a, b = write_csv(tmp_path / "a.csv", rows_a), write_csv(tmp_path / "b.csv", rows_b)

    compare_main([str(a), str(b), "--out", str(tmp_path / "out")])

    printed = capsys.readouterr().out
    assert "random_deletion / bits_per_byte_en: bi overtakes mono at 0.15" in printed
    assert "gaussian_noise / bits_per_byte_en: none in the grid" in printed
    assert (tmp_path / "out" / "compare_bits_per_byte_en.png").stat().st_size > 10_000
    with (tmp_path / "out" / "crossover.csv").open() as file:
        results = {row["perturbation"]: row for row in csv.DictReader(file)}
    assert set(results) == {"random_deletion", "gaussian_noise"}  # bits per byte only, by default
    assert float(results["random_deletion"]["level"]) == pytest.approx(0.15)
    assert results["gaussian_noise"]["status"] == "none"


def test_compare_command_reports_a_crossover_of_too_few_trials_as_not_identified(tmp_path, capsys):
    few = HONEST_TRIALS // 3  # the 3 trials per level that once printed 0.1816 [0.1567, 0.215] (95% paired t ...)
    a = write_csv(tmp_path / "a.csv", table("mono", mono, noise=0.05, trials=few, seed=1))
    b = write_csv(tmp_path / "b.csv", table("bi", bi, noise=0.05, trials=few, seed=2))

    compare_main([str(a), str(b), "--out", str(tmp_path / "out")])

    printed = capsys.readouterr().out
    assert "bi's mean overtakes mono's at " in printed and f"; no interval: {few} trials at level 0.1" in printed
    with (tmp_path / "out" / "crossover.csv").open() as file:
        (row,) = csv.DictReader(file)
    assert row["status"] == "crossing" and 0.1 < float(row["level"]) < 0.2
    assert (row["ci_low"], row["ci_high"], row["identified"]) == ("-inf", "inf", "False")
    assert row["method"].startswith(f"no interval: {few} trials")


@pytest.mark.slow
def test_compare_command_errors_are_one_line(tmp_path):
    a = write_csv(tmp_path / "a.csv", table("mono", mono))
    done = subprocess.run(
        [sys.executable, "-m", "run_reports.compare", str(a), str(tmp_path / "missing.csv"), "--out", str(tmp_path)],
        cwd=ROOT, env={**OFFLINE_ENV, "PATH": ""}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: table_b={str(tmp_path / 'missing.csv')!r}: no such file"]
