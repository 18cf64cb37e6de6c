"""What is wrong with a command the parser refused, found from what the parser accepts — never from its error text.

When jsonargparse refuses a command, ``first_problem`` reads what the user gave again, in the order given (each
``--config`` file, then each option of the command line), and checks it against the keys the parser accepts, the
type of each plain key (``trainer.max_epochs``: ``int | None``) and, for a class entry (``model``, ``data``,
``trainer.callbacks``, ``trainer.logger``), the signature of the class its ``class_path`` names. The first key or
value that does not fit is the one-line error; field names follow the project's errors: ``model.<arg>``,
``data.<arg>``, ``<Callback>.<arg>``, ``trainer.<arg>``. It sees nothing wrong (None) when the refusal was about
something it does not check; the caller then shows the parser's own first line.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml

from cognitive_reserve.errors import ConfigError
from run_cli.given_values import parse_scalar, parse_value, short

#: Class entries whose arguments are named ``<section>.<argument>``; others ``<Class>.<argument>``.
SECTIONS = ("model", "data")
#: Words for the plain types of a hint.
TYPE_WORDS: dict[Any, str] = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    type(None): "null",
    dict: "a mapping",
}
#: Options that take no value.
FLAGS = ("h", "help", "print_config")


@dataclass(frozen=True)
class ParserContext:
    """What the refused command was, and what its parser accepts: the arguments, the dotted keys of the subcommand
    (``trainer.max_epochs``, ``model``), the type hint of each plain key, the subcommand given and all of them, and
    for a key that only another subcommand has, which (``{"start_over": ["fit"]}``)."""

    args: Sequence[str]
    options: Sequence[str]
    subcommand: str | None = None
    elsewhere: Mapping[str, Sequence[str]] = field(default_factory=dict)
    hints: Mapping[str, Any] = field(default_factory=dict)
    subcommands: Sequence[str] = ()


def first_problem(context: ParserContext) -> ConfigError | None:
    """The first key or value of the command that the parser cannot take (None when none is found)."""
    try:
        _check(context)
    except ConfigError as problem:
        return problem
    return None


def _check(context: ParserContext) -> None:
    _check_subcommand(context)
    check = _Checker(context)
    for key, text in _options(context.args):
        if key in ("config", "c"):
            check.config_file(text or "")
        else:
            check.command_line(key, text)
    if "model" in context.options and "model" not in check.classes:
        raise ConfigError("model", None, "required: give --config CONFIG.yaml (or --model ...)")


def _check_subcommand(context: ParserContext) -> None:
    if not context.subcommands:
        return
    given = _positionals(context.args)
    if given and given[0] not in context.subcommands:
        names = list(context.subcommands)
        raise ConfigError("subcommand", given[0], f"must be one of {', '.join(names)}" + _suggestion(given[0], names))


class _Checker:
    """Reads the layers in order, remembering the class each class entry has so far."""

    def __init__(self, context: ParserContext) -> None:
        self.context = context
        self.options = {key for key in context.options if not key.endswith(".help")}  # not --<class key>.help
        self.prefixes = {".".join(key.split(".")[:i]) for key in self.options for i in range(1, key.count(".") + 1)}
        self.classes: dict[str, list[str]] = {}  # class entry -> the class path of each of its entries

    def config_file(self, path: str) -> None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError:
            raise ConfigError("config", path, "no such file") from None
        try:
            tree = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            problem = getattr(err, "problem", None) or err
            raise ConfigError("config", path, f"not valid YAML: {problem}{where}") from None
        if isinstance(tree, dict):
            self.mapping("", tree)

    def mapping(self, prefix: str, tree: Mapping[str, Any]) -> None:
        """The keys of a config file's mapping at ``prefix`` (``trainer``: its keys are ``trainer.<key>``)."""
        for name, value in tree.items():
            key = f"{prefix}{name}"
            if key in self.prefixes and isinstance(value, dict) and not self.is_class_entry(key, value):
                self.mapping(f"{key}.", value)  # a group (``trainer``), though the parser also takes a file for it
            elif key in self.options:
                self.option(key, value)
            else:
                depth = key.count(".")
                candidates = [k for k in self.options | self.prefixes if k.count(".") == depth]
                raise ConfigError(key, short(value), "no such key" + _suggestion(key, candidates))

    def command_line(self, key: str, text: str | None) -> None:
        """One ``--key=value`` (or ``--key value``) of the command line; ``key+`` appends to a list."""
        append = key.endswith("+")
        key = key.rstrip("+")
        value = parse_value(text) if text is not None else None
        if key in self.options:
            return self.option(key, value, append)
        if key in self.context.elsewhere:
            where = " and ".join(self.context.elsewhere[key])
            raise ConfigError(key, value, f"an option of {where} only, not of {self.context.subcommand}")
        entry = next((p for p in sorted(self.classes, key=len, reverse=True) if key.startswith(f"{p}.")), None)
        if entry is None:
            reason = "no such option" + _suggestion(key, sorted(self.options), "--")
            raise ConfigError(key, parse_scalar(text) if text is not None else None, reason)
        name = key[len(entry) + 1 :].removeprefix("init_args.")
        if name == "class_path":
            return self.class_entries(entry, [{"class_path": value}], append=False)
        self.argument(entry, self.classes[entry][-1], name, value)

    def option(self, key: str, value: Any, append: bool = False) -> None:
        """A key the parser has: a class entry (``class_path`` given, or given before), else a plain value."""
        if self.is_class_entry(key, value):
            return self.class_entries(key, value if isinstance(value, list) else [value], append)
        problem = _type_problem(self.context.hints.get(key, Any), value)
        if problem is not None:
            reason, bad = problem
            raise ConfigError(key, short(bad), reason)

    def is_class_entry(self, key: str, value: Any) -> bool:
        """Whether ``value`` is given for a class entry: it names a class, or ``key`` had one before."""
        entries = value if isinstance(value, list) else [value]
        named = any(isinstance(e, dict) and "class_path" in e for e in entries)  # a class_path, perhaps a wrong one
        return key in self.classes or named or any(isinstance(e, str) and "." in e and import_class(e) for e in entries)

    def class_entries(self, key: str, entries: list[Any], append: bool) -> None:
        before = self.classes.get(key, [])
        paths = list(before) if append else []
        for index, entry in enumerate(entries):
            if entry is None or isinstance(entry, bool):
                continue
            if isinstance(entry, str):
                entry = {"class_path": entry}
            if not isinstance(entry, dict):
                continue
            earlier = before[index] if index < len(before) and not append else None
            class_path = entry.get("class_path", earlier)
            if class_path is None:
                continue
            cls = import_class(class_path)
            if cls is None:
                raise ConfigError(f"{key}.class_path", class_path, _no_class_reason(class_path))
            arguments = {**(entry.get("init_args") or {})}
            arguments.update({k: v for k, v in entry.items() if k not in ("class_path", "init_args", "dict_kwargs")})
            for name, argument in arguments.items():
                self.argument(key, class_path, name, argument)
            paths.append(class_path)
        self.classes[key] = paths or before

    def argument(self, key: str, class_path: str, name: str, value: Any) -> None:
        cls = import_class(class_path)
        if cls is None:
            return
        field_name = f"{key if key in SECTIONS else cls.__name__}.{name}"
        parameters, open_ended = _parameters(cls)
        if name not in parameters:
            near = _suggestion(name, list(parameters))
            if open_ended and not near:  # **kwargs passed where a signature does not show: a name it may take
                return
            raise ConfigError(field_name, short(value), f"not an argument of {cls.__name__}" + near)
        problem = _type_problem(parameters[name], value)
        if problem is not None:
            reason, bad = problem
            raise ConfigError(field_name, short(bad), reason)


