"""run_reports.compare over training replicates: the seed-level t intervals against their textbook formulas
(scipy's t tests, the two-way random-effects mean), the cross-over interval as the inverted level test,
"not identified" when the data cannot bound it, and the --a/--b command line."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from cognitive_reserve.contrasts import SideLevel, contrast_moments
from cognitive_reserve.crossover import find_replicated_crossover, level_differences, seed_mean_curve
from cognitive_reserve.errors import ConfigError
from cognitive_reserve.intervals import trials_needed
from cognitive_reserve.io import SweepCsvWriter
from cognitive_reserve.seeding import trial_seed
from cognitive_reserve.sweep import SweepRow
from run_reports.compare import CROSSOVER_COLUMNS, main

LEVELS = [0.0, 0.1, 0.2, 0.3, 0.4]
TRIALS = 20
METRIC = "bits_per_byte_en"
DELETION = "random_deletion"


def mono(level: float) -> float:
    return 1.0 + 4.0 * level


def bi(level: float) -> float:
    return 1.3 + 2.0 * level  # the expected curves cross at 0.15


def seed_table(model, curve, offset, trial_noise, base_seed=0, perturbation=DELETION, trials=TRIALS):
    """One training seed's sweep: curve + the seed's offset + trial noise (an array per level, or a scale)."""
    rows = []
    for index, level in enumerate(LEVELS):
        count = 1 if level == 0 else trials
        noise = trial_noise[index][:count] if isinstance(trial_noise, list) else np.zeros(count)
        for trial in range(count):
            seed = trial_seed(base_seed, perturbation, index, trial)
            value = curve(level) + offset + float(noise[trial])
            rows.append(SweepRow(model, 1, perturbation, level, trial, seed, METRIC, value, None, "test", 0))
    return rows


def replicates(rng, model, curve, seeds, seed_sd, trial_sd, shared=None, independent_trials=False):
    """``seeds`` tables with normal seed offsets (sd ``seed_sd``) and trial noise (sd ``trial_sd``) plus an
    optional noise shared by every table at the same trial (the same mask). ``independent_trials``: every
    table draws its own trials (other perturbation seeds)."""
    tables = []
    for index in range(seeds):
        noise = [trial_sd * rng.standard_normal(TRIALS) + (0 if shared is None else shared[i]) for i in range(5)]
        base = 100 + index if independent_trials else 0
        tables.append(seed_table(model, curve, seed_sd * rng.standard_normal(), noise, base))
    return tables


def cell(tables, level):
    """``(seeds, trials)`` of the tables' values at ``level``."""
    return np.array([[r.value for r in rows if r.level == level] for rows in tables])


def test_curve_band_is_student_t_over_the_seed_means():
    rng = np.random.default_rng(1)
    tables = replicates(rng, "mono", mono, seeds=4, seed_sd=0.3, trial_sd=0.2, independent_trials=True)
    for point in seed_mean_curve(tables, DELETION, METRIC)[1:]:
        means = cell(tables, point.level).mean(axis=1)
        low, high = stats.t.interval(0.95, df=3, loc=means.mean(), scale=stats.sem(means))
        assert (point.mean, point.ci_low, point.ci_high) == pytest.approx((means.mean(), low, high), rel=1e-12)


def test_differences_are_welch_or_paired_t_over_the_seed_means():
    rng = np.random.default_rng(2)
    side_a = replicates(rng, "mono", mono, seeds=3, seed_sd=0.2, trial_sd=0.1, independent_trials=True)
    side_b = replicates(rng, "bi", bi, seeds=3, seed_sd=0.05, trial_sd=0.1, independent_trials=True)
    for paired in (False, True):
        found = level_differences(side_a, side_b, DELETION, METRIC, paired_seeds=paired)
        for difference in found[1:]:
            a, b = cell(side_a, difference.level).mean(axis=1), cell(side_b, difference.level).mean(axis=1)
            test = stats.ttest_rel(b, a) if paired else stats.ttest_ind(b, a, equal_var=False)
            expected = test.confidence_interval(0.95)
            assert (difference.ci_low, difference.ci_high) == pytest.approx(tuple(expected), rel=1e-9)
            assert difference.difference == pytest.approx(b.mean() - a.mean())
        assert found[1].method == ("paired t over 3" if paired else "Welch t over 3 + 3") + " training seeds"


