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


def add_comparison_options(parser: argparse.ArgumentParser) -> None:
    """``--model-a``/``--model-b`` (which model of a table holding several), ``--confidence`` and
    ``--paired-seeds``: the options every A-vs-B comparison command shares."""
    parser.add_argument("--model-a", help="model name to take from A's tables when they hold several")
    parser.add_argument("--model-b", help="model name to take from B's tables when they hold several")
    parser.add_argument("--confidence", type=float, default=0.95, help="confidence of the intervals")
    parser.add_argument(
        "--paired-seeds",
        action="store_true",
        help="the i-th CSV of A and of B come from the same training seed: differences are paired over seeds",
    )


def check_comparison_options(args: argparse.Namespace) -> None:
    """One-line errors for the options of ``add_comparison_options``."""
    if not 0 < args.confidence < 1:
        raise ConfigError("confidence", args.confidence, "must lie in (0, 1)")
