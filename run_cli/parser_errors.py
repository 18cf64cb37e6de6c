"""One line for a command the parser refused: ``error: <field>=<value>: <reason>``.

jsonargparse explains a bad key or value in a tree of messages (usage, union subtypes, class paths) whose wording
changes between releases. ``explain`` does not read it: ``run_cli.config_check`` finds the offending key or value
from what the parser accepts (its keys, their types, the signatures of the classes named), and only when that finds
nothing does the line carry the parser's own words, joined into one line. ``trainer_error`` does the same for what
the Trainer refuses (``accelerator='cpux'``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from cognitive_reserve.errors import ConfigError
from run_cli.config_check import ParserContext, first_problem

MAX_REASON_CHARS = 200


def explain(message: str, context: ParserContext) -> ConfigError:
    """The one-line error for a refused command: the problem ``config_check`` finds, else ``message`` in one line."""
    problem = first_problem(context)
    if problem is not None:
        return problem
    text = " ".join(line.strip() for line in message.splitlines() if line.strip())
    return ConfigError("arguments", None, text[:MAX_REASON_CHARS])


def trainer_error(err: Exception, trainer_config: Mapping[str, Any], parameters: Sequence[str]) -> ConfigError | None:
    """The Trainer's refusal of an argument (``accelerator='cpux'``) as one line, when its message names a
    Trainer argument (None otherwise: not a config problem)."""
    message = " ".join(str(err).split())
    for name in re.findall(r"`(\w+)", message):
        if name in parameters:
            return ConfigError(f"trainer.{name}", trainer_config.get(name), message)
    return None
