"""The values a user gave, as the parser reads them: a command-line value is YAML (``4`` → 4, ``[1, x]`` → a list),
and a long value is shown elided in an error line."""

from __future__ import annotations

from typing import Any

import yaml

MAX_VALUE_CHARS = 60


def parse_value(text: str) -> Any:
    """A command-line value as the parser reads it: YAML (``4`` → 4, ``[1, x]`` → [1, 'x']), else the text."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_scalar(text: str) -> Any:
    """``4`` → 4, ``two`` → 'two', ``[1, a]`` → '[1, a]' (a scalar as the parser reads it, anything else as given)."""
    value = parse_value(text)
    return value if isinstance(value, int | float | bool | str) or value is None else text


class _Elided:
    """Stands for a long value in an error line: ``{...}``, ``[...]``."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def short(value: Any) -> Any:
    """``value``, or ``{...}`` / ``[...]`` / ``...`` for one too long to show in an error line."""
    if len(repr(value)) <= MAX_VALUE_CHARS:
        return value
    return _Elided("{...}" if isinstance(value, dict) else "[...]" if isinstance(value, list) else "...")
