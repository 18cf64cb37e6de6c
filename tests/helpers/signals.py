"""Callbacks that put a real signal or a real pause into a real run (named by ``class_path`` in a config)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback


class SignalAtStep(Callback):
    """Sends ``signal`` to this process when a training batch starts at global step ``step``, once per run
    directory (a marker file remembers it, so the resumed fit is not stopped again)."""

    def __init__(self, step: int, signal: str = "SIGTERM") -> None:
        self.step = step
        self.signal = signal

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        marker = Path(trainer.default_root_dir) / f"signalled-{self.signal}-{self.step}"
        if trainer.global_step == self.step and trainer.is_global_zero and not marker.exists():
            marker.touch()
            os.kill(os.getpid(), getattr(signal, self.signal))


class SignalInSweep(Callback):
    """Sends ``signal`` to this process from inside the ``trial``-th evaluation of the sweeps of the validation
    after global step ``step`` (a trial's weights perturbed), once per run directory (a marker file)."""

    def __init__(self, step: int, signal: str = "SIGTERM", trial: int = 2) -> None:
        self.step = step
        self.signal = signal
        self.trial = trial

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        subjects = pl_module.robustness_subjects
        marker = Path(trainer.default_root_dir) / f"signalled-{self.signal}-sweep-{self.step}"

        def signalling(batches: Any) -> Any:
            found = subjects(batches)
            if trainer.validating and trainer.global_step == self.step and not marker.exists():
                for subject in found:
                    subject.evaluate = self._counted(subject.evaluate, marker)
            return found

        pl_module.robustness_subjects = signalling

    def _counted(self, evaluate: Any, marker: Path) -> Any:
        calls = [0]

        def evaluate_and_signal() -> Any:
            calls[0] += 1
            if calls[0] == self.trial and not marker.exists():
                marker.touch()
                os.kill(os.getpid(), getattr(signal, self.signal))
            return evaluate()

        return evaluate_and_signal


class PacedSteps(Callback):
    """Sleeps ``seconds`` after every training batch (a run that takes long in wall time and little CPU), and
    writes the global step it reached to ``<default_root_dir>/steps-done`` (a test can wait for it)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_train_batch_end(self, trainer: Any, *args: Any, **kwargs: Any) -> None:
        if trainer.is_global_zero:
            (Path(trainer.default_root_dir) / "steps-done").write_text(str(trainer.global_step))
        time.sleep(self.seconds)


def sigint_as_in_a_terminal() -> None:
    """A child's ``preexec_fn``: SIGINT at its default, as an interactive shell starts a command. A suite started in
    the background (``cmd &``, ``nohup``) ignores SIGINT, and an ignored signal stays ignored across ``exec``."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def steps_done(root: Path) -> int:
    """The step a ``PacedSteps`` run under ``root`` reached (-1 before its first)."""
    try:
        return int((root / "steps-done").read_text() or -1)
    except (FileNotFoundError, ValueError):
        return -1
