"""Which parameters a perturbation touches.

A target specification is either a regular expression (searched in each parameter's qualified
name, so ``"attn"`` selects every parameter whose name contains ``attn``), a list of such
patterns (union), a module type / tuple of module types (all parameters of matching
submodules), or a ``TargetGroup``: named parameters, some of them only in part (a block of
entries, e.g. the Q columns of GPT-2's fused ``c_attn``; ``cognitive_reserve.groups`` builds them).
A specification that matches nothing is an error, never a silent no-op.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from cognitive_reserve.errors import ConfigError
from cognitive_reserve.layout import Index


@dataclass(frozen=True)
class TargetGroup:
    """A named set of parameters (by qualified name), each damaged whole or only at ``parts[name]``
    (an index: ``parameter[index]`` is the block damaged; the rest of that parameter stays as it is)."""

    name: str
    names: tuple[str, ...]
    parts: Mapping[str, Index] = field(default_factory=dict)


TargetSpec = str | Sequence[str] | type[nn.Module] | tuple[type[nn.Module], ...] | TargetGroup


def target_parts(targets: TargetSpec) -> dict[str, Index]:
    """The parameters a specification damages only in part, with the index of that part (none: all whole)."""
    return dict(targets.parts) if isinstance(targets, TargetGroup) else {}


def group_name(targets: TargetSpec) -> str:
    """The name of a ``TargetGroup`` (the CSV's ``group``); empty for any other specification."""
    return targets.name if isinstance(targets, TargetGroup) else ""


def select_targets(module: nn.Module, targets: TargetSpec) -> dict[str, nn.Parameter]:
    """Return the targeted parameters of ``module`` by qualified name, in registration order."""
    if isinstance(targets, TargetGroup):
        selected = {name: param for name, param in module.named_parameters() if name in targets.names}
        missing = sorted(set(targets.names) - set(selected))
        if missing:
            raise ConfigError("targets", targets.name, f"names parameters {type(module).__name__} lacks: {missing}")
    elif isinstance(targets, type) or (
        isinstance(targets, tuple) and targets and all(isinstance(t, type) for t in targets)
    ):
        selected = _by_module_type(module, targets)
    else:
        patterns = [targets] if isinstance(targets, str) else list(targets)
        if not patterns:
            raise ConfigError("targets", targets, "give at least one name pattern")
        selected = _by_name(module, patterns)
    if not selected:
        names = [name for name, _ in module.named_parameters()]
        preview = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
        raise ConfigError("targets", _describe(targets), f"matches no parameter of {type(module).__name__} ({preview})")
    return selected


def check_name_patterns(field: str, targets: object) -> str | list[str]:
    """A regular expression or a non-empty list of them (a config's ``targets``); checks the syntax only."""
    patterns = [targets] if isinstance(targets, str) else targets
    if not isinstance(patterns, list | tuple) or not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise ConfigError(field, targets, "give a regular expression or a non-empty list of them")
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as err:
            raise ConfigError(field, pattern, f"not a valid regular expression ({err})") from None
    return targets if isinstance(targets, str) else list(targets)


def _by_name(module: nn.Module, patterns: list[str]) -> dict[str, nn.Parameter]:
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as err:
            raise ConfigError("targets", pattern, f"not a valid regular expression ({err})") from None
    return {name: param for name, param in module.named_parameters() if any(regex.search(name) for regex in compiled)}


def _by_module_type(module: nn.Module, types: type[nn.Module] | tuple[type[nn.Module], ...]) -> dict[str, nn.Parameter]:
    selected: dict[str, nn.Parameter] = {}
    for prefix, sub in module.named_modules():
        if isinstance(sub, types):
            for name, param in sub.named_parameters(prefix=prefix, recurse=False):
                selected[name] = param
    return selected


def _describe(targets: TargetSpec) -> object:
    if isinstance(targets, TargetGroup):
        return targets.name
    if isinstance(targets, type):
        return targets.__name__
    if isinstance(targets, tuple) and all(isinstance(t, type) for t in targets):
        return tuple(t.__name__ for t in targets)
    return targets


def target_bytes(params: dict[str, torch.Tensor]) -> int:
    """Total storage of the targeted tensors, in bytes."""
    return sum(p.numel() * p.element_size() for p in params.values())
