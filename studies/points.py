"""A study's points: every arm crossed with every grid value, each with its directory and ``run.py`` commands.

A point's directory is ``<root>/<study>/<arm>/<axis=label,...>`` (``base`` without a grid); an axis is
named by the last part of its key (``n_embd`` for ``model.init_args.gpt2_config.n_embd``) unless two
axes share it. Its commands are ``python run.py <step> --config ... --<key>=<value> ...``: the study's
overrides, then the arm's, then the grid's (later ones win), then what the study sets itself: the
point's ``trainer.default_root_dir``, its W&B run (group = the study, name = ``<arm>/<point>``, tags =
the arm and the grid values, job type = the step) when the config logs to W&B, the DDP collective timeout
of a DDP point, and ``--ckpt_path last`` for ``fit`` (continue a killed fit; Lightning starts afresh when there is no
``last.ckpt``) or ``--ckpt_path <point>/checkpoints/last.ckpt`` for ``test``.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from cognitive_reserve.errors import ConfigError
from studies.spec import Level, Study

#: ``trainer.strategy`` names of Lightning's DDP strategy, and the DDPStrategy arguments each implies.
DDP_NAMES = {
    "ddp": {},
    "ddp_spawn": {"start_method": "spawn"},
    "ddp_fork": {"start_method": "fork"},
    "ddp_find_unused_parameters_true": {"find_unused_parameters": True},
}
DDP_CLASS = "lightning.pytorch.strategies.DDPStrategy"


@dataclass(frozen=True)
class Point:
    """One run of the study: an arm and one value of every grid axis."""

    arm: str
    levels: tuple[tuple[str, Level], ...]  # (axis, level), in grid order
    name: str
    directory: Path

    @property
    def label(self) -> str:
        """``<arm>/<point>``: the point in tables, its W&B run name."""
        return f"{self.arm}/{self.name}"

    def level(self, axis: str) -> Level:
        return dict(self.levels)[axis]


def axis_names(axes: Sequence[str]) -> dict[str, str]:
    """The short name of each axis in directory names: its key's last part, unless two axes share it."""
    last = [axis.rsplit(".", 1)[-1] for axis in axes]
    return {axis: short if last.count(short) == 1 else axis for axis, short in zip(axes, last, strict=True)}


def study_points(study: Study, root: str | Path) -> list[Point]:
    """Every combination of grid values (in the file's order) × every arm: the arms of one combination are
    neighbours, so a study stopped half-way has complete comparisons."""
    axes = list(study.grid)
    short = axis_names(axes)
    points = []
    for combination in itertools.product(*(study.grid[axis] for axis in axes)):
        levels = tuple(zip(axes, combination, strict=True))
        for arm in study.arms:
            name = ",".join(f"{short[axis]}={level.label}" for axis, level in levels) or "base"
            points.append(Point(arm, levels, name, Path(root) / study.name / arm / name))
    return points


def point_overrides(study: Study, point: Point) -> dict[str, Any]:
    """The point's config values by dotted key: the study's, the arm's, then the grid's."""
    values = {**study.overrides, **study.arms[point.arm].overrides}
    for _, level in point.levels:
        values.update(level.overrides)
    return values


