"""``StepMonitor``: the shared schedule, files and logging of the training monitors.

A monitor measures a few scalars of the weights when training starts and every ``every_n_steps``
optimizer steps (each step at most once, also with gradient accumulation), on global rank 0 only
(every rank holds the same weights under DDP, so the others have nothing to add and take part in
no collective). Values go to every logger under ``<prefix>/<name>/<quantity>`` with the step and the
epoch, and to ``<default_root_dir>/monitors/<prefix>.csv``; ``<prefix>.png`` plots the history when
training ends. The last measured step is part of the checkpoint: a resumed run (``--ckpt_path``)
cuts the CSV back to it and continues the same history.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger

from cognitive_reserve.errors import ConfigError
from cognitive_reserve.fields import Field
from cognitive_reserve.history import HistoryCsv, HistoryRow, plot_history
from tracking.panels import log_figures


def compile_pattern(field: str, pattern: str) -> re.Pattern[str]:
    """``re.compile(pattern)``, or a ``ConfigError`` naming ``field``."""
    try:
        return re.compile(pattern)
    except (re.error, TypeError) as err:
        raise ConfigError(field, pattern, f"not a valid regular expression ({err})") from None


#: The monitors' ``strip_prefix`` field.
STRIP_PREFIX = Field(
    "regular expression removed from the start of parameter names in log keys",
    valid="a valid regex",
    check=compile_pattern,
)


class StepMonitor(L.Callback):
    """Base class: subclasses define ``prefix``, ``select`` and ``measure``."""

    #: First part of every logged key and the file name under ``monitors/``.
    prefix: str
    #: The quantity the end-of-training figure shows, and its axis label.
    plot_quantity: str
    plot_label: str

    def __init__(self, every_n_steps: int) -> None:
        self.every_n_steps = every_n_steps  # checked by the subclass's declaration
        self._last_step = -1
        self._history: HistoryCsv | None = None

    @abstractmethod
    def select(self, pl_module: L.LightningModule) -> None:
        """Find what to measure in ``pl_module``; raise ``ConfigError`` when nothing matches."""

    @abstractmethod
    def measure(self, step: int) -> dict[tuple[str, str], torch.Tensor]:
        """``{(name, quantity): 0-d tensor}`` for the current weights (no host sync needed)."""

    def media(self, step: int) -> dict[str, Any]:
        """Extra W&B objects (histograms, ...) to log with this step's scalars."""
        return {}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.select(pl_module)  # after the module's own setup (which may build its layers), before training

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self._history = HistoryCsv(Path(trainer.default_root_dir) / "monitors" / f"{self.prefix}.csv")
            self._history.truncate_after(self._last_step)
        if self._last_step < 0 or not _continues_this_run(trainer):  # the weights the fit starts from; a fit
            self.record(trainer)  # that continues its own run measures on its usual steps, as if never stopped

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step % self.every_n_steps == 0:
            self.record(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or self._history is None or not self._history.path.exists():
            return
        figure = plot_history(
            self._history.read(),
            self.plot_quantity,
            self._history.path.with_suffix(".png"),
            ylabel=self.plot_label,
            title=f"{self.prefix}: {self.plot_quantity}",
        )
        log_figures(trainer.loggers, {f"{self.prefix}/figure": figure}, trainer.global_step)

    def record(self, trainer: L.Trainer) -> None:
        """Measure and log the current step, unless it was measured already."""
        step = trainer.global_step
        if step == self._last_step:
            return
        self._last_step = step
        if not trainer.is_global_zero:
            return
        measured = self.measure(step)
        values = torch.stack([value.detach().double() for value in measured.values()]).tolist()  # one sync
        epoch = trainer.current_epoch
        rows = [HistoryRow(step, epoch, name, qty, v) for (name, qty), v in zip(measured, values, strict=True)]
        if self._history is not None:
            self._history.append(rows)
        metrics: dict[str, Any] = {f"{self.prefix}/{r.name}/{r.quantity}": r.value for r in rows}
        metrics["epoch"] = epoch
        media = self.media(step)
        for logger in trainer.loggers:
            logger.log_metrics({**metrics, **media} if isinstance(logger, WandbLogger) else metrics, step=step)

    def state_dict(self) -> dict[str, Any]:
        return {"last_step": self._last_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._last_step = int(state_dict["last_step"])


def _continues_this_run(trainer: L.Trainer) -> bool:
    """Whether the fit continues a checkpoint of its own run directory (not a branch from another run's)."""
    if not trainer.ckpt_path:
        return False
    return Path(trainer.ckpt_path).resolve().is_relative_to(Path(trainer.default_root_dir).resolve())