def test_shared_trials_give_the_two_way_random_effects_variance():
    """Every table drew the same masks: the variance of the mean is that of a crossed seeds × trials design,
    (MS_seeds + MS_trials − MS_residual) / (n·S), with Satterthwaite's degrees of freedom, at most the seeds'."""
    rng = np.random.default_rng(3)
    shared = [0.3 * rng.standard_normal(TRIALS) for _ in LEVELS]  # the mask's effect, alike for every seed
    tables = replicates(rng, "mono", mono, seeds=5, seed_sd=0.05, trial_sd=0.05, shared=shared)
    point = seed_mean_curve(tables, DELETION, METRIC)[2]
    y = cell(tables, point.level)
    seeds, n = y.shape
    ms_seeds = n * y.mean(axis=1).var(ddof=1)
    ms_trials = seeds * y.mean(axis=0).var(ddof=1)
    residual = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + y.mean()
    ms_residual = (residual**2).sum() / ((seeds - 1) * (n - 1))
    parts = np.array([ms_seeds, ms_trials, -ms_residual]) / (n * seeds)
    variance = parts.sum()
    df = min(variance**2 / (parts**2 / np.array([seeds - 1, n - 1, (seeds - 1) * (n - 1)])).sum(), seeds - 1)
    half = stats.t.ppf(0.975, df) * math.sqrt(variance)
    assert (point.ci_low, point.ci_high) == pytest.approx((y.mean() - half, y.mean() + half), rel=1e-12)
    # the spread of the seed means alone misses the shared masks: its interval is far narrower
    assert half > 2 * stats.t.ppf(0.975, seeds - 1) * stats.sem(y.mean(axis=1))
    assert seed_mean_curve(tables, DELETION, METRIC)[1].n_seeds == 5


def test_one_table_per_side_is_a_t_test_over_trials():
    rng = np.random.default_rng(4)
    trials = trials_needed(0.1)  # an interval over trials at every level (intervals.trials_needed)
    noise = [0.05 * rng.standard_normal(trials) for _ in LEVELS]
    a = seed_table("mono", mono, 0.0, noise, trials=trials)
    b_paired = seed_table("bi", bi, 0.0, [0.05 * rng.standard_normal(trials) for _ in LEVELS], trials=trials)
    b_unpaired = seed_table(
        "bi", bi, 0.0, [0.05 * rng.standard_normal(trials) for _ in LEVELS], base_seed=1, trials=trials
    )
    for b, paired in ((b_paired, True), (b_unpaired, False)):
        difference = level_differences([a], [b], DELETION, METRIC)[3]
        x, y = cell([a], 0.3)[0], cell([b], 0.3)[0]
        test = stats.ttest_rel(y, x) if paired else stats.ttest_ind(y, x, equal_var=False)
        assert (difference.ci_low, difference.ci_high) == pytest.approx(tuple(test.confidence_interval()), rel=1e-9)
        assert difference.method == ("paired t over trials" if paired else "Welch t over trials")


