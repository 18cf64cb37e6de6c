"""The digits experiment end to end through the CLI: outputs, contracts, theory, W&B, bad input."""

from __future__ import annotations

import csv
import itertools
import math
from pathlib import Path

import pytest
import yaml

from cognitive_reserve import CSV_COLUMNS, read_sweep_csv
from cognitive_reserve.stats import LevelSummary
from run_reports.task_crossover import closed_form_threshold
from tests.helpers.cli import ROOT, run_cli
from tests.helpers.doc_chains import Done
from tests.helpers.linear_outputs import assert_linear_fit_outputs
from tests.helpers.stats_checks import assert_monte_carlo_matches_closed_form
from tests.helpers.wandb_offline import find_runs, read_run

pytestmark = pytest.mark.slow  # end to end: every test runs the CLI or a real process

DIGITS = ROOT / "configs" / "linear" / "digits.yaml"


DIGITS_RUN = "runs/linear/digits"  # the config's default_root_dir


@pytest.fixture(scope="module")
def digits_run(documented_chains) -> tuple[Path, Done]:
    """The manual's `python run.py fit --config configs/linear/digits.yaml`, run as written in a fresh folder by a
    user without W&B credentials (no WANDB_MODE, no API key, no ~/.netrc, stdin closed): its output folder and
    what the command did."""
    done = documented_chains.of("configs/linear/digits.yaml")
    return documented_chains.folder / DIGITS_RUN, done


def read_summary(path: Path) -> list[LevelSummary]:
    with path.open() as file:
        return [
            LevelSummary(
                model=r["model"],
                num_tasks=int(r["num_tasks"]),
                perturbation=r["perturbation"],
                level=float(r["level"]),
                metric=r["metric"],
                n=int(r["n"]),
                n_nonfinite=int(r["n_nonfinite"]),
                mean=float(r["mean"]),
                std=float(r["std"]),
                ci_low=float(r["ci_low"]),
                ci_high=float(r["ci_high"]),
                expected=float(r["expected"]) if r["expected"] else None,
                method=r["method"],
                flag=r["flag"],
                n_tied=int(r["n_tied"]),
            )
            for r in csv.DictReader(file)
        ]


def test_every_output_lands_under_default_root_dir(digits_run):
    out, done = digits_run
    assert done.created and all(path.startswith(f"{DIGITS_RUN}/") for path in done.created)
    assert_linear_fit_outputs(out)


def test_sweep_csv_follows_the_contract(digits_run):
    out, _ = digits_run
    path = out / "robustness" / "sweep_fit_epoch000.csv"
    assert tuple(path.read_text().splitlines()[0].split(",")) == CSV_COLUMNS
    rows = read_sweep_csv(path)
    config = yaml.safe_load(DIGITS.read_text())
    grid = config["data"]["init_args"]["task_grid"]
    k = config["model"]["init_args"]["k"]
    assert set(range(1, 11)) <= set(grid) and sum(k < t for t in grid) > len(grid) / 2
    assert {r.num_tasks for r in rows} == set(grid)
    assert {r.perturbation for r in rows} == {"gaussian_noise", "random_deletion", "magnitude_pruning"}
    for r in rows:
        assert r.model == f"linear_svd_k{k}_T{r.num_tasks}" and r.metric == "mse_task_vector"
        assert (r.expected is None) == (r.perturbation == "magnitude_pruning")
    trials: dict[tuple, int] = {}
    for r in rows:
        key = (r.num_tasks, r.perturbation, r.level)
        trials[key] = trials.get(key, 0) + 1
    grids = config["trainer"]["callbacks"][0]["init_args"]["perturbations"]
    for (_, perturbation, level), count in trials.items():
        random = perturbation != "magnitude_pruning" and level not in (0.0, 1.0)
        assert count == (grids[perturbation]["trials"] if random else 1)
    assert max(r.level for r in rows if r.perturbation == "random_deletion") == 1.0


def test_monte_carlo_agrees_with_closed_form_on_digits(digits_run):
    out, _ = digits_run
    summaries = read_summary(out / "robustness" / "sweep_fit_epoch000_summary.csv")
    assert_monte_carlo_matches_closed_form(summaries)


def test_more_tasks_degrade_more_gracefully_on_digits(digits_run):
    """The paper's claim on real data: R(T) (unit-norm task vectors) falls with T once k < T, and at high
    noise many-task models win. How much of the fall is multitasking: see the aligned control
    (docs/experiments/linear.md)."""
    out, _ = digits_run
    with (out / "robustness" / "robustness_slope.csv").open() as file:
        slopes = {int(r["num_tasks"]): float(r["robustness_slope"]) for r in csv.DictReader(file)}
    k = yaml.safe_load(DIGITS.read_text())["model"]["init_args"]["k"]
    beyond_k = [slopes[t] for t in sorted(slopes) if t > k]
    assert all(b <= a for a, b in itertools.pairwise(beyond_k)), slopes
    assert slopes[min(slopes)] == pytest.approx(1.0) and slopes[max(slopes)] < slopes[min(slopes)]
    rows = read_sweep_csv(out / "robustness" / "sweep_fit_epoch000.csv")
    one, many = ([r for r in rows if r.num_tasks == t and r.perturbation == "gaussian_noise"] for t in (1, 20))
    assert one[0].value < many[0].value  # the single task is better without damage...
    assert closed_form_threshold(one, many) < math.inf  # ...and the closed forms say it loses under enough noise