def _options(args: Sequence[str]) -> Iterator[tuple[str, str | None]]:
    """``(key, value text)`` of every ``--key=value``, ``--key value`` and ``-c FILE`` of ``args``, in order."""
    for index, token in enumerate(args):
        if not token.startswith("-") or token in ("-", "--"):
            continue
        key, equals, text = token.lstrip("-").partition("=")
        if key in FLAGS:
            continue
        following = args[index + 1] if index + 1 < len(args) else None
        if not equals:
            text = following if following is not None and not following.startswith("-") else None
        yield key, text


def _positionals(args: Sequence[str]) -> list[str]:
    """The arguments that are neither options nor the values of options (the subcommand first)."""
    values = {index + 1 for index, token in enumerate(args) if token.startswith("-") and "=" not in token}
    values -= {index + 1 for index, token in enumerate(args) if token.lstrip("-") in FLAGS}
    return [token for index, token in enumerate(args) if not token.startswith("-") and index not in values]


def _type_problem(hint: Any, value: Any) -> tuple[str, Any] | None:
    """Why ``value`` is not of type ``hint`` and the offending part (an item of a list), or None: it is, or the
    hint is one this check does not judge (a class, a path, a callable)."""
    verdicts = _verdicts(hint, value)
    if verdicts is None or any(verdict is None for verdict in verdicts):
        return None
    items = [verdict for verdict in verdicts if verdict[2] is not value]  # a list whose item is wrong: say that
    verdicts = items or verdicts
    words = [word for verdict in verdicts for word in verdict[0]]
    choices = [choice for verdict in verdicts for choice in verdict[1]]
    return _reason(words, choices, verdicts[0][2]), verdicts[0][2]


