"""Progress bars say what they count (steps of ``max_steps``, epochs from 1, a sweep's trials) and draw
nothing off a terminal; the noise every run printed is silenced by exact message and module only."""

from __future__ import annotations

import logging
import warnings

import lightning as L
from lightning.pytorch.demos.boring_classes import BoringModel

from callbacks.perturbation_sweep import planned_trials
from callbacks.progress import RunProgressBar, sweep_progress
from cognitive_reserve.sweep import SweepGrid

LEAF_SPEC = "`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec)` instead."


class SweepDuringFit(L.Callback):
    """Runs a 6-trial sweep bar at the end of training, as ``PerturbationSweep`` does, and records it."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        with sweep_progress(trainer, "Sweep fit: trials", 6, enabled=True) as bar:
            for _ in range(6):
                bar.advance()
            self.task = trainer.progress_bar_callback.progress.tasks[-1]
            self.shown = (self.task.description, self.task.completed, self.task.total, self.task.visible)


def fit(**limits) -> tuple[RunProgressBar, SweepDuringFit]:
    bar, sweep = RunProgressBar(), SweepDuringFit()
    trainer = L.Trainer(
        callbacks=[bar, sweep], logger=False, enable_checkpointing=False, enable_model_summary=False,
        limit_train_batches=2, limit_val_batches=0, accelerator="cpu", **limits,
    )  # fmt: skip
    trainer.fit(BoringModel())
    return bar, sweep


def test_step_limited_fit_counts_steps_of_max_steps_across_epochs():
    bar, sweep = fit(max_steps=5)
    train = bar.progress.tasks[bar.train_progress_bar_id]
    assert train.description.strip() == "Steps · epoch 3"  # 2 steps per epoch: the 5th is in epoch 3
    assert (train.completed, train.total) == (5, 5)
    assert sweep.shown == ("Sweep fit: trials", 6, 6, True) and not sweep.task.visible  # hidden once done


def test_epoch_limited_fit_counts_epochs_from_one():
    bar, _ = fit(max_epochs=2)
    train = bar.progress.tasks[bar.train_progress_bar_id]
    assert train.description.strip() == "Epoch 2/2" and (train.completed, train.total) == (2, 2)


def test_without_the_run_bar_the_sweep_bar_is_silent_off_a_terminal(capsys):
    trainer = L.Trainer(enable_progress_bar=False, logger=False)
    with sweep_progress(trainer, "Sweep test: trials", 3, enabled=True) as bar:
        for _ in range(3):
            bar.advance()
    assert bar.completed == 3 and capsys.readouterr() == ("", "")  # pytest's output is not a terminal


def test_planned_trials_are_levels_times_trials_and_one_per_deterministic_level():
    grids = [SweepGrid("random_deletion", [0.0, 0.1, 0.2], 4), SweepGrid("magnitude_pruning", [0.0, 0.5])]
    assert planned_trials(grids) == 1 + 2 * 4 + 2  # level 0 damages nothing: one trial, as pruning levels


def test_known_noise_is_silenced_by_message_and_module_only(caplog):
    from run_cli.noise import quiet_known_noise

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_known_noise()
        for module, message in [
            ("lightning.pytorch.utilities._pytree", LEAF_SPEC),  # silenced
            ("my_package.trees", LEAF_SPEC),  # the same words from elsewhere: kept
            ("lightning.pytorch.utilities._pytree", "`something` is deprecated"),  # another warning there: kept
        ]:
            warnings.warn_explicit(message, FutureWarning, "x.py", 1, module=module)
    assert [(w.filename, str(w.message)) for w in caught] == [
        ("x.py", LEAF_SPEC),
        ("x.py", "`something` is deprecated"),
    ]
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    with caplog.at_level(logging.INFO, logger=logger.name):
        logger.info("💡 Tip: For seamless cloud logging and experiment tracking, try installing [litlogger]")
        logger.info("GPU available: False, used: False")
    assert caplog.messages == ["GPU available: False, used: False"]


def test_checkpoint_warnings_are_silenced_only_where_they_are_expected(tmp_path):
    from run_cli.noise import quiet_expected_checkpoint_warnings

    branch = "Be aware that when using `ckpt_path`, callbacks used to create the checkpoint need to be provided"
    not_empty = f"Checkpoint directory {tmp_path}/checkpoints exists and is not empty."

    def shown(ckpt_path: str | None) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quiet_expected_checkpoint_warnings(tmp_path, ckpt_path)
            for message in (branch, not_empty):
                warnings.warn(message, UserWarning, stacklevel=1)
        return [str(w.message) for w in caught]

    assert shown(None) == [branch, not_empty]  # a plain fit: both would be real
    assert shown("last") == [branch]  # continuing its own run: its checkpoints are expected there
    assert shown(str(tmp_path.parent / "base" / "step=200.ckpt")) == [not_empty]  # a branch: other callbacks