def test_without_credentials_wandb_goes_offline_and_says_how_to_sync(digits_run):
    out, done = digits_run
    assert f"Upload later with: wandb sync {DIGITS_RUN}/wandb/offline-run-*" in done.output
    assert len(list((out / "wandb").glob("offline-run-*"))) == 1


def test_wandb_offline_run_holds_sweep_and_config(digits_run):
    out, _ = digits_run
    run = read_run(find_runs(out)[0])
    assert run.config["config"]["model"]["init_args"]["k"] == 4
    assert run.config["config"]["trainer"]["default_root_dir"] == DIGITS_RUN
    key = "robustness/fit/linear_svd_k4_T3/gaussian_noise/mse_task_vector/mean"
    rows = read_sweep_csv(out / "robustness" / "sweep_fit_epoch000.csv")
    values = [r.value for r in rows if r.num_tasks == 3 and r.perturbation == "gaussian_noise" and r.level == 0.1]
    assert run.curve(key, "robustness/fit/gaussian_noise/level")[0.1] == pytest.approx(sum(values) / len(values))
    assert "robustness/fit/table/_type" in run.logged_keys() and "robustness/fit/figure/_type" in run.logged_keys()
    assert "theory/robustness_slope_T10" in run.logged_keys()
    assert "theory/robustness_slope_unnormalized_T10" in run.logged_keys()


def test_same_seed_gives_identical_csv(digits_run, tmp_path):
    """A second run (in-process this time) reproduces the subprocess run's CSV byte for byte."""
    from run import main

    out, _ = digits_run
    main(["fit", "--config", str(DIGITS), f"--trainer.default_root_dir={tmp_path}", "--trainer.logger=false"])
    name = "robustness/sweep_fit_epoch000.csv"
    assert (tmp_path / name).read_bytes() == (out / name).read_bytes()


def config_with(tmp_path: Path, edit) -> Path:
    """A copy of digits.yaml changed by ``edit(config_dict)``."""
    config = yaml.safe_load(DIGITS.read_text())
    edit(config)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def sweep_args(config: dict) -> dict:
    return config["trainer"]["callbacks"][0]["init_args"]


BAD_INPUTS = {
    "negative std": (
        lambda c: sweep_args(c)["perturbations"]["gaussian_noise"].update(levels=[0.1, -0.1]),
        "PerturbationSweep.perturbations.gaussian_noise.std=-0.1:",
    ),
    "p above 1": (
        lambda c: sweep_args(c)["perturbations"]["random_deletion"].update(levels=[1.5]),
        "PerturbationSweep.perturbations.random_deletion.p=1.5:",
    ),
    "p below 0": (
        lambda c: sweep_args(c)["perturbations"]["magnitude_pruning"].update(levels=[-0.2]),
        "PerturbationSweep.perturbations.magnitude_pruning.p=-0.2:",
    ),
    "unknown perturbation": (
        lambda c: sweep_args(c)["perturbations"].update(bit_flips={"levels": [0.1]}),
        "PerturbationSweep.perturbations.bit_flips.perturbation='bit_flips': unknown",
    ),
    "selector matches nothing": (
        lambda c: sweep_args(c).update(targets="attn"),
        "PerturbationSweep.targets='attn': matches no parameter",
    ),
    "more tasks than label pairs": (
        lambda c: c["data"]["init_args"].update(task_grid=[1, 46]),
        "data.task_grid=46: more tasks than label pairs (10 classes give 45)",
    ),
    "k zero": (lambda c: c["model"]["init_args"].update(k=0), "model.k=0: must be an integer >= 1"),
    "k negative": (lambda c: c["model"]["init_args"].update(k=-3), "model.k=-3:"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_error_before_training(case, tmp_path, capsys):
    from run import main

    edit, expected = BAD_INPUTS[case]
    out = tmp_path / "out"
    config = config_with(tmp_path, edit)
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", str(config), f"--trainer.default_root_dir={out}", "--trainer.logger=false"])
    assert info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"error: {expected}"), last
    assert not list(out.rglob("*.ckpt")) and not (out / "robustness").exists()


def test_bad_input_exits_nonzero_in_a_real_process(tmp_path):
    result = run_cli("fit", "--config", str(DIGITS), f"--trainer.default_root_dir={tmp_path}", "--model.init_args.k=0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "error: model.k=0: must be an integer >= 1"
    assert not list(tmp_path.rglob("*.ckpt"))
