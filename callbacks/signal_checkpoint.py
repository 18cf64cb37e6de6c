"""``SignalCheckpoint``: a fit stopped by a signal saves where it is and continues exactly from there.

``run.py`` adds it to every run. On SIGTERM (``scancel``, ``scontrol requeue``, preemption, a time limit)
or the warning signal a scheduler sends before a time limit (``SIGUSR2``, submitit's; ``--signal`` of
SLURM), the fit finishes the batch it is in, saves ``last.ckpt`` (atomically, where ``--ckpt_path last``
finds it) and stops with exit status ``EXIT_STOPPED`` (75), saying where in one line: no step is lost. Every
process of a DDP run stops at the same batch (the ranks agree at each batch's end). When a validation is due
after that batch, it runs first (with its sweeps) and the checkpoint is saved at its end, where Lightning's own
``ModelCheckpoint`` saves; after an epoch's last batch, the fit stops after the next batch. (Lightning 2.6
resumes neither exactly: from a checkpoint taken before a due validation it skips that validation, and its
sweep; from one taken at an epoch's last batch it trains the same steps but counts one epoch short, and the
test sweep of that checkpoint would be named after the wrong epoch. An epoch of one batch without validation
stops at once, with that miscount.)

What makes the continuation exact: every checkpoint also holds the random number generators' states
(Python, NumPy, torch CPU and CUDA), put back when the resumed fit starts training, and the training
loaders of this project's data modules (``datamodules.resumable``) continue their epoch's order. The
requeue itself belongs to whoever runs the job (the studies' submitit jobs): Lightning's own SLURM
auto-requeue is turned off, so there is one owner.

A signal that comes *during* a validation of a fit (its batches or its sweeps) stops the fit at once: a sweep's
weights are restored on the way out (``cognitive_reserve.interrupts``, the sweep's own ``finally``), and the
checkpoint saved is the fit as of the end of its last training step, with the random generators' states of that
moment and Lightning's validation counters marked as "stopped in the middle of a validation" (Lightning's own
restart stage), so the continued fit runs that validation again, from its first batch and with its sweeps (the
trials a sweep finished are reused from its CSV), then trains on. In a DDP fit (several processes) the signal
is recorded and the processes agree after every trial of a sweep (``stop_at_trial_boundary``, which the sweep
calls) whether any got one; they all stop at the same trial, and save and continue as one process does.

In ``test``/``validate`` a signal stops the run at the next batch's end with the same status (no checkpoint:
nothing trained); a sweep running when SIGTERM comes stops at once, its weights restored.
"""

from __future__ import annotations

import os
import random
import signal
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn

from cognitive_reserve.interrupts import defer_stops

