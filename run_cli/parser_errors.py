"""One line for a config the command-line parser refused: ``error: <field>=<value>: <reason>``.

jsonargparse explains a bad key or value in a tree of messages (usage, union subtypes, class paths);
``explain`` finds the offending key, its value (from the message, else ``run_cli.given_values``: the command
line or the ``--config`` files) and what is accepted, with a "did you mean" for a near miss. Field names
follow the rest of the project's errors: ``model.<arg>``, ``data.<arg>``, ``<Callback>.<arg>``,
``trainer.<arg>``. ``trainer_error`` does the same for what the Trainer refuses (``accelerator='cpux'``).
"""

from __future__ import annotations

import ast
import difflib
import importlib
import inspect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cognitive_reserve.errors import ConfigError
from run_cli.given_values import config_paths, given_value, parse_scalar

PARSER_KEY = re.compile(r'Parser key "([^"]+)"')
CLASS_PATH = re.compile(r"Problem with given class_path '([^']+)'")
UNKNOWN_OPTION = re.compile(r"Option '([^']+)' is not accepted")
NOT_IN_GROUP = re.compile(r"(?:Subcommand|Group) '([^']+)' does not accept option '([^']+)'")
GOT_VALUE = re.compile(r"Expected an? (.+?)\. Got value: (.*)$")
EXPECTED = re.compile(r"^\s*- Expected an? (.+?)\s*$")
NO_CLASS = re.compile(r"module '([^']+)' has no attribute '([^']+)'")
NO_FILE = re.compile(r"File does not exist: '([^']+)'")
UNRECOGNIZED = re.compile(r"unrecognized arguments: (.+)")
REQUIRED = re.compile(r"the following arguments are required: (.+)")
INVALID_CHOICE = re.compile(r"argument (\w+): invalid choice: '([^']*)' \(choose from (.+)\)")
#: Words for the type names jsonargparse prints.
TYPE_WORDS = {
    "<class 'int'>": "an integer", "<class 'float'>": "a number", "<class 'bool'>": "true or false",
    "<class 'str'>": "a string", "<class 'NoneType'>": "null", "<class 'dict'>": "a mapping",
}  # fmt: skip
SECTIONS = ("model", "data")  # class_path entries whose errors read <section>.<argument>


@dataclass(frozen=True)
class ParserContext:
    """What the refused command was: its arguments, the keys its subcommand accepts and, for a key that only
    another subcommand has, which (``{"start_over": ["fit"]}``)."""

    args: Sequence[str]
    options: Sequence[str]
    subcommand: str | None = None
    elsewhere: Mapping[str, Sequence[str]] = field(default_factory=dict)


def explain(message: str, context: ParserContext) -> ConfigError:
    """The one-line error behind a jsonargparse ``message`` (a fallback names the first line it gives)."""
    explainers = (
        _unrecognized, _invalid_choice, _bad_yaml, _not_in_group, _unknown_option, _wrong_type, _no_class,
        _no_file, _required,
    )  # fmt: skip
    for explainer in explainers:
        error = explainer(message, context)
        if error is not None:
            return error
    text = " ".join(line.strip() for line in message.splitlines() if line.strip())
    key = PARSER_KEY.search(message)
    return ConfigError(key[1] if key else "arguments", given_value(key[1], context.args) if key else None, text[:200])


def _unrecognized(message: str, context: ParserContext) -> ConfigError | None:
    found = UNRECOGNIZED.search(message)
    if not found:
        return None
    tokens = found[1].split()
    options = [token for token in tokens if token.startswith("-")]
    if not options:
        return ConfigError("subcommand", tokens[0], "not a subcommand: fit, validate, test or predict")
    token = options[0]
    key, _, value = token.lstrip("-").partition("=")
    if not value:
        after = tokens[tokens.index(token) + 1 :]
        value = after[0] if after and not after[0].startswith("-") else ""
    if key in context.elsewhere:
        reason = f"an option of {' and '.join(context.elsewhere[key])} only, not of {context.subcommand}"
    else:
        reason = "no such option" + _suggestion(key, context.options, "--")
    return ConfigError(key, parse_scalar(value) if value else None, reason)


