"""The one error type users see for bad configuration: it names the field and the value."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """Invalid user input. ``str(err)`` is a single line: ``field=value: reason``."""

    def __init__(self, field: str, value: Any, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}={value!r}: {reason}")
