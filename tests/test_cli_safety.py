"""Untrusted checkpoints run no code; wrong checkpoints and unwritable outputs fail before any work;
a killed fit resumes from last.ckpt."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from subprocess import DEVNULL

import pytest
import torch

from cognitive_reserve import read_sweep_csv
from tests.helpers.cli import ROOT, run_cli
from tests.helpers.configs import DIGITS_SGD, config_args

pytestmark = pytest.mark.slow  # end to end: every test runs the CLI or a real process

DIGITS = str(ROOT / "configs" / "linear" / "digits.yaml")


class RunsCode:
    """Unpickling this calls os.system: what a malicious checkpoint does."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def error_line(capsys) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_malicious_checkpoint_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": RunsCode(str(marker))}, evil)
    result = run_cli(
        "test", "--config", DIGITS, f"--trainer.default_root_dir={tmp_path / 'out'}", f"--ckpt_path={evil}"
    )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: ckpt_path='{evil}': refused: not a plain-weights checkpoint"), last
    assert not marker.exists()
    torch.load(evil, weights_only=False)  # the payload is real: unsafe loading would have run it
    assert marker.exists()


def test_checkpoint_of_another_model_family_is_rejected(tmp_path, capsys):
    from run import main

    foreign = tmp_path / "gpt2.ckpt"
    torch.save({"state_dict": {"model.wte.weight": torch.zeros(2, 2)}, "hyper_parameters": {"n_layer": 2}}, foreign)
    with pytest.raises(SystemExit, match="2"):
        main(["test", "--config", DIGITS, f"--trainer.default_root_dir={tmp_path}", f"--ckpt_path={foreign}"])
    assert "is a checkpoint of another model family: ['n_layer'] are not parameters of LinearMultitaskRegression" in (
        error_line(capsys)
    )


def test_model_settings_replaced_by_the_checkpoint_are_named_in_a_warning(tmp_path):
    """Lightning rebuilds the model from the checkpoint's hyperparameters: an override is not silently lost."""
    from run import main

    common = ["--config", DIGITS, "--trainer.logger=false", "--data.init_args.task_grid=[2]"]
    main(["fit", *common, f"--trainer.default_root_dir={tmp_path / 'fit'}"])
    checkpoint = tmp_path / "fit" / "checkpoints" / "last.ckpt"
    test_dir = tmp_path / "test"
    args = ["test", *common, f"--trainer.default_root_dir={test_dir}", f"--ckpt_path={checkpoint}"]
    with pytest.warns(UserWarning, match=r"checkpoint's hyperparameters, replacing k=6 -> 4$"):
        main([*args, "--model.init_args.k=6"])
    assert {row.model for row in read_sweep_csv(test_dir / "robustness" / "sweep_test_epoch000.csv")} == {
        "linear_svd_k4_T2"
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        main(args)  # the config agrees with the checkpoint: nothing to say
    assert not [w for w in caught if "checkpoint's hyperparameters" in str(w.message)]


def test_missing_checkpoint_and_unwritable_output_fail_fast(tmp_path, capsys):
    from run import main

    with pytest.raises(SystemExit, match="2"):
        main(["test", "--config", DIGITS, f"--trainer.default_root_dir={tmp_path}", "--ckpt_path=nope.ckpt"])
    assert error_line(capsys) == "error: ckpt_path='nope.ckpt': no such checkpoint file"
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(SystemExit, match="2"):
        main(["fit", "--config", DIGITS, f"--trainer.default_root_dir={blocker / 'out'}"])
    assert error_line(capsys).startswith(
        f"error: trainer.default_root_dir='{blocker / 'out'}': output directory is not"
    )


def test_killed_fit_resumes_from_last_checkpoint(tmp_path):
    """SIGKILL a training run once it has saved last.ckpt, then `--ckpt_path last` finishes it."""
    out = tmp_path / "out"
    args = ["fit", *config_args(DIGITS_SGD), f"--trainer.default_root_dir={out}", "--trainer.logger=false",
            "--data.init_args.task_grid=[1,4]", "--trainer.max_epochs=60"]  # fmt: skip
    worker = subprocess.Popen([sys.executable, str(ROOT / "run.py"), *args], stdout=DEVNULL, stderr=DEVNULL)
    last = out / "checkpoints" / "last.ckpt"
    deadline = time.time() + 120
    while time.time() < deadline and not (last.exists() and torch.load(last, weights_only=True)["epoch"] >= 3):
        time.sleep(0.2)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    killed_at = torch.load(last, weights_only=True)["epoch"]
    assert 3 <= killed_at < 59 and not (out / "robustness").exists()
    result = run_cli(*args, "--ckpt_path=last")
    assert result.returncode == 0, result.stderr[-2000:]
    assert torch.load(last, weights_only=True)["global_step"] == 60
    rows = read_sweep_csv(out / "robustness" / "sweep_fit_epoch059.csv")
    assert {r.model for r in rows} == {"linear_sgd_k4_T1", "linear_sgd_k4_T4"}
