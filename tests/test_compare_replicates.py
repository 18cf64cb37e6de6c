"""run_reports.compare over training replicates: the two-level bootstrap against theory and a known cross-over,
one CSV per side unchanged (bytes of the old command), and the --a/--b command line."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from cognitive_reserve.crossover import find_replicated_crossover, seed_mean_curve
from cognitive_reserve.errors import ConfigError
from cognitive_reserve.io import SweepCsvWriter
from cognitive_reserve.seeding import trial_seed
from cognitive_reserve.sweep import SweepRow
from run_reports.compare import REPLICATE_COLUMNS, main

LEVELS = [0.0, 0.1, 0.2, 0.3, 0.4]
TRIALS = 20
FIXTURE = Path(__file__).parent / "fixtures" / "compare_one_table"
METRIC = "bits_per_byte_en"


def mono(level: float) -> float:
    return 1.0 + 4.0 * level


def bi(level: float) -> float:
    return 1.3 + 2.0 * level  # the expected curves cross at 0.15


def seed_table(model, curve, offset, trial_noise, base_seed=0, perturbation="random_deletion"):
    """One training seed's sweep: curve + the seed's offset + trial noise (an array per level, or a scale)."""
    rows = []
    for index, level in enumerate(LEVELS):
        count = 1 if level == 0 else TRIALS
        noise = trial_noise[index][:count] if isinstance(trial_noise, list) else np.zeros(count)
        for trial in range(count):
            seed = trial_seed(base_seed, perturbation, index, trial)
            value = curve(level) + offset + float(noise[trial])
            rows.append(SweepRow(model, 1, perturbation, level, trial, seed, METRIC, value, None, "test", 0))
    return rows


def replicates(rng, model, curve, seeds, seed_sd, trial_sd, base_seed=0):
    """``seeds`` tables with normal seed offsets (sd ``seed_sd``) and independent trial noise (sd ``trial_sd``)."""
    return [
        seed_table(model, curve, seed_sd * rng.standard_normal(),
                   [trial_sd * rng.standard_normal(TRIALS) for _ in LEVELS], base_seed)
        for _ in range(seeds)
    ]  # fmt: skip


def plug_in_sd(tables, level):
    """Theory: the two-level bootstrap's sd of the mean over S seeds is sqrt((Var_s(m_s) + mean_s(v_s / n)) / S),
    with plug-in (divide-by-n) variances of the seed means m_s and of the trials within each seed."""
    values = [np.array([r.value for r in rows if r.level == level]) for rows in tables]
    means = np.array([v.mean() for v in values])
    within = np.array([v.var() / len(v) for v in values])
    return math.sqrt((means.var() + within.mean()) / len(values))


@pytest.mark.parametrize("seed_sd", [0.0, 0.3])
def test_curve_interval_width_follows_the_two_level_variance(seed_sd):
    rng = np.random.default_rng(1)
    tables = replicates(rng, "mono", mono, seeds=8, seed_sd=seed_sd, trial_sd=0.2)
    curve = seed_mean_curve(tables, "random_deletion", METRIC, n_boot=4000)
    for point in curve[1:]:
        expected_width = 2 * 1.959964 * plug_in_sd(tables, point.level)
        assert point.ci_high - point.ci_low == pytest.approx(expected_width, rel=0.1), point
        seed_means = [np.mean([r.value for r in rows if r.level == point.level]) for rows in tables]
        assert point.mean == pytest.approx(np.mean(seed_means), abs=1e-12) and point.n_seeds == 8


def test_seed_variance_widens_the_interval_and_one_seed_covers_trials_only():
    rng = np.random.default_rng(2)
    calm = replicates(rng, "mono", mono, seeds=6, seed_sd=0.0, trial_sd=0.1)
    spread = replicates(rng, "mono", mono, seeds=6, seed_sd=0.5, trial_sd=0.1)
    width = {
        name: np.mean([p.ci_high - p.ci_low for p in seed_mean_curve(t, "random_deletion", METRIC, n_boot=2000)[1:]])
        for name, t in (("calm", calm), ("spread", spread), ("one seed", spread[:1]))
    }
    # seed sd 0.5 vs a trial-mean sd of 0.1/sqrt(20): the seeds dominate, the interval is many times wider
    assert width["spread"] > 5 * width["calm"]
    # one table: only the trial variance is left, whatever the seeds' spread
    assert width["one seed"] == pytest.approx(2 * 1.96 * 0.1 / math.sqrt(TRIALS), rel=0.35)


def test_paired_trials_across_seeds_cancel_shared_noise():
    rng = np.random.default_rng(3)
    shared = [0.2 * rng.standard_normal(TRIALS) for _ in LEVELS]  # same masks: same noise at the same trial
    side_a = [seed_table("mono", mono, 0.0, shared) for _ in range(3)]
    side_b = [seed_table("bi", bi, 0.0, shared) for _ in range(4)]
    result = find_replicated_crossover(side_a, side_b, "random_deletion", METRIC, n_boot=500)
    assert result.paired and (result.n_seeds_a, result.n_seeds_b) == (3, 4)
    assert result.level == pytest.approx(0.15) and result.ci_low == pytest.approx(0.15) == result.ci_high
    assert "two-level paired bootstrap, 500 replicates over 3 + 4 training seeds" in result.describe()

    unpaired_b = [seed_table("bi", bi, 0.0, shared, base_seed=1) for _ in range(4)]
    unpaired = find_replicated_crossover(side_a, unpaired_b, "random_deletion", METRIC, n_boot=500)
    assert not unpaired.paired and unpaired.ci_low < 0.15 < unpaired.ci_high


def test_two_level_interval_covers_a_known_crossover_where_trials_only_do_not():
    """150 simulated studies, 10 training seeds per side, seed offsets sd 0.1, trial noise sd 0.05: the true
    cross-over of the expected curves is 0.15. Theory for a percentile bootstrap of a mean of 10: about 92%."""
    rng = np.random.default_rng(4)
    covered = {"two-level": 0, "one seed per side": 0}
    studies = 150
    for _ in range(studies):
        side_a = replicates(rng, "mono", mono, seeds=10, seed_sd=0.1, trial_sd=0.05)
        side_b = replicates(rng, "bi", bi, seeds=10, seed_sd=0.1, trial_sd=0.05)
        for name, a, b in (("two-level", side_a, side_b), ("one seed per side", side_a[:1], side_b[:1])):
            result = find_replicated_crossover(a, b, "random_deletion", METRIC, n_boot=400)
            covered[name] += result.ci_low <= 0.15 <= result.ci_high
    print(
        f"coverage of the true cross-over over {studies} studies: "
        + ", ".join(f"{k} {v / studies:.0%}" for k, v in covered.items())
    )
    assert covered["two-level"] / studies >= 0.85
    assert covered["one seed per side"] / studies <= 0.4  # trials alone: far too narrow for seed variance


def test_tables_of_one_side_must_sweep_one_grid():
    rng = np.random.default_rng(5)
    side_a = replicates(rng, "mono", mono, seeds=2, seed_sd=0.1, trial_sd=0.1)
    side_a[1] = [r for r in side_a[1] if r.level != 0.4]
    with pytest.raises(ConfigError, match="different grids"):
        find_replicated_crossover(side_a, replicates(rng, "bi", bi, 2, 0.1, 0.1), "random_deletion", METRIC)


def test_one_csv_per_side_writes_the_bytes_of_the_old_command(tmp_path, capsys):
    main([str(FIXTURE / "a.csv"), str(FIXTURE / "b.csv"), "--out", str(tmp_path), "--n-boot", "500"])
    assert (tmp_path / "crossover.csv").read_bytes() == (FIXTURE / "expected_crossover.csv").read_bytes()
    printed = capsys.readouterr().out.splitlines()
    assert printed[:2] == (FIXTURE / "expected_stdout.txt").read_text().splitlines()


def write_tables(directory: Path, name: str, tables) -> list[str]:
    paths = []
    for index, rows in enumerate(tables):
        path = directory / f"{name}_seed{index}.csv"
        with SweepCsvWriter(path) as writer:
            writer.write(rows)
        paths.append(str(path))
    return paths


def test_command_with_several_csvs_per_side(tmp_path, capsys):
    rng = np.random.default_rng(6)
    paths_a = write_tables(tmp_path, "mono", replicates(rng, "gpt2-mono", mono, 3, 0.05, 0.05))
    paths_b = write_tables(tmp_path, "bi", replicates(rng, "gpt2-bi", bi, 2, 0.05, 0.05))
    main(["--a", *paths_a, "--b", *paths_b, "--out", str(tmp_path / "out"), "--n-boot", "300"])
    assert "gpt2-bi overtakes gpt2-mono at" in capsys.readouterr().out
    with (tmp_path / "out" / "crossover.csv").open() as file:
        (row,) = list(csv.DictReader(file))
    assert tuple(row) == REPLICATE_COLUMNS and (row["n_seeds_a"], row["n_seeds_b"]) == ("3", "2")
    assert row["paired"] == "True" and float(row["ci_low"]) < 0.15 < float(row["ci_high"])
    assert (tmp_path / "out" / f"compare_{METRIC}.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["A.csv", "--a", "A.csv", "--b", "B.csv"], "error: table_a='A.csv': give the tables either as two"),
        (["--a", "A.csv"], "error: b=None: --a and --b go together"),
        (["--a", "A.csv", "--b", "A.csv"], "error: a/b=['A.csv']: given twice"),
        (["A.csv"], "error: table_b=None: two sweep CSVs (A B) or --a ... --b ..."),
        (["--a", "A.csv", "--b", "missing.csv"], "error: b='missing.csv': no such file"),
    ],
)
def test_bad_sides_are_one_line_errors(extra, expected, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_tables(tmp_path, "A", [seed_table("a", mono, 0.0, 0.0)])
    Path("A_seed0.csv").rename("A.csv")
    with pytest.raises(SystemExit) as info:
        main([*extra, "--out", "out"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(expected)