def _verdicts(hint: Any, value: Any) -> list[tuple[list[str], list[Any], Any] | None] | None:
    """Per member of ``hint`` (a union's each): None where ``value`` fits it, else (type words, Literal choices,
    the offending value). None overall when a member cannot be judged."""
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        return _verdicts(arguments[0], value)
    if origin in (Union, types.UnionType):
        verdicts = [_verdicts(member, value) for member in arguments]
        return None if any(v is None for v in verdicts) else [x for v in verdicts for x in v]  # type: ignore[union-attr]
    if origin is Literal:
        return [None if value in arguments else ([], list(arguments), value)]
    if hint in TYPE_WORDS:
        return [None if _fits(hint, value) else ([TYPE_WORDS[hint]], [], value)]
    if origin in (dict, Mapping):
        return [None if isinstance(value, dict) else (["a mapping"], [], value)]
    if origin in (list, tuple, Sequence) and not isinstance(value, list):
        return [(["a list"], [], value)]
    if origin in (list, tuple, Sequence) and arguments and isinstance(value, list):
        item = arguments[0]
        for element in value:
            verdicts = _verdicts(item, element)
            if verdicts is None:
                return None
            if all(verdict is not None for verdict in verdicts):
                return verdicts
        return [None]
    return None


def _fits(hint: type, value: Any) -> bool:
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return not isinstance(value, dict | list) and value is not None  # a number given for a string is read as one
    return isinstance(value, hint)


def _reason(words: list[str], choices: list[Any], value: Any) -> str:
    """``expected an integer or null``; ``must be one of 'svd', 'sgd'; did you mean 'svd'?``."""
    if choices:
        options = ", ".join(map(repr, choices)) + (" or null" if "null" in words else "")
        near = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.6)
        return f"must be one of {options}" + (f"; did you mean {near[0]!r}?" if near else "")
    return "expected " + " or ".join(dict.fromkeys(words))


def _suggestion(word: str, candidates: Sequence[str], prefix: str = "") -> str:
    """``; did you mean X?`` for a near miss, else nothing."""
    near = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.75)
    return f"; did you mean {prefix}{near[0]}?" if near else ""


def _no_class_reason(class_path: str) -> str:
    module, _, name = class_path.rpartition(".")
    try:
        names = [n for n, obj in vars(importlib.import_module(module)).items() if inspect.isclass(obj)]
    except (ImportError, ValueError):
        return f"no module {module}" if module else "not a dotted class path"
    return f"no class {name} in {module}" + _suggestion(name, names)


def import_class(class_path: str) -> type | None:
    """The class a dotted path names (None when it names none)."""
    module, _, name = class_path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None
    return found if inspect.isclass(found) else None


def _parameters(cls: type) -> tuple[dict[str, Any], bool]:
    """The arguments ``cls`` accepts and their type hints (``Any`` where unknown): its ``__init__``'s, and its
    bases' while ``**kwargs`` passes them on; and whether ``**kwargs`` go on beyond them (``WandbLogger``'s, to
    ``wandb.init``), so that other names may be taken too."""
    found: dict[str, Any] = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass is object:
            continue
        try:
            hints = typing.get_type_hints(klass.__init__, include_extras=True)
        except Exception:  # a hint naming what only a type checker imports: judge no types of this class
            hints = {}
        parameters = inspect.signature(klass.__init__).parameters.values()
        for p in parameters:
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                found.setdefault(p.name, hints.get(p.name, Any))
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            return found, False
    return found, True