def _invalid_choice(message: str, context: ParserContext) -> ConfigError | None:
    """A misspelt subcommand (``fitt``)."""
    found = INVALID_CHOICE.search(message)
    if not found:
        return None
    choices = [choice.strip(" '") for choice in found[3].split(",")]
    reason = f"must be one of {', '.join(choices)}" + _suggestion(found[2], choices)
    return ConfigError(found[1], found[2], reason)


def _bad_yaml(message: str, context: ParserContext) -> ConfigError | None:
    """A ``--config`` file that is not valid YAML: which file, what and where."""
    if "Problems parsing config" not in message:
        return None
    for path in config_paths(context.args):
        try:
            yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError:
            continue
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            return ConfigError("config", path, f"not valid YAML: {getattr(err, 'problem', None) or err}{where}")
    return None


def _not_in_group(message: str, context: ParserContext) -> ConfigError | None:
    """A key of a ``--config`` file the command does not have (``trainer.max_epoch``, ``trainr``)."""
    found = NOT_IN_GROUP.search(message)
    if not found:
        return None
    group = "" if found[0].startswith("Subcommand") else f"{found[1]}."
    segments = f"{group}{found[2]}".split(".")
    known_prefixes = {".".join(option.split(".")[:i]) for option in context.options for i in range(1, 9)}
    depth = next((i for i in range(1, len(segments) + 1) if ".".join(segments[:i]) not in known_prefixes), 1)
    key = ".".join(segments[:depth])
    candidates = [p for p in known_prefixes if p.count(".") == key.count(".")]
    return ConfigError(key, given_value(key, context.args), "no such key" + _suggestion(key, candidates))


def _unknown_option(message: str, context: ParserContext) -> ConfigError | None:
    """A class argument that does not exist (``rigde: 1.0`` under ``model.init_args``)."""
    located = _locate(message, UNKNOWN_OPTION)
    if located is None:
        return None
    found, path, classes = located
    option = found[1]
    cls = import_class(classes[-1]) if classes else None
    field = _field_name(path, classes, option)
    reason = f"not an argument of {cls.__name__ if cls else 'the class'}" + _suggestion(option, _parameters(cls))
    return ConfigError(field, given_value(field, context.args, path, option), reason)


def _wrong_type(message: str, context: ParserContext) -> ConfigError | None:
    """A value of the wrong type: ``k: four``, ``solver: svdd``, ``max_epochs: two``."""
    located = _locate(message, GOT_VALUE)
    if located is not None:
        found, path, classes = located
        field = _field_name(path[:-1], classes, path[-1]) if path else "value"
        return ConfigError(field, parse_scalar(found[2]), _expected([found[1]], found[2]))
    lines = message.splitlines()
    keys = PARSER_KEY.findall(message)
    expected = [m[1] for line in lines if (m := EXPECTED.match(line))]
    if keys and expected and not CLASS_PATH.search(message):
        given = re.search(r"Given value: (.*)$", message, re.MULTILINE)
        value = parse_scalar(given[1]) if given else given_value(keys[0], context.args)
        return ConfigError(keys[0], value, _expected(expected, str(value)))
    return None


def _no_class(message: str, context: ParserContext) -> ConfigError | None:
    """A ``class_path`` naming no class (``datamodules.DigitTasksDataModule``)."""
    found = NO_CLASS.search(message)
    if not found:
        return None
    module, name = found[1], found[2]
    key = PARSER_KEY.search(message)
    field = f"{key[1]}.class_path" if key else "class_path"
    try:
        names = [n for n, obj in vars(importlib.import_module(module)).items() if inspect.isclass(obj)]
    except ImportError:
        names = []
    return ConfigError(field, f"{module}.{name}", f"no class {name} in {module}" + _suggestion(name, names))


def _no_file(message: str, context: ParserContext) -> ConfigError | None:
    found = NO_FILE.search(message)
    if not found:
        return None
    key = PARSER_KEY.search(message)
    return ConfigError(key[1] if key else "path", found[1], "no such file")


