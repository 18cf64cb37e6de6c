"""One declaration per config field: its type, range, default and one-line doc, written once.

A field is declared where LightningCLI reads it, in the ``__init__`` signature: the type hint is
the type, ``Field`` (in ``Annotated``) holds the doc and range, the signature's default is the
default. From that one declaration come the checks (``check_fields``), the ``Args:`` section of
the class docstring (so ``--help`` shows every doc), ``docs/config_reference.md``
(``reference_table``, run ``python config_reference.py``) and the property tests' oracle.
jsonargparse strips ``Annotated`` metadata, so ``--help``, ``--print_config`` and its own type
checks work as with a plain hint.

Declaring a field (2 minutes): add it to the signature of a ``@declared`` class, then regenerate
the reference::

    @declared("model")                                   # errors read model.<field>=<value>: ...
    class MyModel(L.LightningModule):
        \"\"\"What the class is (the Args: section is generated; do not write one).\"\"\"

        def __init__(
            self,
            lr: Annotated[float, Field("peak learning rate", gt=0)] = 3e-4,
            steps: Annotated[int | None, Field("stop after this many steps (null: never)", ge=1)] = None,
            betas: Annotated[tuple[float, float], Field("Adam betas", valid="two numbers in [0, 1)",
                                                        check=check_betas)] = (0.9, 0.95),
        ) -> None:
            fields = check_fields(MyModel, locals())      # first line: the checked values by name

The hint picks the check: ``bool`` → true/false only; ``int`` → an integer (bools refused);
``float`` → a finite number; ``str`` → a non-empty string; ``Literal[...]`` → one of its values;
``X | None`` also accepts null. ``ge``/``gt``/``le``/``lt`` bound numbers (a string names another
argument of the same call, its largest item if it is a list: ``ge="iterations"``). Any other type
needs ``check(field, value)``, which raises ``ConfigError`` and returns the value to use (or only
``later``: not checked at construction), and ``valid``, the docs' words for the valid values (say
``null`` there too if the hint allows it; null never reaches ``check``). ``valid`` may also replace
the generated words of a plain type. ``later`` documents what is checked after construction and
when (``"≤ the model's n_positions: at setup"``). The decorator reads the hints when the class is
defined: define ``check`` functions above it.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cognitive_reserve.errors import ConfigError, check_bool, check_choice, check_int, check_number, check_text

Bound = float | str | None
#: Every ``@declared`` class imported so far (the property tests try each of their fields).
DECLARED: list[type] = []


@dataclass(frozen=True)
class Field:
    """The doc and valid range of one config field (its type and default are in the signature)."""

    doc: str
    ge: Bound = None
    gt: Bound = None
    le: Bound = None
    lt: Bound = None
    check: Callable[[str, Any], Any] | None = None
    valid: str | None = None
    later: str = ""


@dataclass(frozen=True)
class Declaration:
    """One declared field of a class: what ``check_fields``, the docs and the tests read."""

    name: str
    field: Field
    kind: type | tuple[Any, ...]  # bool, int, float, str, the Literal's values, or the hint itself
    optional: bool
    default: Any  # inspect.Parameter.empty when required
    prefix: str
    owner: type  # the class whose __init__ declares it

    @property
    def path(self) -> str:
        """The name errors use: ``<prefix>.<name>``."""
        return f"{self.prefix}.{self.name}"

    @property
    def bounded_by_another(self) -> bool:
        return any(isinstance(b, str) for b in (self.field.ge, self.field.gt, self.field.le, self.field.lt))

    @property
    def checked(self) -> bool:
        """Whether construction checks it (a field of another type with no ``check`` is only checked ``later``)."""
        return self.field.check is not None or isinstance(self.kind, tuple) or self.kind in (bool, int, float, str)

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty

    def bounds(self, arguments: Mapping[str, Any]) -> dict[str, float | None]:
        """``ge``/``gt``/``le``/``lt`` with bounds that name another argument replaced by its value."""

        def resolve(bound: Bound) -> float | None:
            value = arguments[bound] if isinstance(bound, str) else bound
            return max(value) if isinstance(value, list | tuple) else value

        field = self.field
        return {"ge": resolve(field.ge), "gt": resolve(field.gt), "le": resolve(field.le), "lt": resolve(field.lt)}

    def check(self, value: Any, arguments: Mapping[str, Any]) -> Any:
        """``value`` as the class uses it, or ``ConfigError`` naming ``self.path``."""
        if value is None and self.optional:
            return None
        if self.field.check is not None:
            return self.field.check(self.path, value)
        if not self.checked:
            return value
        if isinstance(self.kind, tuple):
            return check_choice(self.path, value, self.kind)
        if self.kind is bool:
            return check_bool(self.path, value)
        if self.kind is str:
            return check_text(self.path, value)
        try:
            return self._check_range(value, self.bounds(arguments))
        except ConfigError as err:
            named = [
                bound
                for bound in (self.field.ge, self.field.gt, self.field.le, self.field.lt)
                if isinstance(bound, str)
            ]
            if not named or not re.search("[<>]", err.reason):  # a type error needs no bound's context
                raise
            where = self.path.rpartition(".")[0]
            context = ", ".join(
                f"{where}.{name}={arguments[name]!r}" if where else f"{name}={arguments[name]!r}" for name in named
            )
            raise ConfigError(self.path, value, f"{err.reason} ({context})") from None

    def _check_range(self, value: Any, b: dict[str, float | None]) -> Any:
        if self.kind is int:
            check_int(self.path, value, minimum=b["ge"] if b["gt"] is None else b["gt"] + 1)
            high = b["le"] if b["lt"] is None else b["lt"]
            return value if high is None else check_number(self.path, value, high=high, high_open=b["lt"] is not None)
        low = b["ge"] if b["gt"] is None else b["gt"]
        high = b["le"] if b["lt"] is None else b["lt"]
        return check_number(self.path, value, low, high, low_open=b["gt"] is not None, high_open=b["lt"] is not None)

    def valid_values(self) -> str:
        """The docs' words for the valid values, from the type and range."""
        if self.field.valid is not None:
            text = self.field.valid
        elif isinstance(self.kind, tuple):
            text = ", ".join(f"`{choice}`" for choice in self.kind)
        else:
            text = {bool: "boolean", str: "non-empty string", int: "integer", float: "finite number"}[self.kind]
            text += _range_words(self.field)
        return f"null or {text}" if self.optional and self.field.valid is None else text


