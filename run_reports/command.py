"""What the reporting commands share: one-line errors (``error: field=value: reason``, exit status 2) and
their W&B options."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from cognitive_reserve.errors import ConfigError


@contextmanager
def one_line_errors() -> Iterator[None]:
    """A ``ConfigError`` raised in the block becomes one line ``error: ...`` on stderr and exit status 2."""
    try:
        yield
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def run_command(main: Callable[[list[str] | None], None], argv: list[str] | None = None) -> None:
    """Run ``main(argv)`` under ``one_line_errors``."""
    with one_line_errors():
        main(argv)


def add_wandb_options(parser: argparse.ArgumentParser, run_name: str) -> None:
    """``--wandb-project``, ``--wandb-name`` (default ``run_name``) and ``--no-wandb``."""
    parser.add_argument("--wandb-project", default="cognitive-reserve", help="W&B project of the report run")
    parser.add_argument("--wandb-name", default=run_name, help="W&B run name")
    parser.add_argument("--no-wandb", action="store_true", help="write the files only")
