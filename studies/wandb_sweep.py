"""``wandb-sweep``: the study as W&B grid sweeps, for ``wandb agent`` on your own machines.

A W&B sweep runs one command with the grid's values as ``--key=value`` flags (``${args}``), so each arm
is one sweep (and each value of a bundle axis, which sets several keys at once); the plain axes are
its ``parameters``. The command is the study's own: the arm's configs and overrides, then
``${args}``; the point's directory, W&B name and tags are OmegaConf interpolations of the values the
agent passes (``runs/studies/<study>/<arm>/seed_everything=${..seed_everything}``), so every run lands
in the directory ``launch`` would use. With a ``test`` step the command is ``sh -c 'fit ... && test ...'``.
"""

from __future__ import annotations

import itertools
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from cognitive_reserve.errors import ConfigError
from studies.points import (
    Point,
    axis_names,
    flags,
    merged_config,
    point_overrides,
    study_flags,
    wandb_logger,
)
from studies.spec import Level, Study

#: The macros ``wandb agent`` expands in a sweep's command (``wandb/wandb_agent.py``).
AGENT_MACROS = ("${env}", "${interpreter}", "${program}", "${args}")


def is_bundle_axis(study: Study, axis: str) -> bool:
    """An axis of bundles (values that set several keys at once)."""
    return any(level.bundle for level in study.grid[axis])


def interpolation(key: str, used_at: str) -> str:
    """OmegaConf's relative interpolation of ``key`` in the value of ``used_at`` (one dot per level of it)."""
    return "${" + "." * len(used_at.split(".")) + key + "}"


def sweep_documents(study: Study, root: Path, only_arm: str | None = None) -> list[dict[str, Any]]:
    """One W&B grid sweep per arm (and per value of each bundle axis)."""
    plain = [axis for axis in study.grid if not is_bundle_axis(study, axis)]
    bundles = [axis for axis in study.grid if axis not in plain]
    if not plain:
        raise ConfigError("study.grid", list(study.grid), "a W&B sweep needs at least one axis of plain values")
    if only_arm is not None and only_arm not in study.arms:
        raise ConfigError("arm", only_arm, f"not an arm of the study (arms: {', '.join(study.arms)})")
    return [
        sweep_document(study, root, arm, dict(zip(bundles, combination, strict=True)))
        for arm in ([only_arm] if only_arm else list(study.arms))
        for combination in itertools.product(*(study.grid[axis] for axis in bundles))
    ]


def sweep_document(study: Study, root: Path, arm: str, fixed: dict[str, Level]) -> dict[str, Any]:
    """The sweep of one arm with the bundle axes at ``fixed``: the plain axes are its parameters."""
    axes = list(study.grid)
    plain = [axis for axis in axes if axis not in fixed]
    short = axis_names(axes)
    point = Point(arm, tuple((axis, fixed.get(axis, study.grid[axis][0])) for axis in axes), "", Path())

    def labels(used_at: str) -> list[str]:
        return [
            f"{short[axis]}={fixed[axis].label if axis in fixed else interpolation(axis, used_at)}" for axis in axes
        ]

    directory = root / study.name / arm / ",".join(labels("trainer.default_root_dir"))
    names = {
        "name": ",".join(labels("trainer.logger.init_args.name")),
        "tags": labels("trainer.logger.init_args.tags.0"),
    }
    values = point_overrides(study, point)
    checkpoint = interpolation("trainer.default_root_dir", "ckpt_path") + "/checkpoints/last.ckpt"
    steps = {
        step: [
            "run.py",
            step,
            *(part for path in study.arms[arm].config for part in ("--config", path)),
            *flags({key: value for key, value in values.items() if key not in plain}),
            *study_flags(study, point, step, str(directory), names),
            f"--ckpt_path={'last' if step == 'fit' else checkpoint}",
        ]
        for step in study.steps
    }
    suffix = "".join(f"-{level.label}" for level in fixed.values())
    document: dict[str, Any] = {
        "name": f"{study.name}-{arm}{suffix}",
        "description": f"study {study.name}, arm {arm}{suffix} (python -m studies wandb-sweep)",
        "program": "run.py",
        "method": "grid",
    }
    logger = wandb_logger(merged_config(study.arms[arm].config, values))
    if logger is not None and (logger.get("init_args") or {}).get("project"):
        document["project"] = logger["init_args"]["project"]
    document["parameters"] = {axis: {"values": [level.overrides[0][1] for level in study.grid[axis]]} for axis in plain}
    document["command"] = _command(steps)
    return document


def _command(steps: dict[str, list[str]]) -> list[str]:
    """``${interpreter} ${program} fit ... ${args}`` for one step; ``sh -c 'fit ... && test ...'`` for two."""
    if list(steps) == ["fit"]:
        return ["${env}", "${interpreter}", "${program}", *steps["fit"][1:], "${args}"]
    fit, test = (shlex.join(["python", *argv]) for argv in steps.values())
    # the test is a W&B run of its own in the study's group, not a second run of the sweep's
    script = f'{fit} "$@" && env -u WANDB_RUN_ID -u WANDB_SWEEP_ID {test} "$@"'

    return ["/bin/sh", "-c", script, "sh", "${args}"]


def print_sweeps(study: Study, root: Path, only_arm: str | None = None, say: Callable[[str], None] = print) -> int:
    """The sweeps as YAML (several documents when the study needs several sweeps)."""
    documents = sweep_documents(study, root, only_arm)
    if len(documents) > 1:
        say(
            f"# {len(documents)} W&B sweeps of study {study.name} (a sweep runs one command: one per arm): save each "
            "document to its own file, or pick one with --arm; then: wandb sweep FILE && wandb agent SWEEP_ID"
        )
    else:
        say(f"# W&B sweep of study {study.name}: wandb sweep FILE && wandb agent SWEEP_ID")
    say(yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True, width=10_000).rstrip())
    return 0
