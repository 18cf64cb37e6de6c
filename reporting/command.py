"""What the reporting commands share: one-line errors (``error: field=value: reason``, exit status 2) and
their W&B options."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from robustness.errors import ConfigError


def run_command(main: Callable[[list[str] | None], None], argv: list[str] | None = None) -> None:
    """Run ``main(argv)``; a ``ConfigError`` becomes one line on stderr and exit status 2."""
    try:
        main(argv)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def add_wandb_options(parser: argparse.ArgumentParser, run_name: str) -> None:
    """``--wandb-project``, ``--wandb-name`` (default ``run_name``) and ``--no-wandb``."""
    parser.add_argument("--wandb-project", default="cognitive-reserve", help="W&B project of the report run")
    parser.add_argument("--wandb-name", default=run_name, help="W&B run name")
    parser.add_argument("--no-wandb", action="store_true", help="write the files only")
