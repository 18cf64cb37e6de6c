"""Command line entry point: ``python run.py {fit,validate,test,predict} --config CONFIG.yaml``.

A ``LightningCLI`` with OmegaConf interpolation, W&B that goes offline by itself when there are
no credentials, the resolved config sent to the logger, one-line errors for bad input, and a short
end-of-run summary (outputs, W&B run, headline numbers).
"""

from __future__ import annotations

import errno
import importlib
import inspect
import pickle
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback

from cognitive_reserve.errors import ConfigError, first_line
from run_reports.run_summary import describe_run
from tracking import finish_wandb_run, use_offline_wandb_without_credentials


class LoggerSaveConfigCallback(SaveConfigCallback):
    """Also sends the full resolved config to every logger (the W&B run config)."""

    def save_config(self, trainer: Any, pl_module: Any, stage: str) -> None:
        config = self.config.clone().as_dict()
        for logger in trainer.loggers:
            logger.log_hyperparams({"config": config})


class CognitiveReserveCLI(LightningCLI):
    """LightningCLI with this project's defaults (see module docstring)."""

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        super().__init__(
            args=args,
            run=run,
            parser_kwargs={"parser_mode": "omegaconf+"},
            save_config_callback=LoggerSaveConfigCallback,
            save_config_kwargs={"overwrite": True},
            subclass_mode_model=True,
            subclass_mode_data=True,
        )

    def _parse_ckpt_path(self) -> None:
        """Vet ``--ckpt_path`` before Lightning reads hyperparameters from it (see ``vet_checkpoint``)."""
        subcommand = self.config.get("subcommand")
        if not subcommand:
            return
        config = self.config[subcommand]
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
        config = self.config[self.subcommand] if self.subcommand else self.config
        root = Path(config.trainer.default_root_dir or ".")
        check_writable("trainer.default_root_dir", root)
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
                Path(init_args["save_dir"]).mkdir(parents=True, exist_ok=True)
                use_offline_wandb_without_credentials(init_args["save_dir"])


def vet_checkpoint(path: str | None, model_config: Any) -> None:
    """Fail fast on a checkpoint that is missing, unsafe to unpickle, or of another model family.

    Loading uses ``weights_only=True``: a pickle that would build arbitrary Python objects (and
    could run code) is refused, never executed.
    """
    if not path or path in ("last", "best", "hpc", "registry"):
        return
    if not Path(path).is_file():
        raise ConfigError("ckpt_path", path, "no such checkpoint file")
    try:
        checkpoint = torch.load(path, weights_only=True, map_location="cpu")
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        raise ConfigError(
            "ckpt_path", path, f"refused: not a plain-weights checkpoint, loading it could run code ({first_line(err)})"
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError("ckpt_path", path, "not a Lightning checkpoint (no state_dict)")
    model_class = _import(getattr(model_config, "class_path", None))
    hparams = set(checkpoint.get("hyper_parameters", {})) - {"_instantiator", "_class_path"}
    if model_class is not None and hparams:
        parameters = inspect.signature(model_class.__init__).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()) and not hparams <= set(parameters):
            raise ConfigError(
                "ckpt_path", path,
                f"is a checkpoint of another model family: {sorted(hparams - set(parameters))} "
                f"are not parameters of {model_class.__name__}",
            )  # fmt: skip


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


def _import(class_path: str | None) -> type | None:
    if not class_path or "." not in class_path:
        return None
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def _model_arguments(model_config: Any) -> dict[str, Any]:
    """The model's ``init_args`` as plain values (empty when the model is not a class_path entry)."""
    init_args = model_config.get("init_args") if hasattr(model_config, "get") else None
    return init_args.as_dict() if init_args is not None else {}


def _class_configs(entries: Any) -> list[Any]:
    """The ``class_path``/``init_args`` entries of a logger or callbacks config value."""
    if isinstance(entries, list):
        return [entry for entry in entries if hasattr(entry, "get")]
    return [entries] if hasattr(entries, "get") else []


def main(args: list[str] | None = None) -> None:
    """Run the CLI; bad input exits with status 2 and a one-line ``error: field=value: reason``.

    When a subcommand ran, global rank 0 ends with a short summary: the outputs, the W&B run and the
    headline numbers (``run_reports.run_summary``).
    """
    started = time.time()
    try:
        cli = CognitiveReserveCLI(args=args)
        wandb_run = finish_wandb_run()
    except Exception as err:
        config_error = find_config_error(err)
        if config_error is None:
            raise
        print(f"error: {config_error}", file=sys.stderr)
        raise SystemExit(2) from None
    if cli.subcommand and cli.trainer.is_global_zero:
        print(describe_run(Path(cli.trainer.default_root_dir), started, wandb_run))


def find_config_error(err: BaseException) -> ConfigError | None:
    """The ``ConfigError`` behind ``err``: itself, or one jsonargparse wrapped while instantiating."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, ConfigError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


if __name__ == "__main__":
    main()
