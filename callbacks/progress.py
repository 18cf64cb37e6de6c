"""Progress bars that say what they count and how much is left.

``RunProgressBar`` (``run.py`` adds it unless a config brings its own bar or sets
``trainer.enable_progress_bar: false``) is Lightning's rich bar with two changes: a step-limited fit
(``max_steps``) shows one bar of optimizer steps out of ``max_steps`` (``Steps · epoch 38 ━━ 120/300``, not
``Epoch 37/-2``), and an epoch-limited one counts epochs from 1 (``Epoch 1/1``, not ``Epoch 0/0``).
``sweep_progress`` is the bar of a robustness sweep: trials done out of trials planned (levels × trials per
level × models), on the run's rich bar when there is one, else a ``tqdm`` bar. Neither draws anything when
the output is not a terminal (nohup, CI logs): rich then prints the final state once, tqdm nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar
from tqdm.auto import tqdm


class RunProgressBar(RichProgressBar):
    """Lightning's ``RichProgressBar``, counting steps of ``max_steps`` or epochs from 1 (module docstring)."""

    def _counts_steps(self) -> bool:
        return self.trainer.max_steps is not None and self.trainer.max_steps > 0

    @property
    def total_train_batches(self) -> int | float:
        return self.trainer.max_steps if self._counts_steps() else super().total_train_batches

    def _get_train_description(self, current_epoch: int) -> str:
        if self._counts_steps():
            description = f"Steps · epoch {current_epoch + 1}"
        else:
            max_epochs = self.trainer.max_epochs
            description = f"Epoch {current_epoch + 1}" + (f"/{max_epochs}" if max_epochs and max_epochs > 0 else "")
        return f"{description:{len(self.validation_description)}}"

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._counts_steps() or self.train_progress_bar_id is None or self.progress is None:
            super().on_train_epoch_start(trainer, pl_module)  # a new bar (steps: total max_steps) or a reset one
        else:  # steps: one bar for the whole fit, only its label changes
            description = self._get_train_description(trainer.current_epoch)
            self.progress.update(self.train_progress_bar_id, description=self._styled(description))
        if self._counts_steps():
            self._update(self.train_progress_bar_id, trainer.global_step)  # a resumed fit starts where it was

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not self._counts_steps():
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
            return
        if not self.is_disabled and self.train_progress_bar_id is None:
            self._initialize_train_progress_bar_id()
        self._update(self.train_progress_bar_id, trainer.global_step)
        self._update_metrics(trainer, pl_module)
        self.refresh()

    def add_task(self, description: str, total: int) -> Any:
        """A new bar under the run's bars (None while the display is not running)."""
        if self.is_disabled or self.progress is None or self._progress_stopped:
            return None
        task = self._add_task(total, description)
        self.refresh()
        return task

    def update_task(self, task: Any, completed: int, description: str | None = None) -> None:
        if self.progress is None:
            return
        if description is not None:
            self.progress.update(task, description=self._styled(description))
        self._update(task, completed)

    def _styled(self, description: str) -> str:
        return f"[{self.theme.description}]{description}" if self.theme.description else description

    def remove_task(self, task: Any) -> None:
        if self.progress is not None:
            self.progress.update(task, visible=False)
            self.refresh()


class SweepBar:
    """Trials done of a sweep, shown on the run's bar or on a ``tqdm`` bar."""

    def __init__(self, bar: RunProgressBar | None, task: Any, fallback: tqdm | None) -> None:
        self._bar, self._task, self._fallback = bar, task, fallback
        self.completed = 0

    def advance(self, count: int = 1, description: str | None = None) -> None:
        self.set(self.completed + count, description)

    def set(self, completed: int, description: str | None = None) -> None:
        self.completed = completed
        if self._bar is not None:
            self._bar.update_task(self._task, completed, description)
        elif self._fallback is not None:
            if description is not None:
                self._fallback.set_description_str(description, refresh=False)
            self._fallback.update(completed - self._fallback.n)


@contextmanager
def sweep_progress(trainer: L.Trainer, description: str, total: int, enabled: bool) -> Iterator[SweepBar]:
    """A bar of ``total`` trials for the block; nothing shown when ``enabled`` is false or off a terminal."""
    run_bar = trainer.progress_bar_callback if enabled else None
    task = run_bar.add_task(description, total) if isinstance(run_bar, RunProgressBar) else None
    if task is not None:
        bar = SweepBar(run_bar, task, None)  # type: ignore[arg-type]
        try:
            yield bar
        finally:
            run_bar.remove_task(task)  # type: ignore[union-attr]
        return
    fallback = tqdm(total=total, desc=description, unit="trial", disable=None if enabled else True, leave=False)
    try:
        yield SweepBar(None, None, fallback)
    finally:
        fallback.close()