def test_the_crossover_interval_is_where_the_level_test_does_not_reject():
    rng = np.random.default_rng(5)
    side_a = replicates(rng, "mono", mono, seeds=4, seed_sd=0.03, trial_sd=0.05)
    side_b = replicates(rng, "bi", bi, seeds=4, seed_sd=0.03, trial_sd=0.05)
    result = find_replicated_crossover(side_a, side_b, DELETION, METRIC)
    assert result.status == "crossing" and result.identified and result.ci_low < result.level < result.ci_high
    assert result.describe().startswith(f"{DELETION} / {METRIC}: bi overtakes mono at ")
    assert "(95% Welch t over 4 + 4 training seeds, shared trials)" in result.describe()
    # at each bound the advantage's interval just touches 0, and contains it in between
    per_level = [[SideLevel.of(list(cell(side, level))) for level in LEVELS] for side in (side_a, side_b)]
    moments = contrast_moments([(1.0, per_level[0]), (-1.0, per_level[1])], [True] * len(LEVELS))
    for x, inside in ((result.ci_low, 0.0), (result.ci_high, 0.0), (result.level, -1.0)):
        step = int(x // 0.1)
        share = (x - LEVELS[step]) / 0.1
        weights = np.zeros((1, len(LEVELS)))
        weights[0, step], weights[0, step + 1] = 1 - share, share
        _, low, high = moments.intervals(weights, 0.95)
        assert max(low[0], -high[0]) == pytest.approx(inside, abs=2e-3) if inside == 0 else low[0] < 0 < high[0]


def test_a_crossover_the_seeds_cannot_bound_is_not_identified():
    rng = np.random.default_rng(6)
    side_a = replicates(rng, "mono", mono, seeds=2, seed_sd=1.0, trial_sd=0.05)
    side_b = replicates(rng, "bi", bi, seeds=2, seed_sd=1.0, trial_sd=0.05)
    result = find_replicated_crossover(side_a, side_b, DELETION, METRIC)
    assert (result.ci_low, result.ci_high) == (-math.inf, math.inf) and not result.identified
    assert "not identified" in result.describe()


@pytest.mark.parametrize(("gap", "bounds"), [(0.0, (-math.inf, math.inf)), (-1.0, (math.inf, math.inf))])
def test_a_grid_of_one_level_bounds_nothing_or_excludes_a_crossover(gap, bounds):
    """One swept level (say magnitude pruning at 0.5 only): the cross-over is open when the level's interval
    holds 0, and absent from the grid when it excludes 0."""
    rng = np.random.default_rng(8)
    side_a = replicates(rng, "mono", lambda level: 1.0, seeds=3, seed_sd=0.01, trial_sd=0.05)
    side_b = replicates(rng, "bi", lambda level: 1.0 - gap, seeds=3, seed_sd=0.01, trial_sd=0.05)
    one_level = [[r for r in rows if r.level == 0.2] for rows in (*side_a, *side_b)]
    result = find_replicated_crossover(one_level[:3], one_level[3:], DELETION, METRIC)
    assert (result.ci_low, result.ci_high) == bounds


def test_a_side_of_one_seed_against_several_or_unequal_pairs_is_an_error():
    rng = np.random.default_rng(7)
    three, one = replicates(rng, "mono", mono, 3, 0.1, 0.1), replicates(rng, "bi", bi, 1, 0.1, 0.1)
    with pytest.raises(ConfigError, match="tables='3 \\+ 1': an interval over training seeds needs at least 2"):
        find_replicated_crossover(three, one, DELETION, METRIC)
    with pytest.raises(ConfigError, match="paired_seeds='3 \\+ 2': needs as many tables on A as on B"):
        level_differences(three, three[:2], DELETION, METRIC, paired_seeds=True)


def test_tables_of_one_side_must_sweep_one_grid():
    rng = np.random.default_rng(8)
    side_a = replicates(rng, "mono", mono, seeds=2, seed_sd=0.1, trial_sd=0.1)
    side_a[1] = [r for r in side_a[1] if r.level != 0.4]
    with pytest.raises(ConfigError, match="different grids"):
        find_replicated_crossover(side_a, replicates(rng, "bi", bi, 2, 0.1, 0.1), DELETION, METRIC)


def write_tables(directory: Path, name: str, tables) -> list[str]:
    paths = []
    for index, rows in enumerate(tables):
        path = directory / f"{name}_seed{index}.csv"
        with SweepCsvWriter(path) as writer:
            writer.write(rows)
        paths.append(str(path))
    return paths


def test_command_with_several_csvs_per_side(tmp_path, capsys):
    rng = np.random.default_rng(9)
    paths_a = write_tables(tmp_path, "mono", replicates(rng, "gpt2-mono", mono, 3, 0.02, 0.05))
    paths_b = write_tables(tmp_path, "bi", replicates(rng, "gpt2-bi", bi, 3, 0.02, 0.05))
    for flags in ([], ["--paired-seeds"]):
        main(["--a", *paths_a, "--b", *paths_b, "--out", str(tmp_path / "out"), *flags])
        assert "gpt2-bi overtakes gpt2-mono at" in capsys.readouterr().out
        with (tmp_path / "out" / "crossover.csv").open() as file:
            (row,) = list(csv.DictReader(file))
        assert tuple(row) == CROSSOVER_COLUMNS and (row["n_seeds_a"], row["n_seeds_b"]) == ("3", "3")
        assert row["paired_trials"] == "True" and row["paired_seeds"] == str(bool(flags))
        assert row["identified"] == "True" and float(row["ci_low"]) < 0.15 < float(row["ci_high"])
        assert row["method"].startswith("paired t over 3" if flags else "Welch t over 3 + 3")
    assert (tmp_path / "out" / f"compare_{METRIC}.png").read_bytes()[:4] == b"\x89PNG"


def test_structural_perturbations_compare_like_the_entry_wise_ones(tmp_path, capsys):
    """Head deletion and bit flip rows (issue #30) go through the same command: one cross-over per perturbation."""
    rng = np.random.default_rng(3)
    structural = ("head_deletion", "bit_flip")

    def side(model, curve):
        return [
            [row for name in structural for row in seed_table(model, curve, 0.02 * rng.standard_normal(),
                                                              [0.05 * rng.standard_normal(TRIALS) for _ in LEVELS],
                                                              perturbation=name)]
            for _ in range(3)
        ]  # fmt: skip

    paths_a = write_tables(tmp_path, "mono", side("gpt2-mono", mono))
    paths_b = write_tables(tmp_path, "bi", side("gpt2-bi", bi))
    main(["--a", *paths_a, "--b", *paths_b, "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    with (tmp_path / "out" / "crossover.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [row["perturbation"] for row in rows] == list(structural)
    for row in rows:
        assert f"{row['perturbation']} / {METRIC}: gpt2-bi overtakes gpt2-mono at" in out
        assert row["identified"] == "True" and float(row["ci_low"]) < 0.15 < float(row["ci_high"])


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["A.csv", "--a", "A.csv", "--b", "B.csv"], "error: table_a='A.csv': give the tables either as two"),
        (["--a", "A.csv"], "error: b=None: --a and --b go together"),
        (["--a", "A.csv", "--b", "A.csv"], "error: a/b=['A.csv']: given twice"),
        (["A.csv"], "error: table_b=None: two sweep CSVs (A B) or --a ... --b ..."),
        (["--a", "A.csv", "--b", "missing.csv"], "error: b='missing.csv': no such file"),
        (["--a", "A.csv", "--b", "B1.csv", "B2.csv"], "error: tables='1 + 2': an interval over training seeds"),
    ],
)
def test_bad_sides_are_one_line_errors(extra, expected, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("A", "B1", "B2"):
        write_tables(tmp_path, name, [seed_table(name, mono, 0.0, 0.0)])
        Path(f"{name}_seed0.csv").rename(f"{name}.csv")
    with pytest.raises(SystemExit) as info:
        main([*extra, "--out", "out"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(expected)
