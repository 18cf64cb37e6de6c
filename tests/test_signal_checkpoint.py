"""A fit stopped by a signal (SIGTERM; the scheduler's warning signal, SIGUSR2) saves where it is and, continued
with ``--ckpt_path last``, ends with the outputs of a fit that was never stopped: the same weights and
optimizer state, the same sweep and monitor CSVs byte for byte (tiny GPT-2: dropout, a shuffled loader,
validations with their sweeps, stopped mid-epoch, at a step a validation follows and inside a validation's
sweep)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch

from callbacks.signal_checkpoint import EXIT_STOPPED, STOP_SIGNALS
from run import main
from studies.state import EXIT_STOPPED as STUDY_EXIT_STOPPED
from tests.helpers.cli import run_cli
from tests.helpers.gpt2_fixtures import tiny_corpus
from tests.helpers.study_fixtures import tiny_gpt2_config

pytestmark = pytest.mark.slow  # end to end: the CLI in-process, several fits

STEPS, VALIDATE_EVERY = 16, 6  # 2 batches an epoch; validations (and their sweeps) after steps 6 and 12


def signal_at(step: int, name: str) -> dict:
    return {"class_path": "tests.helpers.signals.SignalAtStep", "init_args": {"step": step, "signal": name}}


def signal_in_sweep(step: int, name: str) -> dict:
    return {"class_path": "tests.helpers.signals.SignalInSweep", "init_args": {"step": step, "signal": name}}


def outputs(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.glob("*/*.csv"))}


def test_a_fit_stopped_twice_continues_to_the_outputs_of_a_fit_never_stopped(tmp_path, capsys):
    handlers = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    corpus = tiny_corpus(tmp_path / "corpus", kilobytes=16)
    straight_config = tiny_gpt2_config(tmp_path, corpus, STEPS, VALIDATE_EVERY, name="straight")
    # SIGTERM during step 3 (mid-epoch); SIGUSR2 during step 6, which a validation follows: the fit stops at its
    # end; SIGTERM during step 8, the last batch of an epoch: the fit stops after the next batch; SIGTERM inside
    # the sweep of the validation after step 12 (a trial's weights perturbed): the fit stops there, saved as of
    # step 12, and runs that validation (and its sweep) again when continued
    signals = (signal_at(2, "SIGTERM"), signal_at(5, "SIGUSR2"), signal_at(7, "SIGTERM"))
    signals += (signal_in_sweep(12, "SIGTERM"),)
    stopped_config = tiny_gpt2_config(tmp_path, corpus, STEPS, VALIDATE_EVERY, callbacks=signals, name="stopped")
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    main(["fit", "--config", str(straight_config), f"--trainer.default_root_dir={straight}"])
    said = []
    for expected in ("at step 3", "at step 6", "at step 9", "during the validation after step 12"):
        with pytest.raises(SystemExit) as stop:
            main(["fit", "--config", str(stopped_config), f"--trainer.default_root_dir={stopped}", "--ckpt_path=last"])
        assert stop.value.code == EXIT_STOPPED
        said.append(capsys.readouterr().err)
        assert f"{expected}: saved {stopped / 'checkpoints' / 'last.ckpt'}" in said[-1], said[-1]
    assert [line.split()[2] for text in said for line in text.splitlines() if line.startswith("stopped by")] == [
        "SIGTERM", "SIGUSR2", "SIGTERM", "SIGTERM"
    ]  # fmt: skip
    main(["fit", "--config", str(stopped_config), f"--trainer.default_root_dir={stopped}", "--ckpt_path=last"])

    assert outputs(stopped) == outputs(straight) and len(outputs(straight)) >= 6
    assert sorted(p.name for p in (stopped / "checkpoints").iterdir()) == ["last.ckpt"]
    whole = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=True)
    resumed = torch.load(stopped / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["global_step"] == whole["global_step"] == STEPS
    assert resumed["loops"]["fit_loop"]["epoch_progress"] == whole["loops"]["fit_loop"]["epoch_progress"]
    assert all(torch.equal(resumed["state_dict"][k], v) for k, v in whole["state_dict"].items())
    moments = [state["optimizer_states"][0]["state"].values() for state in (whole, resumed)]
    for a, b in zip(*moments, strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert {number: signal.getsignal(number) for number in STOP_SIGNALS} == handlers  # given back after each fit


def test_a_ddp_fit_stopped_inside_a_validation_sweep_continues_to_the_outputs_of_a_fit_never_stopped(tmp_path):
    """Two processes (gloo on CPU): SIGTERM reaches one of them inside the second trial evaluation of the sweep of
    the validation after step 4 (the other gets none). Both stop after that trial, status 75, saved as of step 4;
    continued, the fit ends with the CSVs of a DDP fit never stopped. (It exited 1 and trained again from the
    previous checkpoint.)"""
    corpus = tiny_corpus(tmp_path / "corpus", kilobytes=16)
    ddp = ("--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu")
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    straight_config = tiny_gpt2_config(tmp_path, corpus, 8, 4, name="straight")
    stopped_config = tiny_gpt2_config(tmp_path, corpus, 8, 4, callbacks=(signal_in_sweep(4, "SIGTERM"),), name="stop")
    done = run_cli("fit", "--config", str(straight_config), f"--trainer.default_root_dir={straight}", *ddp)
    assert done.returncode == 0, done.stderr[-3000:]
    resume = ("fit", "--config", str(stopped_config), f"--trainer.default_root_dir={stopped}", "--ckpt_path=last")
    first = run_cli(*resume, *ddp)
    assert first.returncode == EXIT_STOPPED, first.stderr[-3000:]
    saved = f"stopped by SIGTERM during the validation after step 4: saved {stopped / 'checkpoints' / 'last.ckpt'}"
    assert saved in first.stderr and "Traceback" not in first.stderr, first.stderr[-3000:]
    again = run_cli(*resume, *ddp)
    assert again.returncode == 0, again.stderr[-3000:]
    assert outputs(stopped) == outputs(straight) and len(outputs(straight)) >= 3


def test_the_studies_know_run_py_stop_status():
    assert STUDY_EXIT_STOPPED == EXIT_STOPPED == 75
