"""How a reporting command reports bad input: one line ``error: field=value: reason``, exit status 2."""

from __future__ import annotations

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