#: ``run.py``'s exit status after a signal stopped it (EX_TEMPFAIL: run it again to continue).
EXIT_STOPPED = 75
#: The scheduler's warning signal (submitit's ``SUBMITIT_PREEMPT_SIGNAL``, default ``USR2``) and SIGTERM.
STOP_SIGNALS = (signal.SIGTERM, getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")))


class StoppedBySignal(SystemExit):
    """Raised at a batch boundary after a stop signal (and, in ``fit``, the checkpoint): exit status 75."""

    def __init__(self) -> None:
        super().__init__(EXIT_STOPPED)


class SignalCheckpoint(Callback):
    """On SIGTERM or the scheduler's warning signal: save ``last.ckpt`` at the batch's end (during a validation of
    a single-process fit: at once, as of before that validation) and stop (status 75); the generators' states in
    every checkpoint, put back on resume."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}
        self._rng_to_restore: dict[str, Any] | None = None
        self._received_step: int | None = None
        self._after_validation = False
        self._rng_before_validation: dict[str, Any] | None = None
        self._validating = False  # a validation of the fit runs: a signal stops it (DDP: at a trial boundary)
        self._stopped_in_validation = False
        self._agreeing = False  # ... of a DDP fit: the processes agree after every trial of a sweep

    # ---- signals ----------------------------------------------------------------------------------------

    def _listen(self) -> None:
        """Take over the stop signals (after Lightning registered its own handlers for the run)."""
        for number in STOP_SIGNALS:
            self._previous.setdefault(number, signal.getsignal(number))
            signal.signal(number, self._on_signal)

    def _on_signal(self, number: int, frame: Any) -> None:
        self.received = self.received or signal.Signals(number).name
        if self._validating and not self._stopped_in_validation and not self._agreeing:
            self._stopped_in_validation = True
            raise StoppedBySignal  # out of the validation (a sweep puts its weights back): saved in on_exception

    def stop_at_trial_boundary(self, trainer: pl.Trainer) -> None:
        """After a trial of a sweep in a DDP fit's validation, on every process: stop all if any got a signal."""
        if self._agreeing and not self._stopped_in_validation and self._stop_now(trainer):
            self._stopped_in_validation = True
            raise StoppedBySignal  # every process at the same trial: saved in on_exception

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._end_validation()
        for number, handler in self._previous.items():
            if signal.getsignal(number) == self._on_signal:  # Lightning may have put back its own first
                signal.signal(number, handler)
        self._previous = {}

    def _stop_now(self, trainer: pl.Trainer) -> bool:
        """Whether every process got a stop signal by now (any of them did: they all stop)."""
        return bool(trainer.strategy.reduce_boolean_decision(self.received is not None, all=False))

    # ---- fit ----------------------------------------------------------------------------------------------

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        environment = trainer._accelerator_connector.cluster_environment  # read by the signal connector next
        if isinstance(environment, SLURMEnvironment):
            environment.auto_requeue = False  # the job's runner requeues, not Lightning: one owner

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._listen()
        if self._rng_to_restore is not None:
            set_rng_states(self._rng_to_restore)
            self._rng_to_restore = None

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._received_step is None and self.received is not None:
            self._received_step = trainer.global_step
        follows = validation_follows(trainer)
        if follows:  # what a validation stopped midway saves (its iterator draws one)
            self._rng_before_validation = rng_states()
        if not self._stop_now(trainer):
            return
        last_of_epoch = batch_idx + 1 >= trainer.num_training_batches > 1  # (of an epoch of several)
        if follows:
            self._after_validation = True  # it runs first (with its sweeps); the fit stops at its end
        elif not last_of_epoch:  # after an epoch's last batch the fit stops after the next one
            self._save_and_stop(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._end_validation()
        self._rng_before_validation = None
        if self._after_validation and trainer.state.fn == TrainerFn.FITTING:
            self._save_and_stop(trainer)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        """A signal stopped a validation of the fit: save the fit as it was before that validation (Lightning
        then tears the run down and exits with status 75)."""
        self._end_validation()
        if not (self._stopped_in_validation and isinstance(exception, StoppedBySignal)):
            return
        path = last_checkpoint_path(trainer)
        if path is not None:
            save_atomically(trainer, path)
        where = f"saved {path}; --ckpt_path last runs it again and continues" if path else "checkpointing is off"
        step = trainer.global_step
        self._say(trainer, f"stopped by {self.received} during the validation after step {step}: {where}")

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        if self._stopped_in_validation:
            progress = checkpoint["loops"]["fit_loop"]["epoch_loop.val_loop.batch_progress"]
            checkpoint["loops"]["fit_loop"]["epoch_loop.val_loop.batch_progress"] = validation_to_redo(progress)

    def _save_and_stop(self, trainer: pl.Trainer) -> None:
        path = last_checkpoint_path(trainer)
        if path is not None:
            save_atomically(trainer, path)
        where = f"saved {path}; --ckpt_path last continues it" if path else "no checkpoint: checkpointing is off"
        received = f" (received at step {self._received_step})" if self._received_step is not None else ""
        self._say(trainer, f"stopped by {self.received or 'a signal'}{received} at step {trainer.global_step}: {where}")
        raise StoppedBySignal

    # ---- test / validate (outside fit) --------------------------------------------------------------------

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._listen()

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn != TrainerFn.FITTING:
            self._listen()
        elif not trainer.sanity_checking and self._rng_before_validation is not None:
            self._validating = True
            self._agreeing = trainer.world_size > 1
            defer_stops(self._agreeing)  # a SIGTERM inside a sweep is recorded, not raised, on every process

    def _end_validation(self) -> None:
        self._validating = self._agreeing = False
        defer_stops(False)

    def on_test_batch_end(self, trainer: pl.Trainer, *args: Any, **kwargs: Any) -> None:
        self._stop_evaluation(trainer)

    def on_validation_batch_end(self, trainer: pl.Trainer, *args: Any, **kwargs: Any) -> None:
        if trainer.state.fn != TrainerFn.FITTING:  # in a fit, the training batch's end decides
            self._stop_evaluation(trainer)

    def _stop_evaluation(self, trainer: pl.Trainer) -> None:
        if self._stop_now(trainer):
            self._say(trainer, f"stopped by {self.received or 'a signal'} before the end of {trainer.state.fn.value}")
            raise StoppedBySignal

    # ---- the generators' states in every checkpoint ----------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self._rng_before_validation if self._stopped_in_validation else rng_states()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._rng_to_restore = state_dict.get("rng")

    @staticmethod
    def _say(trainer: pl.Trainer, message: str) -> None:
        if trainer.is_global_zero:
            print(message, file=sys.stderr, flush=True)


def stop_at_trial_boundary(trainer: pl.Trainer) -> None:
    """What a sweep calls after every trial, on every process (``SignalCheckpoint.stop_at_trial_boundary``)."""
    for callback in trainer.callbacks:
        if isinstance(callback, SignalCheckpoint):
            callback.stop_at_trial_boundary(trainer)


def validation_follows(trainer: pl.Trainer) -> bool:
    """Whether the fit validates after the batch that just ended (Lightning's own rule for it)."""
    loop = trainer.fit_loop
    return bool(loop.epoch_loop._should_check_val_fx(loop._data_fetcher))


def validation_to_redo(progress: dict[str, Any]) -> dict[str, Any]:
    """Lightning's validation batch counters (``_BatchProgress.state_dict``) of a validation stopped midway, made
    those of one stopped in its first batch: Lightning's "restarted mid-evaluation" stage (a batch started, not
    processed), which makes the resumed fit run the whole validation again before it trains on."""
    before = progress["total"]["completed"] - progress["current"]["completed"]  # batches counted before it began
    return {
        "total": {"ready": before + 1, "started": before + 1, "processed": before, "completed": before},
        "current": {"ready": 1, "started": 1, "processed": 0, "completed": 0},
        "is_last_batch": False,
    }


def last_checkpoint_path(trainer: pl.Trainer) -> Path | None:
    """Where ``--ckpt_path last`` looks: ``last.ckpt`` in the first ModelCheckpoint's directory."""
    callback = trainer.checkpoint_callback
    if not isinstance(callback, ModelCheckpoint) or callback.dirpath is None:
        return None
    return Path(callback.dirpath) / f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"


def save_atomically(trainer: pl.Trainer, path: Path) -> None:
    """``trainer.save_checkpoint`` to a temporary file renamed over ``path``: a kill mid-save leaves the old one.

    The ModelCheckpoint is told first that ``path`` is its last checkpoint (the state saved with it says so),
    so the resumed fit writes its next ``last.ckpt`` over it instead of beside it as ``last-v1.ckpt``."""
    trainer.checkpoint_callback.last_model_path = str(path)
    temporary = path.with_name(f".{path.name}.saving")
    trainer.save_checkpoint(temporary)
    if trainer.is_global_zero:
        os.replace(temporary, path)
    trainer.strategy.barrier("signal-checkpoint")


def rng_states() -> dict[str, Any]:
    """The states of Python's, NumPy's, torch's CPU and CUDA generators, as plain tensors and lists (a
    ``weights_only`` load reads them)."""
    name, keys, position, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "python": [version, list(internal), gauss_next],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else [],
    }


def set_rng_states(states: dict[str, Any]) -> None:
    """Put back what ``rng_states`` saved."""
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))
    name, keys, position, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
