"""Command line entry point: ``python run.py {fit,validate,test,predict} --config CONFIG.yaml``.

A ``LightningCLI`` with OmegaConf interpolation, W&B that goes offline by itself when there are
no credentials, the resolved config sent to the logger, and one-line errors for bad input.
"""

from __future__ import annotations

import netrc
import os
import sys
from pathlib import Path
from typing import Any

from lightning.pytorch.cli import LightningCLI, SaveConfigCallback

from robustness.errors import ConfigError

WANDB_HOST = "api.wandb.ai"


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

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        root = Path(config.trainer.default_root_dir or ".")
        for logger in _logger_configs(config.trainer.logger):
            if str(logger.get("class_path", "")).endswith("WandbLogger"):
                init_args = logger["init_args"]
                if init_args.get("save_dir") in (None, "", "."):  # "." is WandbLogger's default
                    init_args["save_dir"] = str(root)
                Path(init_args["save_dir"]).mkdir(parents=True, exist_ok=True)
                use_offline_wandb_without_credentials(init_args["save_dir"])


def use_offline_wandb_without_credentials(save_dir: str) -> None:
    """Switch W&B to offline mode (and say how to sync) when no API key can be found."""
    if os.environ.get("WANDB_MODE") or os.environ.get("WANDB_API_KEY") or _netrc_has_wandb():
        return
    os.environ["WANDB_MODE"] = "offline"
    if os.environ.get("LOCAL_RANK", "0") == "0":
        print(
            f"W&B: no credentials found, logging offline under {save_dir}/wandb. "
            f"Upload later with: wandb sync {save_dir}/wandb/offline-run-*",
            file=sys.stderr,
        )


def _netrc_has_wandb() -> bool:
    try:
        return netrc.netrc().authenticators(WANDB_HOST) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def _logger_configs(logger: Any) -> list[Any]:
    if isinstance(logger, list):
        return [entry for entry in logger if hasattr(entry, "get")]
    return [logger] if hasattr(logger, "get") else []


def main(args: list[str] | None = None) -> None:
    """Run the CLI; bad input exits with status 2 and a one-line ``error: field=value: reason``."""
    try:
        CognitiveReserveCLI(args=args)
    except Exception as err:
        config_error = find_config_error(err)
        if config_error is None:
            raise
        print(f"error: {config_error}", file=sys.stderr)
        raise SystemExit(2) from None


def find_config_error(err: BaseException | None) -> ConfigError | None:
    """The ``ConfigError`` behind ``err``: jsonargparse wraps errors raised in ``__init__`` in a ValueError."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, ConfigError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


if __name__ == "__main__":
    main()