def _required(message: str, context: ParserContext) -> ConfigError | None:
    found = REQUIRED.search(message)
    if not found:
        return None
    key = found[1].split(",")[0].strip().split(".")[-1]
    return ConfigError(key, None, f"required: give --config CONFIG.yaml (or --{key} ...)")


def trainer_error(err: Exception, trainer_config: Mapping[str, Any], parameters: Sequence[str]) -> ConfigError | None:
    """The Trainer's refusal of an argument (``accelerator='cpux'``) as one line, when its message names a
    Trainer argument (None otherwise: not a config problem)."""
    message = " ".join(str(err).split())
    for name in re.findall(r"`(\w+)", message):
        if name in parameters:
            return ConfigError(f"trainer.{name}", trainer_config.get(name), message)
    return None


def _locate(message: str, pattern: re.Pattern[str]) -> tuple[re.Match[str], list[str], list[str]] | None:
    """The first line matching ``pattern``, with the keys and class paths enclosing it (``_ancestors``)."""
    lines = message.splitlines()
    for index, line in enumerate(lines):
        found = pattern.search(line)
        if found:
            return (found, *_ancestors(lines, index))
    return None


def _ancestors(lines: Sequence[str], index: int) -> tuple[list[str], list[str]]:
    """The ``Parser key`` names and class paths enclosing line ``index`` of an indented message tree."""
    path: list[str] = []
    classes: list[str] = []
    indent = _indent(lines[index])
    inline = PARSER_KEY.search(lines[index])
    if inline:
        path.append(inline[1])
    for line in reversed(lines[:index]):
        if _indent(line) >= indent or not line.strip():
            continue
        indent = _indent(line)
        if key := PARSER_KEY.search(line):
            path.insert(0, key[1])
        elif cls := CLASS_PATH.search(line):
            path.insert(0, f"<{cls[1]}>")
            classes.insert(0, cls[1])
    return path, classes


def _field_name(path: Sequence[str], classes: Sequence[str], option: str) -> str:
    """``model.k``, ``data.task_grid``, ``SpectralMonitor.every_n_steps`` or ``trainer.max_epochs``."""
    if classes:
        section = path[0] if path else ""
        owner = section if section in SECTIONS else classes[-1].rsplit(".", 1)[-1]
        return f"{owner}.{option}"
    return ".".join([*path, option]) if path else option


def _expected(types: Sequence[str], value: str) -> str:
    """``expected an integer or null``; ``must be one of 'svd', 'sgd'; did you mean 'svd'?`` for a Literal."""
    words, choices = [], []
    for text in types:
        literal = re.fullmatch(r"typing\.Literal\[(.*)\]", text)
        if literal:
            choices += list(ast.literal_eval(f"[{literal[1]}]"))
        else:
            words.append(TYPE_WORDS.get(text, text))
    if choices:
        options = ", ".join(map(repr, choices)) + (" or null" if "null" in words else "")
        near = difflib.get_close_matches(value, [str(c) for c in choices], n=1, cutoff=0.6)
        return f"must be one of {options}" + (f"; did you mean {near[0]!r}?" if near else "")
    return "expected " + " or ".join(dict.fromkeys(words))


def _suggestion(word: str, candidates: Sequence[str], prefix: str = "") -> str:
    """``; did you mean X?`` for a near miss, else nothing."""
    near = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.75)
    return f"; did you mean {prefix}{near[0]}?" if near else ""


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" -"))


def import_class(class_path: str) -> type | None:
    """The class a dotted path names (None when it names none)."""
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def _parameters(cls: type | None) -> list[str]:
    """The arguments ``cls`` accepts: its ``__init__``'s, and its bases' while ``**kwargs`` passes them on."""
    names: list[str] = []
    for klass in cls.__mro__ if cls is not None else ():
        if "__init__" not in vars(klass) or klass is object:
            continue
        parameters = inspect.signature(klass.__init__).parameters.values()
        names += [p.name for p in parameters if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return list(dict.fromkeys(names))
