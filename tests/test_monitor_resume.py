"""`--ckpt_path last` continues the per-epoch sweeps and the monitors' history of the linear monitored config."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml

from cognitive_reserve import read_sweep_csv
from cognitive_reserve.history import HistoryCsv, HistoryRow
from run import main
from tests.helpers.configs import DIGITS_MONITORED, merged

pytestmark = pytest.mark.slow  # end to end: every test runs the CLI or a real process

EPOCHS, HALF = 6, 3  # one full-batch optimizer step per epoch


def short_config(tmp_path: Path) -> Path:
    """digits_monitored.yaml (with its base layers) with a sweep every 2 epochs, monitors every step, two models,
    no W&B."""
    config = merged(*DIGITS_MONITORED)
    config["trainer"]["logger"] = False
    for callback in config["trainer"]["callbacks"]:
        args = callback.setdefault("init_args", {})
        if callback["class_path"].endswith("PerturbationSweep"):
            args.update(every_n_epochs=2, perturbations={"gaussian_noise": {"levels": [0.0, 0.1], "trials": 3}})
        if callback["class_path"].endswith(("SpectralMonitor", "WeightNorms")):
            args["every_n_steps"] = 1
    config["data"]["init_args"]["task_grid"] = [1, 5]
    path = tmp_path / "short.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def fit(config: Path, root: Path, *extra: str) -> None:
    main(["fit", "--config", str(config), f"--trainer.default_root_dir={root}", *extra])


def sensitivity_epochs(root: Path) -> list[int]:
    with (root / "robustness" / "sensitivity_train.csv").open() as file:
        return sorted({int(row["epoch"]) for row in csv.DictReader(file)})


def test_resumed_run_continues_sweep_epochs_and_monitor_histories(tmp_path):
    config = short_config(tmp_path)
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    fit(config, whole, f"--trainer.max_epochs={EPOCHS}")
    fit(config, resumed, f"--trainer.max_epochs={HALF}")
    killed_tail = HistoryRow(HALF + 2, HALF, "T1.w", "sigma_max", -1.0)  # logged after last.ckpt, then killed
    HistoryCsv(resumed / "monitors" / "spectral.csv").append([killed_tail])

    checkpoint = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)
    states = {key.split("{")[0]: state for key, state in checkpoint["callbacks"].items()}
    assert states["SpectralMonitor"]["last_step"] == HALF
    assert {"T1.w", "T5.gamma"} <= set(states["SpectralMonitor"]["bases"])  # the warm starts are saved
    assert [entry["epoch"] for entry in states["PerturbationSweep"]["per_epoch"]][:1] == [1]

    fit(config, resumed, f"--trainer.max_epochs={EPOCHS}", "--ckpt_path=last")

    for epoch in (1, 3, 5):  # sweeps of every second epoch, numbered on from the first run
        name = f"sweep_train_epoch{epoch:03d}.csv"
        expected, got = read_sweep_csv(whole / "robustness" / name), read_sweep_csv(resumed / "robustness" / name)
        assert [(r.model, r.level, r.trial) for r in got] == [(r.model, r.level, r.trial) for r in expected]
        assert [r.value for r in got] == pytest.approx([r.value for r in expected], rel=1e-4)
    assert sensitivity_epochs(resumed) == sensitivity_epochs(whole) == [1, 3, 5]  # epoch 1 came from the checkpoint

    for monitor in ("spectral", "weight_norms"):
        expected = HistoryCsv(whole / "monitors" / f"{monitor}.csv").read()
        got = HistoryCsv(resumed / "monitors" / f"{monitor}.csv").read()
        keys = [(r.step, r.name, r.quantity) for r in got]
        assert max(Counter(keys).values()) == 1, "duplicate rows after resuming"
        assert sorted(keys) == sorted((r.step, r.name, r.quantity) for r in expected)
        by_key = {(r.step, r.name, r.quantity): r.value for r in got}
        for row in expected:
            assert by_key[(row.step, row.name, row.quantity)] == pytest.approx(row.value, rel=1e-4), row
    assert (resumed / "monitors" / "spectral.png").is_file()
