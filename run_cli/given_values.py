"""The value a user gave for a config key: from the command line, else from the ``--config`` files.

The parser's error messages often leave the value out (``Option 'rigde' is not accepted``);
``given_value`` finds it where the user wrote it, so the one-line error can show it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

MAX_VALUE_CHARS = 60
_MISSING = object()


def given_value(field: str, args: Sequence[str], path: Sequence[str] = (), option: str = "") -> Any:
    """The value the user gave for ``field`` (or for ``option`` under the parser-message ``path``, whose
    ``<class.path>`` steps are class entries): from ``args``, else from the ``--config`` files they name."""
    name = option or field.rsplit(".", 1)[-1]
    segments = [part for step in path for part in ([step] if step.startswith("<") else step.split("."))]
    segments = segments or field.split(".")[:-1]
    heads = {field.split(".")[0], *segments[:1]}
    for token_index, token in enumerate(args):
        key, equals, value = token.lstrip("-").partition("=")
        if token.startswith("--") and key.split(".")[0] in heads and key.rsplit(".", 1)[-1] == name:
            if equals:
                return parse_scalar(value)
            following = args[token_index + 1 : token_index + 2]
            return parse_scalar(following[0]) if following else None
    for config in reversed(_config_files(args)):
        found = _lookup(config, segments, name)
        if found is not _MISSING:
            return _short(found)
    return None


def _lookup(tree: Any, path: Sequence[str], name: str) -> Any:
    """``tree[path...][name]``, stepping into ``init_args`` and into the list entry of a class."""
    node = tree
    for segment in path:
        if isinstance(node, dict) and segment.startswith("<"):
            node = node.get("init_args", node)
        elif isinstance(node, dict) and segment in node:
            node = node[segment]
        elif isinstance(node, list) and segment.startswith("<"):
            short = segment.strip("<>").rsplit(".", 1)[-1]
            entries = [e for e in node if isinstance(e, dict) and str(e.get("class_path", "")).endswith(short)]
            node = entries[0].get("init_args", {}) if entries else {}
        else:
            return _MISSING
    if isinstance(node, dict):
        node = node.get("init_args", node) if name not in node else node
        return node.get(name, _MISSING)
    return _MISSING


def config_paths(args: Sequence[str]) -> list[str]:
    """The ``--config`` files of the command line, in order."""
    paths = []
    for index, token in enumerate(args):
        if token in ("--config", "-c") and index + 1 < len(args):
            paths.append(args[index + 1])
        elif token.startswith("--config="):
            paths.append(token.partition("=")[2])
    return paths


def _config_files(args: Sequence[str]) -> list[Any]:
    """The parsed ``--config`` files of the command line (unreadable ones skipped)."""
    trees = []
    for path in config_paths(args):
        try:
            trees.append(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
        except (OSError, yaml.YAMLError):
            continue
    return trees


def parse_scalar(text: str) -> Any:
    """``4`` → 4, ``two`` → 'two', ``[1, a]`` → '[1, a]' (YAML scalars, as the parser reads them)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, int | float | bool | str) or value is None else text


class _Elided:
    """Stands for a long value in an error line: ``{...}``, ``[...]``."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _short(value: Any) -> Any:
    if len(repr(value)) <= MAX_VALUE_CHARS:
        return value
    return _Elided("{...}" if isinstance(value, dict) else "[...]" if isinstance(value, list) else "...")
