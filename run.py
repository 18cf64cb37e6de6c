"""Command line entry point: ``python run.py {fit,validate,test,predict} --config CONFIG.yaml``.

A ``LightningCLI`` with OmegaConf interpolation, W&B that goes offline by itself when there are
no credentials, the resolved config sent to the logger, one-line errors for bad input (unknown keys
and wrong types too, see ``run_cli.parser_errors``; no abbreviated options), and a short end-of-run summary
(outputs, W&B run, headline numbers, the last validation metrics).

Everything is validated before anything is created: a refused command prints one line and leaves no
directory, W&B run or seed message behind. ``fit`` into a ``default_root_dir`` that already holds a run
(a ``checkpoints/*.ckpt``) is refused unless it continues that run (``--ckpt_path last``) or starts over
(``--start_over true`` moves the old directory aside to ``<default_root_dir>.old-<n>``; nothing is deleted).
``validate``/``test``/``predict`` measure trained weights only, and say which (``run_cli.weights``): a checkpoint,
the run's own ``last.ckpt``, the model's own trained weights, or the untrained model on request
(``--ckpt_path initial``). A fit whose loss or gradients stop being finite stops at once with one line and exit
status 1 (``callbacks.FiniteTraining``), keeping its last finite checkpoint.
"""

from __future__ import annotations

import errno
import inspect
import logging
import sys
import tempfile
import time
import typing
import warnings
from pathlib import Path
from typing import Any

from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from callbacks import FiniteTraining, RunProgressBar, TrainingDiverged
from callbacks.signal_checkpoint import SignalCheckpoint
from cognitive_reserve.checkpoints import check_finite_weights, load_checkpoint
from cognitive_reserve.errors import ConfigError
from cognitive_reserve.provenance import WeightsProvenance, global_seed, weights_provenance
from run_cli.config_check import ParserContext, import_class
from run_cli.fit_directory import check_fit_directory
from run_cli.noise import HeldMessages, quiet_expected_checkpoint_warnings, quiet_known_noise
from run_cli.parser_errors import explain, trainer_error
from run_cli.weights import INITIAL, MEASURING, check_measured_weights, measured_checkpoint, weights_line
from run_outputs.run_summary import describe_run
from tracking import finish_wandb_run, use_offline_wandb_without_credentials

SEED_LOGGER = "lightning.fabric.utilities.seed"


class LoggerSaveConfigCallback(SaveConfigCallback):
    """Also sends the full resolved config to every logger (the W&B run config), with the measured ``weights``
    of a ``validate``/``test``/``predict`` (``WeightsProvenance.as_config``)."""

    weights: WeightsProvenance | None = None

    def save_config(self, trainer: Any, pl_module: Any, stage: str) -> None:
        config = {"config": self.config.clone().as_dict()}
        if self.weights is not None:
            config["weights"] = self.weights.as_config()
        for logger in trainer.loggers:
            logger.log_hyperparams(config)


class OneLineErrorParser(LightningArgumentParser):
    """A parser whose refusals end in one line ``error: field=value: reason`` and exit status 2."""

    context: ParserContext | None = None

    def error(self, message: str, ex: Exception | None = None) -> None:  # type: ignore[override]
        if not self.exit_on_error:  # a nested parser: jsonargparse catches this and tries the next type
            super().error(message, ex)
        context = self.context or ParserContext(sys.argv[1:], option_keys([self]))
        print(f"error: {explain(message, context)}", file=sys.stderr)
        raise SystemExit(2)


