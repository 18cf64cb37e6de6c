"""The one error type users see for bad configuration, and the checks that raise it.

``str(ConfigError)`` is a single line ``field=value: reason`` naming the offending field.
"""

from __future__ import annotations

import math
from typing import Any


class ConfigError(ValueError):
    """Invalid user input. ``str(err)`` is a single line: ``field=value: reason``."""

    def __init__(self, field: str, value: Any, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = " ".join(reason.split())  # messages from libraries may span lines
        super().__init__(f"{field}={value!r}: {self.reason}")


def check_int(field: str, value: Any, minimum: int | None = None) -> int:
    """``value`` as an int (bools refused), at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(field, value, "must be an integer")
    if minimum is not None and value < minimum:
        raise ConfigError(field, value, f"must be an integer >= {minimum}")
    return value


def check_number(
    field: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real number in ``[low, high]``; ``low_open``/``high_open`` exclude that end."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(field, value, "must be a finite number")
    if low is not None and (value <= low if low_open else value < low):
        raise ConfigError(field, value, f"must be {'>' if low_open else '>='} {low}")
    if high is not None and (value >= high if high_open else value > high):
        raise ConfigError(field, value, f"must be {'<' if high_open else '<='} {high}")
    return value


def check_text(field: str, value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        raise ConfigError(field, value, "must be a non-empty string")
    return value


def check_bool(field: str, value: Any) -> bool:
    """``True`` or ``False`` (no truthy stand-ins such as ``"no"`` or ``1``)."""
    if not isinstance(value, bool):
        raise ConfigError(field, value, "must be true or false")
    return value


def check_choice(field: str, value: Any, choices: tuple[str, ...]) -> str:
    """One of ``choices``."""
    if value not in choices:
        raise ConfigError(field, value, f"must be one of {', '.join(map(repr, choices))}")
    return value


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