def yaml_value(value: Any) -> str:
    """A value as ``run.py`` reads it on the command line (YAML): JSON, floats always with a decimal point."""
    if isinstance(value, str):
        return value if _reads_back(value) else json.dumps(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_nested(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_nested(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def _nested(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else yaml_value(value)


def _reads_back(text: str) -> bool:
    try:
        return yaml.safe_load(text) == text and "\n" not in text
    except yaml.YAMLError:
        return False


def _float(value: float) -> str:
    """``1e-05`` → ``1.0e-05`` (YAML 1.1 reads a float only with a decimal point)."""
    text = repr(value)
    if "e" in text and "." not in text.split("e")[0]:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return text


def flags(values: Mapping[str, Any]) -> list[str]:
    return [f"--{key}={yaml_value(value)}" for key, value in values.items()]


# ---- what the arm's config says (read, not resolved: only the logger and the strategy) ------------------


@functools.cache
def _read_yaml(path: str) -> dict[str, Any]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def merged_config(config_files: Sequence[str], values: Mapping[str, Any]) -> dict[str, Any]:
    """The arm's config files merged in order with ``values`` (dotted keys) set on top: what ``run.py`` will
    parse, before its own defaults and interpolation."""
    merged: dict[str, Any] = {}
    for path in config_files:
        _merge(merged, _read_yaml(path))
    for key, value in values.items():
        node = merged
        *parents, last = key.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[last] = value
    return merged


def _merge(into: dict[str, Any], update: Mapping[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = json.loads(json.dumps(value))  # a copy


def lookup(config: Mapping[str, Any], key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def wandb_logger(config: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The config's W&B logger entry (``class_path``/``init_args``), if it logs to W&B."""
    logger = lookup(config, "trainer.logger")
    if isinstance(logger, Mapping) and str(logger.get("class_path", "")).endswith("WandbLogger"):
        return logger
    return None


def ddp_strategy(config: Mapping[str, Any], field: str) -> dict[str, Any] | None:
    """The DDPStrategy arguments of a DDP point (None when the point does not use DDP)."""
    strategy = lookup(config, "trainer.strategy")
    if isinstance(strategy, str):
        if strategy in DDP_NAMES:
            return dict(DDP_NAMES[strategy])
        if strategy.startswith("ddp"):
            raise ConfigError(field, strategy, f"the study sets DDP's timeout: use one of {', '.join(DDP_NAMES)}")
        return None
    if isinstance(strategy, Mapping) and str(strategy.get("class_path", "")).endswith("DDPStrategy"):
        return dict(strategy.get("init_args") or {})
    return None


def timeout_text(minutes: float) -> str:
    """``h:m:s``, the form jsonargparse reads a ``timedelta`` in."""
    seconds = round(timedelta(minutes=minutes).total_seconds())
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


# ---- the commands -------------------------------------------------------------------------------------------


def study_flags(
    study: Study, point: Point, step: str, directory: str, names: Mapping[str, Any] | None = None
) -> list[str]:
    """What the study sets on top of the point's values for one step: its directory, W&B run (job type = the
    step) and DDP timeout.

    ``names`` replaces the point's name and its grid tags (the W&B sweep puts interpolations there)."""
    values = point_overrides(study, point)
    config = merged_config(study.arms[point.arm].config, values)
    result = [f"--trainer.default_root_dir={directory}"]
    logger = wandb_logger(config)
    if logger is not None:
        tags = list((logger.get("init_args") or {}).get("tags") or [])
        short = axis_names(list(study.grid))
        grid_tags = [f"{short[axis]}={level.label}" for axis, level in point.levels]
        if names is not None:
            grid_tags = list(names["tags"])
        tags += [tag for tag in [point.arm, *grid_tags] if tag not in tags]
        result += [
            f"--trainer.logger.init_args.group={study.name}",
            f"--trainer.logger.init_args.name={point.arm}/{names['name'] if names else point.name}",
            f"--trainer.logger.init_args.tags={json.dumps(tags)}",
            f"--trainer.logger.init_args.job_type={step}",
        ]
    ddp = ddp_strategy(config, f"study.arms.{point.arm}: trainer.strategy")
    if ddp is not None:
        ddp["timeout"] = timeout_text(study.executor.collective_timeout_min)
        result += [f"--trainer.strategy={DDP_CLASS}", *flags({f"trainer.strategy.{k}": v for k, v in ddp.items()})]
    return result


def step_command(study: Study, point: Point, step: str) -> list[str]:
    """``run.py`` and its arguments for one step of a point (the interpreter is the job's own)."""
    arm = study.arms[point.arm]
    configs = [part for path in arm.config for part in ("--config", path)]
    directory = str(point.directory)
    ckpt = "last" if step == "fit" else f"{directory}/checkpoints/last.ckpt"
    return [
        "run.py",
        step,
        *configs,
        *flags(point_overrides(study, point)),
        *study_flags(study, point, step, directory),
        f"--ckpt_path={ckpt}",
    ]


def point_commands(study: Study, point: Point) -> list[tuple[str, list[str]]]:
    """``(step, command)`` for every step of the point, in order."""
    return [(step, step_command(study, point, step)) for step in study.steps]


def safe_name(text: str) -> str:
    """``text`` as one path component."""
    return re.sub(r"[^A-Za-z0-9_.+=,-]", "_", text) or "all"
