"""The sweep engine: grid × trials, seeding, restore, CSV contract, statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from cognitive_reserve import (
    CSV_COLUMNS,
    ConfigError,
    SweepCsvWriter,
    SweepGrid,
    SweepSubject,
    mean_ci,
    read_sweep_csv,
    run_sweep,
    summarize,
    trial_seed,
)
from cognitive_reserve.intervals import HONEST_FLAGS, HONEST_TRIALS, interval_seed, level_interval


def subject(model: nn.Module, evaluate=None) -> SweepSubject:
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    return SweepSubject(
        name="toy",
        module=model,
        evaluate=evaluate
        or (lambda: {"out": float(model(x).pow(2).mean()), "zeros": float((model.weight == 0).sum())}),
        targets="weight",
        num_tasks=3,
    )


def model() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(8, 8)


GRIDS = [
    SweepGrid("gaussian_noise", [0.0, 0.1, 0.2], trials=4),
    SweepGrid("random_deletion", [0.0, 0.5, 1.0], trials=4),
    SweepGrid("magnitude_pruning", [0.0, 0.5], trials=4),
]


def test_rows_cover_grid_with_one_trial_for_deterministic_levels():
    rows = run_sweep(subject(model()), GRIDS, seed=0)
    trials = {(r.perturbation, r.level): r.trial + 1 for r in rows}
    assert trials == {
        ("gaussian_noise", 0.0): 1, ("gaussian_noise", 0.1): 4, ("gaussian_noise", 0.2): 4,
        ("random_deletion", 0.0): 1, ("random_deletion", 0.5): 4, ("random_deletion", 1.0): 1,
        ("magnitude_pruning", 0.0): 1, ("magnitude_pruning", 0.5): 1,
    }  # fmt: skip
    assert len(rows) == 2 * sum(trials.values())  # two metrics per evaluation
    assert {r.model for r in rows} == {"toy"} and {r.num_tasks for r in rows} == {3}
    deletion = [r for r in rows if r.perturbation == "random_deletion" and r.metric == "zeros"]
    assert [r.value for r in deletion if r.level == 1.0] == [64.0]
    assert [r.value for r in deletion if r.level == 0.0] == [0.0]
    assert all(r.seed == trial_seed(0, r.perturbation, [0.0, 0.5, 1.0].index(r.level), r.trial) for r in deletion)


def test_sweep_restores_weights_bitwise_and_is_reproducible():
    net = model()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    first = run_sweep(subject(net), GRIDS, seed=5)
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key])
    assert run_sweep(subject(net), GRIDS, seed=5) == first
    assert run_sweep(subject(net), GRIDS, seed=6) != first


def test_exception_inside_evaluation_restores_weights():
    net = model()
    before = net.weight.clone()
    calls = []

    def failing() -> dict[str, float]:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("evaluation crashed")
        return {"out": 0.0}

    with pytest.raises(RuntimeError, match="evaluation crashed"):
        run_sweep(subject(net, failing), GRIDS, seed=0)
    assert torch.equal(net.weight, before)


def test_csv_contract_round_trip(tmp_path):
    rows = run_sweep(subject(model()), GRIDS, seed=0, stage="test", epoch=3)
    path = tmp_path / "sweep.csv"
    with SweepCsvWriter(path) as writer:
        writer.write(rows)
    header = path.read_text().splitlines()[0].split(",")
    assert tuple(header) == CSV_COLUMNS
    assert read_sweep_csv(path) == rows


def test_csv_writer_appends_and_flushes_each_trial(tmp_path):
    rows = run_sweep(subject(model()), GRIDS[:1], seed=0)
    path = tmp_path / "sweep.csv"
    writer = SweepCsvWriter(path)
    writer.write(rows[:2])
    assert len(path.read_text().splitlines()) == 3  # visible on disk before close
    writer.close()
    with SweepCsvWriter(path) as again:
        again.write(rows[2:3])
    assert read_sweep_csv(path) == rows[:3]  # header written once


def test_csv_writer_drops_a_torn_last_line(tmp_path):
    rows = run_sweep(subject(model()), GRIDS[:1], seed=0)
    path = tmp_path / "sweep.csv"
    with SweepCsvWriter(path) as writer:
        writer.write(rows[:2])
    with path.open("a") as file:
        file.write("toy,3,gaussian_noise,0.1,0,12")  # killed mid-write
    with SweepCsvWriter(path) as writer:
        writer.write(rows[2:4])
    assert read_sweep_csv(path) == rows[:4]


def test_mean_ci_matches_scipy_t_interval():
    values = [1.0, 2.5, 2.0, 4.0, 3.5]
    mean, std, low, high = mean_ci(values)
    expected = stats.t.interval(0.95, df=4, loc=np.mean(values), scale=stats.sem(values))
    assert math.isclose(mean, 2.6) and math.isclose(std, np.std(values, ddof=1))
    assert math.isclose(low, expected[0]) and math.isclose(high, expected[1])
    assert mean_ci([3.0]) == (3.0, 0.0, 3.0, 3.0)


def test_summary_marks_non_finite_values():
    rows = run_sweep(subject(model(), lambda: {"out": math.inf}), GRIDS[:1], seed=0)
    for s in summarize(rows):
        assert s.n_nonfinite == s.n and math.isinf(s.mean)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"perturbation": "blur", "levels": [0.1]}, "perturbation='blur': unknown"),
        ({"perturbation": "gaussian_noise", "levels": []}, "gaussian_noise.levels=[]"),
        ({"perturbation": "gaussian_noise", "levels": [0.1], "trials": 0}, "gaussian_noise.trials=0"),
        ({"perturbation": "gaussian_noise", "levels": [0.1, -1.0]}, "gaussian_noise.std=-1.0"),
        ({"perturbation": "random_deletion", "levels": [2]}, "random_deletion.p=2"),
    ],
)
def test_grid_validation(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        SweepGrid(**kwargs)


# ---- stacked scoring (trial_batch > 1) -----------------------------------------------------------------


def stackable(net: nn.Linear, calls: list[int] | None = None) -> SweepSubject:
    """A subject that scores a weight through ``score``: one copy (``evaluate``) or a stack of them."""
    x = torch.randn(16, net.in_features, generator=torch.Generator().manual_seed(0))

    def score(weight: torch.Tensor) -> dict[str, float]:
        return {"out": float((x @ weight.T + net.bias).pow(2).mean()), "zeros": float((weight == 0).sum())}

    def evaluate_stack(stacks: list[torch.Tensor]) -> list[dict[str, float]]:
        if calls is not None:
            calls.append(len(stacks[0]))
        return [score(weight) for weight in stacks[0]]

    return SweepSubject(
        "toy", net, lambda: score(net.weight), targets="weight", num_tasks=3, evaluate_stack=evaluate_stack
    )


@pytest.mark.parametrize("width", [8, 300])  # 300 × 300: each copy is cut into several perturbation chunks
def test_stacked_trials_give_the_in_place_rows_and_never_write_the_module(width):
    torch.manual_seed(0)
    net = nn.Linear(width, width)
    version, before = net.weight._version, net.weight.clone()
    calls: list[int] = []
    in_place = run_sweep(stackable(net), GRIDS, seed=2)
    stacked = run_sweep(stackable(net, calls), GRIDS, seed=2, trial_batch=5)
    assert stacked == in_place and len({r.value for r in in_place if r.metric == "out"}) > 10
    assert calls == [5, 5, 5, 2]  # 17 trials
    assert torch.equal(net.weight, before)
    version = net.weight._version
    run_sweep(stackable(net), GRIDS, seed=2, trial_batch=64)
    assert net.weight._version == version  # stacked scoring only reads the weights


def test_stacked_trials_resume_and_report_each_trial_as_it_is_scored():
    net = model()
    full = run_sweep(stackable(net), GRIDS, seed=0)
    done = [r for r in full if r.perturbation == "gaussian_noise" or (r.level, r.trial) == (0.5, 2)]
    reported: list[list] = []
    resumed = run_sweep(stackable(net), GRIDS, seed=0, completed=done, on_trial=reported.append, trial_batch=3)
    assert resumed == full
    assert [row for rows in reported for row in rows] == [r for r in full if r not in done]
    assert all(len(rows) == 2 for rows in reported)  # one call per trial: its two metrics


def test_trial_batch_needs_a_subject_that_scores_stacks():
    with pytest.raises(ConfigError, match=r"trial_batch=4: model toy scores one trial at a time"):
        run_sweep(subject(model()), GRIDS, trial_batch=4)
    with pytest.raises(ConfigError, match=r"trial_batch=0: must be an integer >= 1"):
        run_sweep(stackable(model()), GRIDS, trial_batch=0)
    short = stackable(model())
    short.evaluate_stack = lambda stacks: [{"out": 0.0}]
    with pytest.raises(ValueError, match="scored 1 of 2 copies"):
        run_sweep(short, GRIDS, trial_batch=2)


# ---- adaptive trials ------------------------------------------------------------------------------------------

NOISE = [0.0, 0.02, 0.1, 0.5, 2.0]


def first_settled_count(rows, width: float, least: int, relative: bool = False) -> int:
    """The sequential rule, written out with ``summarize``: the first n >= least whose summary interval of the
    first n trials is honest, bounded and has a half-width <= width (× |mean| when relative)."""
    rows = sorted(rows, key=lambda row: row.trial)
    for n in range(least, len(rows) + 1):
        (s,) = summarize(rows[:n])
        half = (s.ci_high - s.ci_low) / 2
        if s.flag in HONEST_FLAGS and math.isfinite(half) and half <= width * (abs(s.mean) if relative else 1.0):
            return n
    return len(rows)


def by_level(rows, metric: str = "out") -> dict[float, list[float]]:
    levels: dict[float, list[float]] = {}
    for row in rows:
        if row.metric == metric:
            levels.setdefault(row.level, []).append(row.value)
    return levels


@pytest.mark.parametrize(("width", "relative"), [(0.02, False), (0.05, True)])
def test_adaptive_levels_stop_at_the_first_count_whose_interval_is_narrow_enough(width, relative):
    net = model()
    fixed = run_sweep(stackable(net), [SweepGrid("gaussian_noise", NOISE, trials=25)], seed=4)
    rule = {"ci_half_width": width, "relative": relative, "min": 3, "max": 25, "metric": "out"}
    adaptive = run_sweep(stackable(net), [SweepGrid("gaussian_noise", NOISE, trials=rule)], seed=4)
    counts = {level: len(values) for level, values in by_level(adaptive).items()}
    out = [r for r in fixed if r.metric == "out"]
    expected = {level: first_settled_count([r for r in out if r.level == level], width, 3, relative) for level in NOISE}
    assert counts == expected and len(set(counts.values())) >= 3  # levels get different numbers of trials
    assert min(n for level, n in counts.items() if level > 0) >= HONEST_TRIALS  # min 3 stops no earlier than 10
    kept = {(r.level, r.trial) for r in adaptive}
    assert adaptive == [r for r in fixed if (r.level, r.trial) in kept]  # a prefix of the fixed trials, same seeds


def test_adaptive_sweep_rows_do_not_depend_on_trial_batch_and_resume_takes_the_same_decisions():
    net = model()
    grids = [
        SweepGrid("gaussian_noise", NOISE, trials={"ci_half_width": 0.02, "min": 2, "max": 12, "metric": "out"}),
        SweepGrid("magnitude_pruning", [0.5], trials={"ci_half_width": 0.02}),
    ]
    full = run_sweep(stackable(net), grids, seed=1)
    assert run_sweep(stackable(net), grids, seed=1, trial_batch=4) == full
    done: list = []

    def interrupt(rows) -> None:
        if len(done) == 9:
            raise KeyboardInterrupt
        done.append(rows)

    with pytest.raises(KeyboardInterrupt):
        run_sweep(stackable(net), grids, seed=1, on_trial=interrupt)
    completed = [row for rows in done for row in rows]
    reported: list = []
    resumed = run_sweep(stackable(net), grids, seed=1, completed=completed, on_trial=reported.append, trial_batch=3)
    assert resumed == full
    new_rows = [row for rows in reported for row in rows]  # in measurement order: round by round
    assert len(new_rows) == len(set(new_rows)) and set(new_rows) == {r for r in full if r not in completed}


def test_adaptive_comparison_stops_when_the_paired_difference_is_settled(tmp_path):
    reference_net, net = model(), model()
    with torch.no_grad():
        net.bias.add_(0.01)
    reference = run_sweep(stackable(reference_net), [SweepGrid("gaussian_noise", NOISE[1:], trials=20)], seed=4)
    path = tmp_path / "reference.csv"
    with SweepCsvWriter(path) as writer:
        writer.write(reference)
    rule = {"ci_half_width": 1e-4, "min": 3, "max": 30, "metric": "out", "reference": str(path)}
    compared = run_sweep(stackable(net), [SweepGrid("gaussian_noise", NOISE[1:], trials=rule)], seed=4)
    fixed = by_level(run_sweep(stackable(net), [SweepGrid("gaussian_noise", NOISE[1:], trials=20)], seed=4))
    counts = {level: len(values) for level, values in by_level(compared).items()}
    seeds = {r.level: [] for r in reference}
    for r in reference:
        if r.metric == "out":
            seeds[r.level].append(r.seed)
    for level, values in by_level(reference).items():
        differences = np.subtract(fixed[level], values)
        n = next(
            (n for n in range(3, 21) if _settled(differences[:n], seeds[level][:n], 1e-4)), 20
        )  # narrow enough, or 0 excluded; at most the reference's 20 trials
        assert counts[level] == n, level
    assert len(set(counts.values())) >= 2
    with pytest.raises(ConfigError, match=r"trials.reference=.*was swept with other seeds"):
        run_sweep(stackable(net), [SweepGrid("gaussian_noise", NOISE[1:], trials=rule)], seed=5)


def _settled(differences: np.ndarray, seeds: list[int], width: float) -> bool:
    """The interval of the paired differences (seeded as the rule seeds it) is honest and narrow, or excludes 0."""
    interval = level_interval(differences, seed=interval_seed("out - reference", seeds))
    low, high = interval.low, interval.high
    return interval.honest and ((high - low) / 2 <= width or low > 0 or high < 0)


@pytest.mark.parametrize(
    ("trials", "message"),
    [
        ({"min": 3}, "gaussian_noise.trials={'min': 3}: an adaptive rule needs ci_half_width"),
        ({"ci_half_width": 0}, "gaussian_noise.trials.ci_half_width=0: must be > 0"),
        ({"ci_half_width": 0.1, "min": 1}, "gaussian_noise.trials.min=1: must be an integer >= 2"),
        ({"ci_half_width": 0.1, "min": 5, "max": 4}, "gaussian_noise.trials.max=4: must be an integer >= 5"),
        ({"ci_half_width": 0.1, "relative": "yes"}, "gaussian_noise.trials.relative='yes': must be true or false"),
        ({"ci_half_width": 0.1, "width": 2}, "gaussian_noise.trials.width=2: unknown key"),
        ({"ci_half_width": 0.1, "reference": "nope.csv"}, "gaussian_noise.trials.reference='nope.csv': no such file"),
        (
            {"ci_half_width": 0.1, "reference_model": "a"},
            "gaussian_noise.trials.reference_model='a': needs a reference",
        ),
    ],
)
def test_adaptive_rule_validation_names_the_field(trials, message):
    with pytest.raises(ConfigError) as caught:
        SweepGrid("gaussian_noise", [0.1], trials=trials)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_adaptive_rule_refuses_a_metric_the_model_does_not_report():
    grid = SweepGrid("gaussian_noise", [0.1], trials={"ci_half_width": 0.1, "metric": "accuracy"})
    with pytest.raises(
        ConfigError, match=r"trials.metric='accuracy': not measured; the model reports \['out', 'zeros'\]"
    ):
        run_sweep(stackable(model()), [grid])
