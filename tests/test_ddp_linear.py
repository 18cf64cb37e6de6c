"""DDP end to end through the CLI (gloo, 2 CPU processes) with every monitor on: the single-process results,
one W&B run, files written once, the sweep's evaluation data split between the processes."""

from __future__ import annotations

import re
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import pytest

from cognitive_reserve import read_sweep_csv
from cognitive_reserve.history import HistoryCsv
from datamodules.digits import DigitsTasksDataModule
from run import main
from tests.helpers.cli import run_cli
from tests.helpers.ddp_probe import TASK_GRID, ddp_config
from tests.helpers.wandb_offline import find_runs

pytestmark = pytest.mark.slow  # end to end: every test runs the CLI or a real process

DDP = ["--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path, str, str]:
    tmp = tmp_path_factory.mktemp("ddp")
    config = ddp_config(tmp)
    single, sharded = tmp / "single", tmp / "ddp"
    result = run_cli(
        "fit", "--config", str(config), f"--trainer.default_root_dir={sharded}", *DDP, timeout=400,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    captured = StringIO()
    with redirect_stdout(captured):  # the reference: one process, in this one
        main(["fit", "--config", str(config), f"--trainer.default_root_dir={single}"])
    return single, sharded, result.stdout, captured.getvalue()


def outputs(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for sub in ("robustness", "monitors") for p in (root / sub).rglob("*")}


def test_ddp_sweeps_equal_the_single_process_sweeps(runs):
    single, sharded, _, _ = runs
    names = sorted(p.name for p in (single / "robustness").glob("sweep_*.csv") if "summary" not in p.name)
    assert names == ["sweep_fit_epoch001.csv", "sweep_train_epoch000.csv", "sweep_train_epoch001.csv"]
    for name in names:
        expected, got = read_sweep_csv(single / "robustness" / name), read_sweep_csv(sharded / "robustness" / name)
        assert "neuron_deletion" in {r.perturbation for r in got}
        assert [(r.model, r.perturbation, r.level, r.trial, r.seed, r.metric) for r in got] == [
            (r.model, r.perturbation, r.level, r.trial, r.seed, r.metric) for r in expected
        ]  # rows written once (by rank 0), same masks
        assert [r.value for r in got] == pytest.approx([r.value for r in expected], rel=1e-5)


def test_ddp_monitor_histories_equal_the_single_process_ones(runs):
    single, sharded, _, _ = runs
    for monitor in ("spectral", "weight_norms"):
        rows = HistoryCsv(single / "monitors" / f"{monitor}.csv").read()
        expected = {(r.step, r.name, r.quantity): r.value for r in rows}
        got = HistoryCsv(sharded / "monitors" / f"{monitor}.csv").read()
        assert len(got) == len(expected) and {(r.step, r.name, r.quantity) for r in got} == set(expected)
        for row in got:
            assert row.value == pytest.approx(expected[(row.step, row.name, row.quantity)], rel=1e-5, abs=1e-9)


def test_ddp_writes_each_file_once_and_one_wandb_run(runs):
    single, sharded, _, _ = runs
    assert outputs(sharded) == outputs(single)
    assert len(find_runs(sharded)) == 1 and len(find_runs(single)) == 1


def test_each_process_sweeps_its_own_half_of_the_evaluation_data(runs):
    _, _, ddp_stdout, single_stdout = runs
    shards = dict(map(int, m) for m in re.findall(r"shard-probe rank=(\d+) items=(\d+)", ddp_stdout))
    [(rank, total)] = [tuple(map(int, m)) for m in re.findall(r"shard-probe rank=(\d+) items=(\d+)", single_stdout)]
    data = DigitsTasksDataModule(task_grid=TASK_GRID)
    data.setup()
    assert rank == 0 and total == len(data.datasets["val"])
    assert sorted(shards) == [0, 1] and sum(shards.values()) == total
    assert abs(shards[0] - shards[1]) <= 1
    assert len(data.datasets["train"]) % 2 == 1  # the case where sampler padding would have changed the model