class CognitiveReserveCLI(LightningCLI):
    """LightningCLI with this project's defaults (see module docstring)."""

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        self._set_aside: Path | None = None
        self._wandb_dirs: list[str] = []
        self._seed_message: str | None = None
        self._checkpoints = Path("checkpoints")
        self._initial_weights = False
        self._picked_up = False
        self._weights: WeightsProvenance | None = None
        with warnings.catch_warnings():  # the filters below hold for this command only
            quiet_known_noise()
            super().__init__(
                args=args,
                run=run,
                parser_class=OneLineErrorParser,
                parser_kwargs={"parser_mode": "omegaconf+", "allow_abbrev": False},
                save_config_callback=LoggerSaveConfigCallback,
                save_config_kwargs={"overwrite": True},
                subclass_mode_model=True,
                subclass_mode_data=True,
            )

    def _prepare_subcommand_parser(self, klass: type, subcommand: str, **kwargs: Any) -> LightningArgumentParser:
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        if subcommand == "fit":
            parser.add_argument(
                "--start_over",
                type=bool,
                default=False,
                help="when trainer.default_root_dir already holds a run, move it aside to "
                "<default_root_dir>.old-<n> (never deleted) and train afresh; --ckpt_path last continues it instead",
            )
        return parser

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Give every parser what its one-line errors need: the arguments, the keys it accepts and their types."""
        given = list(sys.argv[1:] if args is None else args) if isinstance(args, list | tuple | None) else []
        subparsers = getattr(self, "_subcommand_parsers", {})
        subcommand = next((arg for arg in given if arg in subparsers), None)
        keys = {name: set(option_keys([sub])) for name, sub in subparsers.items()}
        own = keys.get(subcommand, set().union(*keys.values()))
        elsewhere = {key: sorted(n for n in keys if key in keys[n]) for key in set().union(*keys.values()) - own}
        options = option_keys([parser]) + sorted(own)
        context = ParserContext(given, options, subcommand, elsewhere, option_hints(subcommand), list(subparsers))
        for each in [parser, *subparsers.values()]:
            each.context = context
        super().parse_arguments(parser, args)

    def _set_seed(self) -> None:
        """Seed as LightningCLI does; its "Seed set to" line waits until the config has been validated."""
        held = HeldMessages()
        logger = logging.getLogger(SEED_LOGGER)
        logger.addFilter(held)
        try:
            super()._set_seed()
        finally:
            logger.removeFilter(held)
        self._seed_message = held.messages[-1] if held.messages else None

    def _parse_ckpt_path(self) -> None:
        """Resolve which checkpoint a measuring stage loads (``run_cli.weights``), and vet ``--ckpt_path`` before
        Lightning reads hyperparameters from it (see ``vet_checkpoint``)."""
        subcommand = self.config.get("subcommand")
        if not subcommand:
            return
        config = self.config[subcommand]
        root = Path(config.trainer.default_root_dir or ".")
        self._checkpoints = _checkpoint_directory(config.trainer.callbacks, root)
        self._initial_weights = config.get("ckpt_path") == INITIAL
        config.ckpt_path, self._picked_up = measured_checkpoint(subcommand, config.get("ckpt_path"), self._checkpoints)
        vet_checkpoint(config.get("ckpt_path"), config.model)
        before = _model_arguments(config.model)
        super()._parse_ckpt_path()
        after = _model_arguments(self.config[subcommand].model)
        replaced = [  # values linked from the data module are None until instantiation: not replaced
            f"{name}={value!r} -> {after.get(name)!r}"
            for name, value in before.items()
            if value is not None and after.get(name) != value
        ]
        if replaced:
            warnings.warn(
                f"ckpt_path: the model is built with the checkpoint's hyperparameters, replacing {', '.join(replaced)}",
                stacklevel=1,
            )

    def before_instantiate_classes(self) -> None:
        """Check what can be checked without building anything; create nothing yet."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        root = Path(config.trainer.default_root_dir or ".")
        check_writable("trainer.default_root_dir", root)
        if self.subcommand == "fit":
            ckpt_path = config.get("ckpt_path")
            self._set_aside = check_fit_directory(root, ckpt_path, bool(config.get("start_over")))
            quiet_expected_checkpoint_warnings(root, ckpt_path)
        if "weights_only" in config and config.weights_only is None:
            config.weights_only = True  # never unpickle code from a checkpoint unless asked to
        for callback in _class_configs(config.trainer.callbacks):
            if str(callback.get("class_path", "")).endswith("ModelCheckpoint") and not callback.init_args.dirpath:
                callback.init_args.dirpath = str(root / "checkpoints")
        for logger in _class_configs(config.trainer.logger):
            if str(logger.get("class_path", "")).endswith("WandbLogger"):
                init_args = logger["init_args"]
                if init_args.get("save_dir") in (None, "", "."):  # "." is WandbLogger's default
                    init_args["save_dir"] = str(root)
                self._wandb_dirs.append(init_args["save_dir"])

    def after_instantiate_classes(self) -> None:
        """Every class accepted its arguments: now move an old run aside, prepare W&B, announce the seed and the
        measured weights."""
        if self._set_aside is not None:
            root = Path(self.trainer.default_root_dir)
            root.rename(self._set_aside)
            print(f"start_over: moved the earlier run aside, {root} -> {self._set_aside}", file=sys.stderr)
        for save_dir in self._wandb_dirs:
            Path(save_dir).mkdir(parents=True, exist_ok=True)
            use_offline_wandb_without_credentials(save_dir)
        if self._seed_message and rank_zero_only.rank == 0:
            logging.getLogger(SEED_LOGGER).info(self._seed_message)
        if self._weights is not None:
            for callback in self.trainer.callbacks:
                if isinstance(callback, LoggerSaveConfigCallback):
                    callback.weights = self._weights
            if rank_zero_only.rank == 0:
                print(weights_line(self._weights, self._picked_up), file=sys.stderr)

    def _check_measured_weights(self) -> None:
        """A measuring stage's weights (``run_cli.weights``): refused when untrained by accident, else kept for the
        weights line and the W&B config."""
        if self.subcommand in MEASURING:
            ckpt_path = self.config[self.subcommand].get("ckpt_path")
            self._weights = weights_provenance(self.model, ckpt_path, global_seed())
            check_measured_weights(self.subcommand, self._weights, self._initial_weights, self._checkpoints)

    def instantiate_trainer(self, **kwargs: Any) -> Any:
        """The trainer, with ``FiniteTraining`` (a non-finite loss stops the fit), ``SignalCheckpoint`` (a signal
        saves where the fit is and stops it, status 75) and ``RunProgressBar`` (steps of ``max_steps``, epochs
        counted from 1) unless the config brings its own or turns the progress bar off. The model exists by now: a
        measuring stage's weights are checked first, then the model checks its data (``check_data``, where it has
        one), before the trainer prints anything."""
        self._check_measured_weights()
        check_data = getattr(self.model, "check_data", None)
        if callable(check_data) and self.datamodule is not None:
            subcommand = self.config[self.subcommand] if self.subcommand else self.config
            check_data(self.datamodule, restores=bool(subcommand.get("ckpt_path")))
        config = self._get(self.config_init, "trainer", default={})
        callbacks = config.get("callbacks") or []
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        added = [] if any(isinstance(callback, FiniteTraining) for callback in callbacks) else [FiniteTraining()]
        added.append(SignalCheckpoint())
        own_bar = any(isinstance(callback, ProgressBar) for callback in callbacks)
        if config.get("enable_progress_bar") is not False and not own_bar:
            added.append(RunProgressBar())
        if "callbacks" not in kwargs:
            kwargs["callbacks"] = [*callbacks, *added]
        try:
            return super().instantiate_trainer(**kwargs)
        except (ValueError, TypeError, MisconfigurationException) as err:
            refused = trainer_error(err, config, list(inspect.signature(Trainer.__init__).parameters))
            if refused is None:
                raise
            raise refused from None


