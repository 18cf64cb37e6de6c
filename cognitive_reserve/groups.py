"""Layer-wise sweeps: a sweep's targets split into named groups, each damaged alone.

A grouping rule (the ``groups`` of a sweep) names the part of the targets each parameter belongs to:

- ``per_block``: transformer blocks, ``h.<i>`` (GPT-2); a targeted parameter outside every block is a
  group of its own, named like ``per_matrix`` names it.
- ``per_matrix``: every weight matrix with its bias, by module path without the leading
  ``model.transformer.`` (``h.0.attn.c_proj``, ``h.0.mlp.c_fc``; the linear models: ``w`` and ``gamma``).
  GPT-2's fused ``c_attn`` is cut into its Q, K and V blocks along its output dimension, as the spectral
  monitor cuts it: ``h.0.attn.c_attn.q``, ``.k``, ``.v`` (columns of the weight, entries of the bias).
- a regular expression with a capture group: searched in each targeted parameter's qualified name, the
  first capture group names the group. Targeted parameters it does not match belong to no group (they
  are damaged in the all-targets sweep only).

``run_grouped_sweep`` runs the ordinary sweep of all targets together first (the reference: rows with an
empty ``group``), then the same grids and seeds on each group alone (``group`` = its name): every other
parameter, and the rest of a cut matrix, stays untouched bit for bit. A perturbation applies inside the
group as it applies to all targets: magnitude pruning's ``scope: global`` ranks the group's weights
together, ``per_tensor`` each of its tensors (each of Q, K, V) alone. A group keeps the subject's closed
form only when it damages every target whole. Levels where a perturbation changes nothing (level 0) are
measured once, in the reference sweep, and their rows reused for every group: the undamaged model scores
the same whichever group is "damaged" by nothing.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from torch import nn

from cognitive_reserve.errors import ConfigError
from cognitive_reserve.matrices import DEFAULT_STRIP_PREFIX, FUSED_QKV, QKV_PARTS, Index, output_dim, output_part
from cognitive_reserve.rows import SweepRow
from cognitive_reserve.sweep import SweepGrid, SweepSubject, run_sweep
from cognitive_reserve.targets import TargetGroup, TargetSpec, select_targets

#: The named grouping rules (any other value is a regular expression with a capture group).
GROUPINGS = ("per_block", "per_matrix")
BLOCK = re.compile(r"(?:^|\.)(h\.\d+)\.")
_PREFIX = re.compile(DEFAULT_STRIP_PREFIX)
_FUSED = re.compile(FUSED_QKV)


def check_grouping(field: str, rule: object) -> str:
    """``per_block``, ``per_matrix`` or a valid regular expression with at least one capture group."""
    if rule in GROUPINGS:
        return rule  # type: ignore[return-value]
    named = " or ".join(GROUPINGS)
    if not isinstance(rule, str) or not rule:
        raise ConfigError(field, rule, f"give {named} or a regular expression with a capture group")
    try:
        pattern = re.compile(rule)
    except re.error as err:
        raise ConfigError(field, rule, f"not a valid regular expression ({err})") from None
    if pattern.groups < 1:
        raise ConfigError(field, rule, f"a regular expression needs a capture group to name the groups (or {named})")
    return rule


def split_targets(module: nn.Module, targets: TargetSpec, rule: str, field: str = "groups") -> list[TargetGroup]:
    """The groups of ``module``'s ``targets`` under ``rule``, in the order their first parameter is registered."""
    check_grouping(field, rule)
    members: dict[str, dict[str, Index | None]] = {}  # group → {parameter: its block, None = whole}
    for name in select_targets(module, targets):
        for group, index in _assign(module, name, rule):
            members.setdefault(group, {})[name] = index
    if not members:
        names = list(select_targets(module, targets))
        preview = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        raise ConfigError(field, rule, f"matches none of the targeted parameters ({preview})")
    return [
        TargetGroup(group, tuple(blocks), {name: index for name, index in blocks.items() if index is not None})
        for group, blocks in members.items()
    ]


def _assign(module: nn.Module, name: str, rule: str) -> list[tuple[str, Index | None]]:
    """``[(group, block of the parameter or None for all of it)]`` of one targeted parameter."""
    if rule == "per_block":
        block = BLOCK.search(name)
        return [(block.group(1) if block else matrix_name(name), None)]
    if rule == "per_matrix":
        if _FUSED.search(name):
            dim = output_dim(module, name)
            size = module.get_parameter(name).shape[dim]
            if size % len(QKV_PARTS) == 0:
                return [
                    (f"{matrix_name(name)}.{part}", output_part(dim, size, i, len(QKV_PARTS)))
                    for i, part in enumerate(QKV_PARTS)
                ]
        return [(matrix_name(name), None)]
    found = re.search(rule, name)
    return [(found.group(1), None)] if found and found.group(1) else []


def matrix_name(name: str) -> str:
    """A parameter's module path without the leading ``model.transformer.`` (from ``h.<i>`` on in a block),
    and without ``.weight``/``.bias``: ``model.transformer.h.0.attn.c_proj.bias`` → ``h.0.attn.c_proj``."""
    block = BLOCK.search(name)
    short = name[block.start(1) :] if block else _PREFIX.sub("", name, count=1)
    module_path, _, leaf = short.rpartition(".")
    return module_path if module_path and leaf in ("weight", "bias") else short


@contextmanager
def targeting(subject: SweepSubject, group: TargetGroup, everything: bool) -> Iterator[SweepSubject]:
    """``subject`` with ``group`` as its targets for the block (its closed form kept only when the group is
    ``everything``); restored afterwards. In place: the subject's own scoring functions read its targets."""
    saved = (subject.targets, subject.expected)
    subject.targets = group
    if not everything:
        subject.expected = None
    try:
        yield subject
    finally:
        subject.targets, subject.expected = saved


def run_grouped_sweep(
    subject: SweepSubject,
    grids: Sequence[SweepGrid],
    seed: int,
    rule: str | None,
    *,
    on_trial: Callable[[list[SweepRow]], None] | None = None,
    completed: Iterable[SweepRow] = (),
    **options: Any,
) -> list[SweepRow]:
    """All targets together (``run_sweep``), then, with a grouping ``rule``, every group of
    ``split_targets`` alone, same grids and seeds; rows in that order. ``options`` go to ``run_sweep``."""
    completed = list(completed)
    rows = run_sweep(subject, grids, seed, on_trial=on_trial, completed=completed, **options)
    if rule is None:
        return rows
    whole = tuple(select_targets(subject.module, subject.targets))
    untouched = [row for row in rows if row.level == 0]  # the undamaged model's rows
    for group in split_targets(subject.module, subject.targets, rule):
        everything = group.names == whole and not group.parts
        resumed = _keys(completed, group.name)
        fresh = [_as_group(row, group.name, everything) for row in untouched if _key(row) not in resumed]
        if fresh and on_trial is not None:
            on_trial(fresh)
        with targeting(subject, group, everything):
            rows += run_sweep(subject, grids, seed, on_trial=on_trial, completed=completed + fresh, **options)
    return rows


def _as_group(row: SweepRow, group: str, everything: bool) -> SweepRow:
    return dataclasses.replace(row, group=group, expected=row.expected if everything else None)


def _key(row: SweepRow) -> tuple[str, str, float, int]:
    return (row.model, row.perturbation, row.level, row.trial)


def _keys(rows: Iterable[SweepRow], group: str) -> set[tuple[str, str, float, int]]:
    return {_key(row) for row in rows if row.group == group}
