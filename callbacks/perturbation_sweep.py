"""``PerturbationSweep``: run a robustness sweep from inside a Lightning run (the hooks decide when).

When: at the end of training (``at_train_end``), after ``trainer.test`` (``at_test``) and,
optionally, after every validation of every ``every_n_epochs``-th epoch (sensitivity over training; skipped
during the sanity check). The sweep itself is ``cognitive_reserve.run_sweep``; its raw rows go to
``<default_root_dir>/robustness/sweep_<stage>_epoch<E>.csv`` as they are measured, where ``E`` is
the epoch the weights come from: the running one, the last one after ``fit``, the tested checkpoint's.
In a run that can validate several times per epoch (``val_check_interval`` shorter than the epoch, or a
time interval) a sweep during training is named by its global step too, ``sweep_train_epoch<E>_step<S>.csv``
(``cognitive_reserve.sensitivity.sweep_moment``), so every validation's sweep keeps its own file and resumes
from it. ``run_outputs.sweeps`` then writes the summary CSV and figure, ``tracking.panels`` logs the curves,
run-level scalars, table and figure to W&B.

Sweeps during training (stage ``train``) also build the sensitivity-over-training view (paper Figure 4
right): ``robustness/sensitivity_train.csv`` after each (with the epoch and step of each sweep), its figures
when training ends. The sweeps seen so far are part of the checkpoint, so a resumed run (``--ckpt_path last``)
continues the same view; a sweep that runs again at the same or an earlier step (resumed) replaces the later
ones in it.

With ``groups`` the sweep is layer-wise (``cognitive_reserve.groups``): all targets together, then each
group alone, in the same CSV (column ``group``); ``run_outputs.group_files`` writes the per-group summary
and group × level figure (and, per epoch, ``sensitivity_train_groups.csv``/``.png``), ``tracking.group_panels``
logs them.

The evaluation data is a fixed subset of the datamodule's ``split`` dataset, collated once and
cached on the device; under DDP every rank keeps its own shard and the module's torchmetrics
reduce across ranks, so all ranks see identical numbers. Only global rank 0 writes and logs.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import lightning as L
import torch

from callbacks.finite_training import check_sweepable
from callbacks.progress import sweep_progress
from callbacks.signal_checkpoint import stop_at_trial_boundary
from cognitive_reserve import (
    PERTURBATIONS,
    ConfigError,
    SweepCsvWriter,
    SweepGrid,
    SweepRow,
    SweepSubject,
    select_targets,
)
from cognitive_reserve.fields import Field, check_fields, declared
from cognitive_reserve.groups import GROUPINGS, check_grouping, run_grouped_sweep, split_targets, targeting
from cognitive_reserve.layerwise import GroupSummary
from cognitive_reserve.provenance import global_seed, weights_provenance
from cognitive_reserve.resume import resumable_rows, sweep_fingerprint
from cognitive_reserve.rows import all_targets
from cognitive_reserve.sensitivity import EpochSummary, sweep_moment
from cognitive_reserve.subsampling import check_trial_batch as check_subsampled_trial_batch
from cognitive_reserve.sweep import check_reach, check_stacking, check_trial_batch, reachable_grids
from cognitive_reserve.targets import check_name_patterns
from run_outputs.group_files import plot_group_sensitivity, write_group_files, write_group_sensitivity
from run_outputs.sweeps import first_last_crossovers, plot_sensitivity, write_sensitivity_table, write_sweep_files
from tracking.group_panels import log_group_sensitivity, log_group_sweep
from tracking.panels import PER_EPOCH, log_figures, log_sensitivity_table, log_sweep

Split = Literal["train", "val", "test"]


def parse_grids(field: str, perturbations: Mapping[str, Mapping[str, Any]]) -> list[SweepGrid]:
    """``{name: {levels, trials, **options}}`` → validated ``SweepGrid``s (errors name ``field.<name>...``)."""
    if not isinstance(perturbations, Mapping) or not perturbations:
        raise ConfigError(field, perturbations, "give at least one perturbation")
    grids = []
    for name, spec in perturbations.items():
        where = f"{field}.{name}"
        if not isinstance(spec, Mapping) or "levels" not in spec:
            raise ConfigError(where, spec, "expected a mapping with 'levels' (and optional 'trials')")
        options = {k: v for k, v in spec.items() if k not in ("levels", "trials", "eval_fraction")}
        try:
            grids.append(
                SweepGrid(name, spec["levels"], spec.get("trials", 20), options, spec.get("eval_fraction", 1.0))
            )
        except ConfigError as err:
            raise ConfigError(f"{where}.{err.field.split('.', 1)[-1]}", err.value, err.reason) from None
    return grids


@declared("PerturbationSweep")
class PerturbationSweep(L.Callback):
    """Sweep the module's ``robustness_subjects`` over seeded perturbation grids."""

    def __init__(
        self,
        perturbations: Annotated[
            Mapping[str, Mapping[str, Any]],
            Field(
                "`{name: {levels: [...], trials: 20, eval_fraction: 1.0, **options}}`; names: "
                f"{', '.join(f'`{name}`' for name in PERTURBATIONS)}; their levels and options: `perturbations.*`",
                valid="non-empty mapping `name → {levels, trials, eval_fraction, options}`, see `perturbations.*`",
                check=parse_grids,
            ),
        ],
        seed: Annotated[int, Field("base seed of every trial's generator (independent of the training seed)")] = 0,
        split: Annotated[
            Split, Field("dataset the sweeps during/after `fit` evaluate on (`test` sweeps use `test`)")
        ] = "val",
        every_n_epochs: Annotated[
            int,
            Field(
                "also sweep after the validation of every n-th epoch (0 = never); a run that validates several "
                "times per epoch (`val_check_interval`) sweeps after each of them, one file per step",
                ge=0,
            ),
        ] = 0,
        at_train_end: Annotated[bool, Field("sweep once when training ends")] = True,
        at_test: Annotated[bool, Field("sweep when `trainer.test` ends")] = True,
        max_eval_samples: Annotated[
            int | None, Field("evaluate on a fixed, seeded subset of this many items (null: all)", ge=1)
        ] = None,
        targets: Annotated[
            str | list[str] | None,
            Field(
                "override which parameters are damaged (regular expressions on names; null: the model's own)",
                valid="null or a regex or a non-empty list of regexes",
                check=check_name_patterns,
                later="matches at least one parameter: at fit/test start",
            ),
        ] = None,
        progress: Annotated[
            bool, Field("show a progress bar of the sweep's trials (levels × trials × models), in a terminal")
        ] = True,
        autocast_bf16: Annotated[
            bool,
            Field(
                "evaluate the damaged models under bf16 autocast (for GPUs: faster; values then differ from "
                "float32 ones, by about 1e-3 relative for perplexities)"
            ),
        ] = False,
        trial_batch: Annotated[
            int,
            Field(
                "score this many trials at once as stacked damaged copies of the targets (the linear models' "
                "batched matmuls, or `torch.func.vmap` for any `SweepableMixin` model); 1: in place, any model",
                ge=1,
                later="model support: at fit/test start",
            ),
        ] = 1,
        groups: Annotated[
            str | None,
            Field(
                "layer-wise: after all targets together, damage each group of them alone: `per_block` (the blocks "
                "the model's layout declares; GPT-2: `h.<i>`), `per_matrix` (each matrix with its bias; a fused "
                "Q/K/V projection, GPT-2's `c_attn`, cut into q, k, v), or a regex whose first capture group names "
                "the group (null: all targets together only); a structural perturbation skips groups without its units",
                valid=f"null, {', '.join(f'`{g}`' for g in GROUPINGS)} or a regex with a capture group",
                check=check_grouping,
                later="matches at least one targeted parameter: at fit/test start",
            ),
        ] = None,
    ) -> None:
        self.grids = check_fields(PerturbationSweep, locals())["perturbations"]
        check_subsampled_trial_batch(
            "PerturbationSweep.trial_batch", trial_batch, [g.eval_fraction for g in self.grids]
        )
        check_stacking("PerturbationSweep.trial_batch", trial_batch, self.grids)
        self.seed = seed
        self.split = split
        self.every_n_epochs = every_n_epochs
        self.at_train_end = at_train_end
        self.at_test = at_test
        self.max_eval_samples = max_eval_samples
        self.targets = targets
        self.progress = progress
        self.autocast = torch.bfloat16 if autocast_bf16 else None
        self.trial_batch = trial_batch
        self.groups = groups
        self._batches: dict[str, list[Any]] = {}
        self.per_epoch: list[EpochSummary] = []
        self.per_epoch_groups: list[GroupSummary] = []

    @property
    def state_key(self) -> str:
        return self._generate_state_key(split=self.split, every_n_epochs=self.every_n_epochs)

    def state_dict(self) -> dict[str, Any]:
        return {
            "per_epoch": [entry.as_record() for entry in self.per_epoch],
            "per_epoch_groups": [entry.as_record() for entry in self.per_epoch_groups],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.per_epoch = [EpochSummary.from_record(record) for record in state_dict.get("per_epoch", [])]
        groups = state_dict.get("per_epoch_groups", [])
        self.per_epoch_groups = [GroupSummary.from_record(record) for record in groups]

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not hasattr(pl_module, "robustness_subjects"):
            raise ConfigError(
                "model",
                type(pl_module).__name__,
                "is not sweepable: implement robustness_subjects() or use SweepableMixin",
            )

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check_targets(pl_module)

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check_targets(pl_module)

    def _check_targets(self, pl_module: L.LightningModule) -> None:
        """Fail before any training when the target selector (or the grouping) matches nothing, when
        ``trial_batch`` asks for stacked scoring a subject cannot do, or when a perturbation would damage nothing
        of the targets (head deletion of MLP weights)."""
        for subject in pl_module.robustness_subjects([]):
            targets = self.targets if self.targets is not None else subject.targets
            try:
                select_targets(subject.module, targets)
            except ConfigError as err:
                raise ConfigError("PerturbationSweep.targets", err.value, err.reason) from None
            if self.groups is not None:
                split_targets(subject.module, targets, self.groups, "PerturbationSweep.groups", subject.layout)
            check_trial_batch("PerturbationSweep.trial_batch", self.trial_batch, subject)
            subject.targets = targets
            check_reach(subject, self.grids, "PerturbationSweep.targets")

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        due = self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0
        if due and not trainer.sanity_checking and trainer.state.fn == "fit":
            self.sweep(trainer, pl_module, stage="train", split=self.split)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.at_train_end:
            self.sweep(trainer, pl_module, stage="fit", split=self.split)
        if self.per_epoch and trainer.is_global_zero:
            self._plot_per_epoch(trainer, Path(trainer.default_root_dir) / "robustness")

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.at_test:
            self.sweep(trainer, pl_module, stage="test", split="test")

    def sweep(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str, split: Split) -> list[SweepRow]:
        """Run every grid on every subject; returns the rows (identical on every rank).

        Trials already in this sweep's CSV (an interrupted earlier run of the same sweep: same
        weights, grids and seed) are reused, so every rank skips the same trials. A model whose weights or
        undamaged metric are not finite is refused before the first trial (``check_sweepable``).
        """
        epoch = _completed_epoch(trainer, stage)
        subjects = pl_module.robustness_subjects(self._eval_batches(trainer, split))
        for subject in subjects:
            if self.targets is not None:
                subject.targets = self.targets
        check_sweepable(subjects, stage, self.autocast, trainer.ckpt_path)
        stepped = stage == "train" and validates_within_epoch(trainer)
        moment = sweep_moment(epoch, trainer.global_step if stepped else None)
        path = Path(trainer.default_root_dir) / "robustness" / f"sweep_{stage}_{moment}.csv"
        completed = trainer.strategy.broadcast(
            self._resumable(trainer, pl_module, subjects, path, stage) if trainer.is_global_zero else None
        )
        writer = SweepCsvWriter(path) if trainer.is_global_zero else None
        was_training = pl_module.training
        pl_module.eval()
        rows: list[SweepRow] = []
        planned = [self._planned(subject) for subject in subjects]
        shown = self.progress and trainer.is_global_zero
        try:
            with sweep_progress(trainer, f"Sweep {stage}: trials", sum(planned), shown) as bar:
                for index, subject in enumerate(subjects):
                    bar.set(sum(planned[:index]), f"Sweep {stage}: trials of {subject.name}")
                    rows += run_grouped_sweep(
                        subject,
                        self.grids,
                        self.seed,
                        self.groups,
                        stage=stage,
                        epoch=epoch,
                        completed=completed,
                        on_trial=_counted(writer.write if writer else None, bar.advance, trainer),
                        autocast=self.autocast,
                        trial_batch=self.trial_batch,
                    )
        finally:
            pl_module.train(was_training)
            if writer:
                writer.close()
        if trainer.is_global_zero:
            self._report(trainer, rows, path, stage, epoch, moment if stage == "train" else None)
        return rows

    def _resumable(
        self, trainer: L.Trainer, pl_module: L.LightningModule, subjects: list[SweepSubject], path: Path, stage: str
    ) -> list[SweepRow]:
        """The finished rows of this very sweep in ``path`` (``cognitive_reserve.resume``). A ``test`` sweep's
        fingerprint includes where its weights come from, and its fingerprint file says so in a second line."""
        weights = None
        if stage == "test":
            weights = weights_provenance(pl_module, trainer.ckpt_path, global_seed(), trainer.global_step)
        fingerprint = sweep_fingerprint(subjects, self.grids, self.seed, weights) + ("+bf16" if self.autocast else "")
        fingerprint += f"+groups={self.groups}" if self.groups is not None else ""
        notes = [f"weights: {weights.describe(full=True)}"] if weights is not None else []
        return resumable_rows(path, fingerprint, notes)

    def _planned(self, subject: SweepSubject) -> int:
        """Trials one subject gets at most: all targets together, plus, in a layer-wise sweep, each group with the
        grids whose perturbation reaches it."""
        total = planned_trials(self.grids)
        if self.groups is not None:
            for group in split_targets(subject.module, subject.targets, self.groups, layout=subject.layout):
                with targeting(subject, group, everything=False):
                    total += planned_trials(reachable_grids(subject, self.grids))
        return total

    def _report(
        self, trainer: L.Trainer, rows: list[SweepRow], path: Path, stage: str, epoch: int, moment: str | None
    ) -> None:
        """Summary, figure and W&B panels of the sweep whose CSV is ``path``; ``moment``: the name of a sweep
        during training."""
        out_dir = path.parent
        reference = all_targets(rows)
        files = write_sweep_files(reference, out_dir, path.stem)
        crossovers = first_last_crossovers(reference) if stage != "train" else []
        step = trainer.global_step
        log_sweep(trainer.loggers, stage, rows, files.summaries, files.figure, epoch, step, crossovers, moment)
        if stage == "train":
            earlier = [entry for entry in self.per_epoch if _before(entry.epoch, entry.step, epoch, step)]
            self.per_epoch = earlier + [EpochSummary(epoch, summary, step) for summary in files.summaries]
            write_sensitivity_table(self.per_epoch, out_dir)
            log_sensitivity_table(trainer.loggers, self.per_epoch, step)
        if self.groups is not None:
            self._report_groups(trainer, rows, path, stage, epoch, moment)

    def _report_groups(
        self, trainer: L.Trainer, rows: list[SweepRow], path: Path, stage: str, epoch: int, moment: str | None
    ) -> None:
        """The per-group summary, figure and W&B panels of a layer-wise sweep (and its view over training)."""
        during = stage == "train"
        step = trainer.global_step
        files = write_group_files(rows, path.parent, path.stem, epoch if during else None, step if during else None)
        log_group_sweep(trainer.loggers, stage, files.summaries, files.figure, epoch, step, moment)
        if during:
            earlier = [
                entry
                for entry in self.per_epoch_groups
                if entry.epoch is not None and _before(entry.epoch, entry.step, epoch, step)
            ]
            self.per_epoch_groups = earlier + files.summaries
            write_group_sensitivity(self.per_epoch_groups, path.parent)
            log_group_sensitivity(trainer.loggers, self.per_epoch_groups, trainer.global_step)

    def _plot_per_epoch(self, trainer: L.Trainer, out_dir: Path) -> None:
        """The figures of the sensitivity over training (drawn once, when training ends)."""
        figures = plot_sensitivity(self.per_epoch, out_dir)
        keys = {f"{PER_EPOCH}/curves": figures.curves, f"{PER_EPOCH}/heatmap": figures.heatmap}
        if self.per_epoch_groups:
            keys[f"{PER_EPOCH}/groups/figure"] = plot_group_sensitivity(self.per_epoch_groups, out_dir)
        log_figures(trainer.loggers, keys, trainer.global_step)

    def _eval_batches(self, trainer: L.Trainer, split: Split) -> list[Any]:
        if split not in self._batches:
            self._batches[split] = cache_eval_batches(trainer, split, self.max_eval_samples, self.seed)
        return self._batches[split]


def planned_trials(grids: Sequence[SweepGrid]) -> int:
    """Trials one subject gets at most: one per deterministic level, the count (or adaptive maximum) elsewhere."""
    return sum(
        1 if perturbation.deterministic else grid.trials if isinstance(grid.trials, int) else grid.trials.max
        for grid in grids
        for perturbation in grid.perturbations()
    )


def _counted(
    write: Callable[[list[SweepRow]], None] | None, advance: Callable[[int], None], trainer: L.Trainer
) -> Callable:
    """``write`` (when given), then the progress bar moves by the trials in the rows (a layer-wise sweep hands
    the undamaged model's rows of every level-0 trial to a group at once); then, on every process, a stop
    signal may end the sweep there (``stop_at_trial_boundary``: the processes of a DDP fit agree)."""

    def on_trial(rows: list[SweepRow]) -> None:
        if write is not None:
            write(rows)
        advance(len({(row.perturbation, row.level, row.trial) for row in rows}))
        stop_at_trial_boundary(trainer)

    return on_trial


def cache_eval_batches(trainer: L.Trainer, split: Split, max_samples: int | None, seed: int) -> list[Any]:
    """Collate this rank's shard of a fixed subset of the ``split`` dataset, moved to the device."""
    datamodule = trainer.datamodule
    if datamodule is None:
        raise ConfigError("data", None, "PerturbationSweep needs a LightningDataModule")
    datamodule.setup("test" if split == "test" else "fit")
    loader = getattr(datamodule, f"{split}_dataloader")()
    dataset = loader.dataset
    indices = torch.arange(len(dataset))
    if max_samples is not None and max_samples < len(indices):
        chosen = torch.randperm(len(indices), generator=torch.Generator().manual_seed(seed))[:max_samples]
        indices = chosen.sort().values
    shard = indices[trainer.global_rank :: trainer.world_size].tolist()
    batch_size = loader.batch_size or 1
    return [
        trainer.strategy.batch_to_device(loader.collate_fn([dataset[i] for i in shard[start : start + batch_size]]))
        for start in range(0, len(shard), batch_size)
    ]


def validates_within_epoch(trainer: L.Trainer) -> bool:
    """Whether ``fit`` may validate more than once per epoch: every ``val_check_interval`` training batches
    with fewer batches than an epoch holds, or on a time interval (``val_check_batch`` None)."""
    if trainer.state.fn != "fit":
        return False
    batches = trainer.val_check_batch
    return batches is None or batches < trainer.num_training_batches


def _before(epoch: int, step: int | None, this_epoch: int, this_step: int) -> bool:
    """Whether an earlier sweep of the view (``epoch``, ``step``; no step in records of older checkpoints) ran
    before this one, so it stays in the view; one at this step or later is replaced (a resumed run)."""
    return epoch < this_epoch if step is None else step < this_step


def _completed_epoch(trainer: L.Trainer, stage: str) -> int:
    """Index of the epoch the weights belong to: the running one during training, the checkpoint's
    when testing one (Lightning does not restore the epoch counter for ``test``), else the last one."""
    if stage == "train":
        return trainer.current_epoch
    saved_in = _checkpoint_epoch(trainer.ckpt_path) if stage == "test" else None
    return max(trainer.current_epoch - 1, 0) if saved_in is None else saved_in


def _checkpoint_epoch(path: str | Path | None) -> int | None:
    """Index of the epoch a local Lightning checkpoint's weights come from: the last epoch its fit had
    started (its ``epoch`` field is one more when saved after an epoch ended). Memory-mapped: the
    tensors are not read. None without a checkpoint file, or when it holds more than plain weights."""
    if not path or not Path(path).is_file():
        return None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (pickle.UnpicklingError, RuntimeError):
        return None
    if not isinstance(checkpoint, dict):
        return None
    progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("total", {})
    started = progress.get("started") if isinstance(progress, dict) else None
    if isinstance(started, int) and started > 0:
        return started - 1
    epoch = checkpoint.get("epoch")
    return epoch if isinstance(epoch, int) else None