def vet_checkpoint(path: str | None, model_config: Any) -> None:
    """Fail fast on a checkpoint that is missing, not a checkpoint, unsafe to unpickle, of a run that diverged
    (non-finite weights) or of another model family.

    Loading uses ``weights_only=True`` (``cognitive_reserve.checkpoints.load_checkpoint``): a pickle that would
    build arbitrary Python objects (and could run code) is refused, never executed.
    """
    if not path or path in ("last", "best", "hpc", "registry"):
        return
    checkpoint = load_checkpoint(path, "ckpt_path", mmap=True)
    check_finite_weights(checkpoint, "ckpt_path", path)
    model_class = import_class(getattr(model_config, "class_path", None) or "")
    hparams = set(checkpoint.get("hyper_parameters", {})) - {"_instantiator", "_class_path"}
    if model_class is not None and hparams:
        parameters = inspect.signature(model_class.__init__).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()) and not hparams <= set(parameters):
            raise ConfigError(
                "ckpt_path",
                path,
                f"is a checkpoint of another model family: {sorted(hparams - set(parameters))} "
                f"are not parameters of {model_class.__name__}",
            )


def check_writable(field: str, directory: Path) -> None:
    """Prove ``directory`` can be created and written, without leaving anything behind."""
    existing = directory.absolute()
    while not existing.exists():
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, f"{existing} is a file")
        with tempfile.TemporaryDirectory(dir=existing):
            pass
    except OSError as err:
        raise ConfigError(field, str(directory), f"output directory is not writable ({err.strerror})") from None


