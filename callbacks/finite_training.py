"""``FiniteTraining``: a fit whose loss or gradients stop being finite stops at once, and no checkpoint ever
holds non-finite weights.

A learning rate far too high (``--model.init_args.lr 1e6`` on the tiny GPT-2) used to end in "Run finished",
exit status 0 and a ``last.ckpt`` full of NaN — or, a few steps later, in the σ_max monitor's ``linalg.svd``
traceback. Now, before every optimizer step, the loss of the step (every micro-batch of it) and the gradients
are checked; the first non-finite one raises ``TrainingDiverged`` *before* the optimizer applies it, naming the
step, what was not finite, the learning rate of the step (the likely cause) and the last checkpoint written —
all finite, because a checkpoint whose weights are not finite is never written (``on_save_checkpoint``). The
run's ``last.ckpt`` therefore stays the last finite one: ``--ckpt_path last`` resumes from it. Weights set
without gradients (the linear ``svd`` solver's closed form) are checked at every training epoch's end.

Under DDP the gradients are already the same on every process; the decision (loss of any process, or
gradients) is reduced across processes, so all of them stop at the same step, none waits in a collective.
With fp16 loss scaling non-finite gradients are part of the method (the scaler skips those steps): only the
loss is checked there. ``run.py`` adds this callback to every run.

``check_sweepable`` keeps a sweep from writing a table of ``inf``: a model whose weights, or whose undamaged
metric, are not finite is refused in one line before the first trial.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from cognitive_reserve.checkpoints import nonfinite_tensors
from cognitive_reserve.errors import ConfigError
from cognitive_reserve.scoring import clean_scores
from cognitive_reserve.subject import SweepSubject


class TrainingDiverged(RuntimeError):
    """A fit stopped because its loss, gradients or weights stopped being finite; ``str()`` is one line."""


class FiniteTraining(L.Callback):
    """Stop a fit at the first non-finite loss or gradient, before the optimizer step applies it."""

    def __init__(self) -> None:
        self._losses: list[torch.Tensor] = []

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        self._losses.append(loss.detach())

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        losses, self._losses = self._losses, []
        checks: dict[str, torch.Tensor] = {}
        if losses:
            checks["loss"] = torch.isfinite(torch.stack([loss.float() for loss in losses])).all()
        gradients = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if gradients and not _scaled(trainer):  # one fused norm per device and dtype
            checks["gradients"] = torch.isfinite(torch.nn.utils.get_total_norm(gradients)).to(pl_module.device)
        finite = dict(zip(checks, torch.stack(list(checks.values())).tolist(), strict=True)) if checks else {}
        problems = [f"the loss is {_shown(losses)}"] if not finite.get("loss", True) else []
        problems += ["the gradients are not finite"] if not finite.get("gradients", True) else []
        if trainer.strategy.reduce_boolean_decision(bool(problems), all=False):
            what = " and ".join(problems) or "the loss or the gradients of another process are not finite"
            lr = optimizer.param_groups[0].get("lr")
            cause = f"a learning rate too high (lr {lr:.3g} at this step)" if lr is not None else "the learning rate"
            raise TrainingDiverged(
                f"training diverged at optimizer step {trainer.global_step + 1} (epoch {trainer.current_epoch}): "
                f"{what}; likely cause: {cause}; {_resume_hint(trainer)}"
            )

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        bad = nonfinite_tensors(dict(pl_module.named_parameters()))
        if bad:
            raise TrainingDiverged(
                f"training diverged by the end of epoch {trainer.current_epoch} (step {trainer.global_step}): "
                f"non-finite weights in {_names(bad)}; {_resume_hint(trainer)}"
            )

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        bad = nonfinite_tensors(checkpoint.get("state_dict", {}))
        if bad:  # raised before the file is written: last.ckpt stays the last finite checkpoint
            raise TrainingDiverged(
                f"training diverged by step {trainer.global_step}: non-finite weights in {_names(bad)}, "
                f"checkpoint not written; {_resume_hint(trainer)}"
            )


def check_sweepable(
    subjects: list[SweepSubject], stage: str, autocast: torch.dtype | None, ckpt_path: str | Path | None
) -> None:
    """Refuse to sweep a subject whose weights are not finite or, except in per-epoch sweeps (``train``: the
    fit's loss is watched already, and an extra evaluation per epoch would cost), whose undamaged metric is not.

    Raises ``ConfigError`` naming ``ckpt_path`` (or ``model``) for ``test``, ``TrainingDiverged`` during a fit.
    Every process of a DDP run holds the same weights and metrics, so all of them raise together.
    """
    for subject in subjects:
        reason = _unmeasurable(subject, stage, autocast)
        if reason is None:
            continue
        if stage in ("fit", "train"):
            raise TrainingDiverged(f"training diverged: {reason}")
        field, value = ("ckpt_path", str(ckpt_path)) if ckpt_path else ("model", subject.name)
        raise ConfigError(field, value, reason)


def _unmeasurable(subject: SweepSubject, stage: str, autocast: torch.dtype | None) -> str | None:
    bad = nonfinite_tensors(dict(subject.module.named_parameters()))
    if bad:
        return f"{subject.name} holds non-finite weights ({_names(bad)}); nothing swept"
    if stage == "train":
        return None
    scores = clean_scores(subject, autocast)
    worst = {metric: value for metric, value in scores.items() if not math.isfinite(value)}
    if worst:
        shown = ", ".join(f"{metric}={value}" for metric, value in worst.items())
        return f"the undamaged {subject.name} scores {shown}: no damage can be measured against it; nothing swept"
    return None


def _scaled(trainer: L.Trainer) -> bool:
    """Whether fp16 loss scaling is on: its scaler expects, and skips, steps with non-finite gradients."""
    return getattr(trainer.precision_plugin, "scaler", None) is not None


def _shown(losses: list[torch.Tensor]) -> str:
    """The first non-finite loss of the step: ``nan``, ``inf`` or ``-inf``."""
    return str(next(value for value in (float(loss) for loss in losses) if not math.isfinite(value)))


def _names(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _resume_hint(trainer: L.Trainer) -> str:
    """The last checkpoint of this run (every one written is finite) and the ways on."""
    saved = _last_checkpoint(trainer)
    if saved is None:
        return "no checkpoint was written before it; lower the learning rate and train again"
    resume = "last" if saved.name == "last.ckpt" else str(saved)
    return (
        f"the last checkpoint, {saved}, is finite: resume from it with --ckpt_path {resume}, or lower the "
        "learning rate and train again with --start_over true"
    )


def _last_checkpoint(trainer: L.Trainer) -> Path | None:
    """The newest ``*.ckpt`` in the run's checkpoint directories (None when there is none)."""
    callbacks = [cb for cb in trainer.checkpoint_callbacks if isinstance(cb, ModelCheckpoint) and cb.dirpath]
    folders = {Path(cb.dirpath) for cb in callbacks}
    files = [path for folder in folders for path in folder.glob("*.ckpt")]
    return max(files, key=lambda path: path.stat().st_mtime_ns) if files else None
