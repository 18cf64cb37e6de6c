"""W&B trouble does not kill science: unreachable at start, or dying mid-run → warning, run completes."""

from __future__ import annotations

import pytest
import yaml

from cognitive_reserve import read_sweep_csv
from tests.helpers.cli import ROOT, run_cli
from tests.helpers.wandb_offline import find_runs, read_run

pytestmark = pytest.mark.slow  # end to end: every test runs the CLI or a real process

DIGITS = ROOT / "configs" / "linear" / "digits.yaml"
SMALL = ["--data.init_args.task_grid=[1,3]"]


def outputs_complete(out) -> None:
    rows = read_sweep_csv(out / "robustness" / "sweep_fit_epoch000.csv")
    assert {r.perturbation for r in rows} == {"gaussian_noise", "random_deletion", "magnitude_pruning"}
    for name in ("sweep_fit_epoch000_summary.csv", "sweep_fit_epoch000.png", "robustness_slope.png"):
        assert (out / "robustness" / name).stat().st_size > 0


def test_wandb_dying_mid_run_is_a_warning(tmp_path):
    config = yaml.safe_load(DIGITS.read_text())
    config["trainer"]["callbacks"].insert(0, {"class_path": "tests.helpers.wandb_faults.KillWandbService"})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    result = run_cli(
        "fit", "--config", str(path), f"--trainer.default_root_dir={out}", *SMALL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    # W&B's client may notice the dead service at any later call, or only when the run is finished
    assert "W&B failed (" in result.stderr and "local CSV/PNG outputs are complete" in result.stderr
    outputs_complete(out)


def test_unreachable_wandb_server_falls_back_to_offline(tmp_path):
    out = tmp_path / "out"
    result = run_cli(
        "fit", "--config", str(DIGITS), f"--trainer.default_root_dir={out}", *SMALL,
        env={
            "WANDB_MODE": "online", "WANDB_API_KEY": "0" * 40, "WANDB_BASE_URL": "http://127.0.0.1:9",
            "WANDB_INIT_TIMEOUT": "5",
        },
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "W&B unreachable (" in result.stderr
    outputs_complete(out)
    (offline,) = [path for path in find_runs(out / "wandb") if "offline-run-" in str(path)]
    run = read_run(offline)
    assert "robustness/fit/linear_svd_k4_T3/gaussian_noise/mse_task_vector/mean" in run.logged_keys()