def option_hints(subcommand: str | None) -> dict[str, Any]:
    """The type of each plain key the parser has: the Trainer's arguments (``trainer.<name>``), the subcommand's
    (``ckpt_path``), and the two the CLI adds itself."""
    hints = {f"trainer.{name}": hint for name, hint in typing.get_type_hints(Trainer.__init__).items()}
    hints.update(typing.get_type_hints(getattr(Trainer, subcommand)) if subcommand else {})
    return {**hints, "seed_everything": bool | int, "start_over": bool}


def option_keys(parsers: list[Any]) -> list[str]:
    """Every dotted key the parsers accept (``trainer.max_epochs``, ``model``, ``ckpt_path``, ...)."""
    return sorted({action.dest for parser in parsers for action in parser._actions if action.dest != "help"})


def _model_arguments(model_config: Any) -> dict[str, Any]:
    """The model's ``init_args`` as plain values (empty when the model is not a class_path entry)."""
    init_args = model_config.get("init_args") if hasattr(model_config, "get") else None
    return init_args.as_dict() if init_args is not None else {}


def _checkpoint_directory(callbacks: Any, root: Path) -> Path:
    """Where the run's checkpoints go: the first ``ModelCheckpoint``'s ``dirpath``, else ``<root>/checkpoints``."""
    for callback in _class_configs(callbacks):
        if str(callback.get("class_path", "")).endswith("ModelCheckpoint") and callback.init_args.get("dirpath"):
            return Path(callback.init_args.dirpath)
    return root / "checkpoints"


def _class_configs(entries: Any) -> list[Any]:
    """The ``class_path``/``init_args`` entries of a logger or callbacks config value."""
    if isinstance(entries, list):
        return [entry for entry in entries if hasattr(entry, "get")]
    return [entries] if hasattr(entries, "get") else []


def main(args: list[str] | None = None) -> None:
    """Run the CLI; bad input exits with status 2 and a one-line ``error: field=value: reason``, a fit that
    diverged (``TrainingDiverged``) with status 1 and one line ``error: training diverged ...``.

    When a subcommand ran, global rank 0 ends with a short summary: the outputs, the W&B run and the
    headline numbers (``run_outputs.run_summary``).
    """
    started = time.time()
    try:
        cli = CognitiveReserveCLI(args=args)
        wandb_run = finish_wandb_run()
    except Exception as err:
        diverged = find_cause(err, TrainingDiverged)
        cause = diverged or find_cause(err, ConfigError)
        if cause is None:
            raise
        finish_wandb_run(exit_code=1)
        if diverged is None or rank_zero_only.rank == 0:
            print(f"error: {cause}", file=sys.stderr)
        raise SystemExit(1 if diverged else 2) from None
    if cli.subcommand and cli.trainer.is_global_zero:
        trainer = cli.trainer
        validation = {name: float(value) for name, value in trainer.callback_metrics.items() if name.startswith("val/")}
        last = (trainer.global_step, validation) if cli.subcommand == "fit" and validation else None
        print(describe_run(Path(trainer.default_root_dir), started, wandb_run, last_validation=last))


def find_cause(err: BaseException, kind: type[Exception]) -> Exception | None:
    """The ``kind`` exception behind ``err``: itself, or one jsonargparse wrapped while instantiating."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, kind):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


if __name__ == "__main__":
    main()