def _range_words(field: Field) -> str:
    low = ("≥", field.ge) if field.gt is None else (">", field.gt)
    high = ("≤", field.le) if field.lt is None else ("<", field.lt)
    show = lambda bound: f"`{bound}`" if isinstance(bound, str) else f"{bound:g}"  # noqa: E731
    if low[1] is not None and high[1] is not None and not isinstance(low[1], str) and not isinstance(high[1], str):
        return f" in {'[' if low[0] == '≥' else '('}{show(low[1])}, {show(high[1])}{']' if high[0] == '≤' else ')'}"
    words = [f"{sign} {show(bound)}" for sign, bound in (low, high) if bound is not None]
    return (" " + " and ".join(words)) if words else ""


def declared(prefix: str) -> Callable[[type], type]:
    """Class decorator: errors name ``<prefix>.<field>``; the docstring gets an ``Args:`` section
    with every declared field's doc (what LightningCLI's ``--help`` shows)."""

    def decorate(cls: type) -> type:
        if "Args:" in (cls.__doc__ or ""):
            raise TypeError(f"{cls.__name__}: the Args: section is generated from the Field declarations")
        cls._field_prefix = prefix  # type: ignore[attr-defined]
        args = [f"    {d.name}: {d.field.doc}" for d in declarations(cls)]
        cls.__doc__ = f"{inspect.cleandoc(cls.__doc__ or '')}\n\nArgs:\n" + "\n".join(args) + "\n"
        DECLARED.append(cls)
        return cls

    return decorate


@functools.cache
def declarations(cls: type) -> tuple[Declaration, ...]:
    """The declared fields of ``cls.__init__`` (not of its bases), in signature order."""
    init = cls.__dict__["__init__"]
    hints = typing.get_type_hints(init, include_extras=True)
    prefix = cls._field_prefix  # type: ignore[attr-defined]
    found = []
    for name, parameter in inspect.signature(init).parameters.items():
        hint = hints.get(name)
        field = next((m for m in getattr(hint, "__metadata__", ()) if isinstance(m, Field)), None)
        if field is not None:
            kind, optional = _kind(hint.__origin__)
            basic = isinstance(kind, tuple) or kind in (bool, int, float, str)
            if not basic and (field.valid is None or not (field.check or field.later)):
                raise TypeError(f"{cls.__name__}.{name}: a {kind} field needs valid= and check= (or later=)")
            found.append(Declaration(name, field, kind, optional, parameter.default, prefix, cls))
    return tuple(found)


def _kind(hint: Any) -> tuple[type | tuple[Any, ...], bool]:
    """The kind of value a hint asks for, and whether null is accepted."""
    args = typing.get_args(hint)
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
    if optional:
        rest = [arg for arg in args if arg is not type(None)]
        hint = rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]  # noqa: UP007
    if typing.get_origin(hint) is Literal:
        return typing.get_args(hint), optional
    return hint, optional


def check_fields(cls: type, arguments: Mapping[str, Any], prefix: str | None = None) -> dict[str, Any]:
    """Check every declared field of ``cls`` in ``arguments`` (``locals()`` of its ``__init__``), in
    signature order but those bounded by another field last; the first invalid one raises
    ``ConfigError`` (its field ``<prefix>.<name>``, the declared prefix by default). Returns the
    checked values by name."""
    order = sorted(declarations(cls), key=lambda d: d.bounded_by_another)
    if prefix is not None:
        order = [dataclasses.replace(d, prefix=prefix) for d in order]
    return {d.name: d.check(arguments[d.name], arguments) for d in order}


def _default_words(value: Any) -> str:
    if value is inspect.Parameter.empty:
        return "—"
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(_default_words, value)) + "]"
    return f"`{value}`" if isinstance(value, str) else f"{value}"


def reference_table(cls: type) -> str:
    """The Markdown table of ``cls``'s declared fields: name, valid values, default, when checked."""
    rows = ["| field | meaning | valid values | default | checked |", "|---|---|---|---|---|"]
    for d in declarations(cls):
        when = " / ".join(["✓"] * d.checked + [d.field.later] * bool(d.field.later))
        cells = [f"`{d.name}`", d.field.doc, d.valid_values(), _default_words(d.default), when]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows)


#: A generated table in a Markdown file: ``<!-- fields: package.Class -->`` ... ``<!-- end fields -->``.
TABLE = re.compile(r"(<!-- fields: (?P<path>[\w.]+) -->\n).*?(<!-- end fields -->)", re.DOTALL)


def update_reference(text: str, resolve: Callable[[str], type]) -> str:
    """``text`` with every marked table regenerated from the class ``resolve(path)`` names."""
    return TABLE.sub(lambda m: f"{m[1]}{reference_table(resolve(m['path']))}\n{m[3]}", text)
