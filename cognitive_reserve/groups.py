"""Layer-wise sweeps: a sweep's targets split into named groups, each damaged alone.

A grouping rule (the ``groups`` of a sweep) names the part of the targets each parameter belongs to, as the
model's layout (``cognitive_reserve.layout``, the subject's ``layout``) declares its structure:

- ``per_block``: the blocks the layout declares (GPT-2: ``h.<i>``); a targeted parameter outside every block is
  a group of its own, named like ``per_matrix`` names it.
- ``per_matrix``: every weight matrix with its bias, by module path (``ModelLayout.matrix_name``: from the block's
  name on, GPT-2's ``h.0.attn.c_proj``, ``h.0.mlp.c_fc``; the linear models: ``w`` and ``gamma``). A projection
  that holds Q, K and V side by side (GPT-2's ``c_attn``) is cut into them along its output dimension, as the
  spectral monitor cuts it: ``h.0.attn.c_attn.q``, ``.k``, ``.v`` (columns of the weight, entries of the bias).
- a regular expression with a capture group: searched in each targeted parameter's qualified name, the
  first capture group names the group. Targeted parameters it does not match belong to no group (they
  are damaged in the all-targets sweep only).

``run_grouped_sweep`` runs the ordinary sweep of all targets together first (the reference: rows with an
empty ``group``), then the same grids and seeds on each group alone (``group`` = its name): every other
parameter, and the rest of a cut matrix, stays untouched bit for bit. A perturbation applies inside the
group as it applies to all targets: magnitude pruning's ``scope: global`` ranks the group's weights
together, ``per_tensor`` each of its tensors (each of Q, K, V) alone; a structural perturbation damages the
units the group holds weights of (head deletion in a group of Q columns zeroes the deleted heads' Q columns),
and a group that holds none of its units (head deletion in an MLP group) is not swept with it. A group keeps
the subject's closed form only when it damages every target whole. Levels where a perturbation changes nothing
(level 0) are measured once, in the reference sweep, and their rows reused for every group: the undamaged model scores
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
from cognitive_reserve.layout import NO_LAYOUT, Index, ModelLayout, output_slice
from cognitive_reserve.rows import SweepRow
from cognitive_reserve.sweep import SweepGrid, SweepSubject, reachable_grids, run_sweep
from cognitive_reserve.targets import TargetGroup, TargetSpec, select_targets

#: The named grouping rules (any other value is a regular expression with a capture group).
GROUPINGS = ("per_block", "per_matrix")
#: The names of the parts of a projection that holds Q, K and V side by side, in order.
QKV_PARTS = ("q", "k", "v")


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


def split_targets(
    module: nn.Module, targets: TargetSpec, rule: str, field: str = "groups", layout: ModelLayout = NO_LAYOUT
) -> list[TargetGroup]:
    """The groups of ``module``'s ``targets`` under ``rule`` (``layout``: the module's declared structure), in
    the order their first parameter is registered."""
    check_grouping(field, rule)
    members: dict[str, dict[str, Index | None]] = {}  # group → {parameter: its block, None = whole}
    fused = _fused_parts(module, layout)
    for name in select_targets(module, targets):
        for group, index in _assign(layout, fused, name, rule):
            members.setdefault(group, {})[name] = index
    if not members:
        names = list(select_targets(module, targets))
        preview = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        raise ConfigError(field, rule, f"matches none of the targeted parameters ({preview})")
    return [
        TargetGroup(group, tuple(blocks), {name: index for name, index in blocks.items() if index is not None})
        for group, blocks in members.items()
    ]


def _assign(layout: ModelLayout, fused: dict[str, list[Index]], name: str, rule: str) -> list[tuple[str, Index | None]]:
    """``[(group, block of the parameter or None for all of it)]`` of one targeted parameter."""
    if rule == "per_block":
        block = layout.block_of(name)
        return [(block.name if block else layout.matrix_name(name), None)]
    if rule == "per_matrix":
        if name in fused:
            matrix = layout.matrix_name(name)
            return [(f"{matrix}.{part}", index) for part, index in zip(QKV_PARTS, fused[name], strict=True)]
        return [(layout.matrix_name(name), None)]
    found = re.search(rule, name)
    return [(found.group(1), None)] if found and found.group(1) else []


def _fused_parts(module: nn.Module, layout: ModelLayout) -> dict[str, list[Index]]:
    """``{parameter: [index of Q, of K, of V]}`` of every projection that holds Q, K and V side by side."""
    cuts: dict[str, list[Index]] = {}
    for attention in layout.attention:
        projection = attention.fused()
        if projection is None:
            continue
        for name, dim in ((projection.weight, projection.outputs), (projection.bias, 0)):
            if name is not None and module.get_parameter(name).ndim > dim:
                cuts[name] = [output_slice(dim, p.start, p.start + p.width) for p in attention.qkv]
    return cuts


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
    for group in split_targets(subject.module, subject.targets, rule, layout=subject.layout):
        everything = group.names == whole and not group.parts
        with targeting(subject, group, everything):
            swept = reachable_grids(subject, grids)
            if not swept:
                continue
            names = {grid.perturbation for grid in swept}
            untouched = [row for row in rows if row.level == 0 and not row.group and row.perturbation in names]
            resumed = _keys(completed, group.name)
            fresh = [_as_group(row, group.name, everything) for row in untouched if _key(row) not in resumed]
            if fresh and on_trial is not None:
                on_trial(fresh)
            rows += run_sweep(subject, swept, seed, on_trial=on_trial, completed=completed + fresh, **options)
    return rows


def _as_group(row: SweepRow, group: str, everything: bool) -> SweepRow:
    return dataclasses.replace(row, group=group, expected=row.expected if everything else None)


def _key(row: SweepRow) -> tuple[str, str, float, int]:
    return (row.model, row.perturbation, row.level, row.trial)


def _keys(rows: Iterable[SweepRow], group: str) -> set[tuple[str, str, float, int]]:
    return {_key(row) for row in rows if row.group == group}
