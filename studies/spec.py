"""The study file (``configs/studies/*.yaml``): arms, a grid crossed with every arm, steps, comparison, executor.

Every field is declared once (``cognitive_reserve.fields``): its doc, valid values and default live in
the ``__init__`` signatures below, the checks come from them, and ``docs/studies.md`` shows their tables
(``python config_reference.py`` regenerates them). A bad value stops ``load_study`` with one
``ConfigError`` naming it, e.g. ``study.grid.seed_everything=[]: must list at least one value``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml

from cognitive_reserve.errors import ConfigError, check_text, first_line
from cognitive_reserve.fields import Field, check_fields, declarations, declared

STEPS = ("fit", "test")
#: Names that become a directory (a study, an arm) and grid labels.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
#: A dotted config key, as ``run.py`` takes it on the command line (``model.init_args.k``).
KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
SCALARS = (bool, int, float, str)


@dataclass(frozen=True)
class Level:
    """One value of a grid axis: the label in the point's directory name and the overrides it sets.

    ``x`` places it on the report's scale axis (the value itself for a number, a bundle's ``x``)."""

    label: str
    overrides: tuple[tuple[str, Any], ...]
    x: float | None
    bundle: bool = False


def build(cls: type, where: str, mapping: Any) -> Any:
    """``cls(**mapping)`` for a mapping read from YAML: unknown and missing fields named as ``<where>.<field>``."""
    if not isinstance(mapping, Mapping):
        raise ConfigError(where, mapping, "must be a mapping of fields")
    known = {d.name: d for d in declarations(cls)}
    for key, value in mapping.items():
        if key not in known:
            near = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
            hint = f"did you mean {near[0]}? " if near else ""
            raise ConfigError(f"{where}.{key}", brief(value), f"not a field ({hint}fields: {', '.join(known)})")
    for name, declaration in known.items():
        if declaration.required and name not in mapping:
            raise ConfigError(f"{where}.{name}", None, "required")
    return cls(**mapping, where=where)


def brief(value: Any, width: int = 60) -> Any:
    """``value`` itself when its text is short, else its text cut to ``width`` characters (for an error line)."""
    text = repr(value)
    return value if len(text) <= width else Shortened(text[: width - 1] + "…")


class Shortened(str):
    """Text that an error line shows as it is (not quoted)."""

    def __repr__(self) -> str:
        return str(self)


def set_fields(target: object, fields: Mapping[str, Any], **if_null: Any) -> None:
    """Every checked field as an attribute of ``target``, its type the one its declaration gives; ``if_null``:
    what a null becomes (``overrides={}``)."""
    for name, value in fields.items():
        setattr(target, name, if_null.get(name) if value is None else value)


def check_name(field: str, value: Any) -> str:
    check_text(field, value)
    if not NAME.match(value):
        raise ConfigError(field, value, "letters, digits and _ . + - only (it names a directory)")
    return value


def check_key(field: str, key: Any) -> str:
    if not isinstance(key, str) or not KEY.match(key):
        raise ConfigError(field, key, "not a dotted config key such as model.init_args.k")
    return key


def check_overrides(field: str, value: Any) -> dict[str, Any]:
    """``{dotted key: value}``; a value may be any YAML value (a list, a mapping, null)."""
    if not isinstance(value, Mapping):
        raise ConfigError(field, value, "must be a mapping of dotted config keys to values")
    for key in value:
        check_key(f"{field}.{key}", key)
    return dict(value)


def check_configs(field: str, value: Any) -> tuple[str, ...]:
    paths = [value] if isinstance(value, str) else value
    if not isinstance(paths, list) or not paths:
        raise ConfigError(field, value, "must be a config file or a non-empty list of them")
    for path in paths:
        if not isinstance(path, str) or not Path(path).is_file():
            raise ConfigError(field, path, "no such config file (paths are relative to the repository root)")
    return tuple(paths)


@declared("study.arms")
class Arm:
    """One arm of the study: a ``run.py`` config and the overrides that make it this arm."""

    def __init__(
        self,
        config: Annotated[
            tuple[str, ...],
            Field(
                "the arm's `run.py` config file, or several merged in order (`--config` each)",
                valid="a path or a non-empty list of paths of existing files, relative to the repository root",
                check=check_configs,
            ),
        ],
        overrides: Annotated[
            dict[str, Any] | None,
            Field(
                "config values of this arm by dotted key (`data.init_args.aligned_tasks: true`)",
                valid="null or a mapping of dotted config keys to values",
                check=check_overrides,
            ),
        ] = None,
        where: str = "study.arms",
    ) -> None:
        set_fields(self, check_fields(Arm, locals(), prefix=where), overrides={})


def check_list_of_names(field: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(field, value, "must be a list of non-empty strings")
    return tuple(value)


@declared("study.compare")
class Comparison:
    """What ``report`` compares: arm B against arm A, one comparison per group of points."""

    def __init__(
        self,
        a: Annotated[str, Field("arm A, the reference (e.g. the monolingual model)")],
        b: Annotated[str, Field("arm B, the one expected to overtake A (e.g. the bilingual model)")],
        group_by: Annotated[
            tuple[str, ...] | None,
            Field(
                "grid axes that define a group: one comparison per value (e.g. per width); the other axes "
                "(seeds) are pooled as training replicates",
                valid="null (one group) or a list of grid axes",
                check=check_list_of_names,
            ),
        ] = None,
        scale: Annotated[
            str | None,
            Field(
                "the grid axis the report draws the cross-over level and the clean-metric gap against (model "
                "size, examples per task, a learning rate, ...): each group at its value's `x` (a number's "
                "value, a bundle's `x`; in grid order when not numbers)",
                valid="null or one of `group_by`",
            ),
        ] = None,
        scale_label: Annotated[str | None, Field("the label of that axis in the figure (null: the axis' name)")] = None,
        metrics: Annotated[
            tuple[str, ...] | None,
            Field(
                "metrics to compare (null: those both sides share, `bits_per_byte_*` when there are any)",
                valid="null or a list of metric names",
                check=check_list_of_names,
            ),
        ] = None,
        sweep: Annotated[
            str | None,
            Field(
                "each point's sweep CSV, a glob under the point directory (the last match is used; null: "
                "`robustness/sweep_test_epoch???.csv` with a `test` step, else `robustness/sweep_fit_epoch???.csv`)"
            ),
        ] = None,
        model_a: Annotated[str | None, Field("model name to take from A's tables when they hold several")] = None,
        model_b: Annotated[str | None, Field("model name to take from B's tables when they hold several")] = None,
        direction: Annotated[
            Literal["lower", "higher"] | None, Field("whether a lower or higher metric is better (null: from its name)")
        ] = None,
        confidence: Annotated[float, Field("confidence of the intervals", gt=0, lt=1)] = 0.95,
        where: str = "study.compare",
    ) -> None:
        set_fields(self, check_fields(Comparison, locals(), prefix=where), group_by=())


def check_slurm_options(field: str, value: Any) -> dict[str, Any]:
    """Extra submitit SLURM options: ``slurm_<name>`` where ``<name>`` is a SlurmExecutor parameter."""
    from submitit import SlurmExecutor

    if not isinstance(value, Mapping):
        raise ConfigError(field, value, "must be a mapping of slurm_* options")
    valid = SlurmExecutor._valid_parameters()
    for key in value:
        if not (isinstance(key, str) and key.startswith("slurm_") and key.removeprefix("slurm_") in valid):
            raise ConfigError(f"{field}.{key}", value[key], "not a submitit SLURM option (slurm_<SlurmExecutor field>)")
    return dict(value)


@declared("study.executor")
class ExecutorSettings:
    """How the points run: submitit's settings (local processes ignore the SLURM-only ones)."""

    def __init__(
        self,
        timeout_min: Annotated[
            int, Field("time limit of one point's job in minutes (SLURM `--time`; a local job is stopped)", ge=1)
        ] = 1440,
        signal_delay_s: Annotated[
            int,
            Field(
                "seconds before the time limit at which a job is told to stop: it saves where its fit is and is "
                "requeued (SLURM `--signal`, which SLURM may send up to a minute early; local jobs: 30 s)",
                ge=1,
                valid="integer ≥ 1, below the time limit (`timeout_min` × 60)",
            ),
        ] = 120,
        max_requeues: Annotated[
            int,
            Field(
                "requeues of one point (time limits, preemptions) before it stops as failed: a point that can "
                "never finish does not run forever",
                ge=0,
            ),
        ] = 10,
        max_parallel: Annotated[
            int, Field("points running at once (SLURM: the job array's parallelism); `--max-parallel` wins", ge=1)
        ] = 1,
        partition: Annotated[str | None, Field("SLURM partition")] = None,
        nodes: Annotated[int, Field("nodes per point (SLURM)", ge=1)] = 1,
        gpus_per_node: Annotated[int, Field("GPUs per node of one point", ge=0)] = 0,
        tasks_per_node: Annotated[
            int,
            Field(
                "SLURM tasks per node: one per GPU for a DDP point (local jobs: always 1, Lightning starts the "
                "DDP processes itself)",
                ge=1,
            ),
        ] = 1,
        cpus_per_task: Annotated[
            int | None,
            Field("CPUs per task (SLURM; null: 1 without GPUs, 4 with; the job's torch threads follow it)", ge=1),
        ] = None,
        mem_gb: Annotated[
            float | None,
            Field(
                "memory per node in GB (SLURM; null: the arms' model family's default, `studies.resources`): "
                "a job that asks for none gets the whole node and runs alone",
                gt=0,
            ),
        ] = None,
        collective_timeout_min: Annotated[
            float,
            Field(
                "DDP points: timeout of every collective, so a job whose rank died fails within it instead of hanging",
                gt=0,
            ),
        ] = 30.0,
        slurm: Annotated[
            dict[str, Any] | None,
            Field(
                "further submitit SLURM options (`slurm_account: X`, `slurm_constraint: a100`, ...)",
                valid="null or a mapping of `slurm_<name>` options, `<name>` a parameter of submitit's SlurmExecutor",
                check=check_slurm_options,
            ),
        ] = None,
        where: str = "study.executor",
    ) -> None:
        set_fields(self, check_fields(ExecutorSettings, locals(), prefix=where), slurm={})
        if self.signal_delay_s >= self.timeout_min * 60:
            reason = f"must be below the time limit ({where}.timeout_min={self.timeout_min}: {self.timeout_min * 60} s)"
            raise ConfigError(f"{where}.signal_delay_s", self.signal_delay_s, reason)


def check_arms(field: str, value: Any) -> dict[str, Arm]:
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(field, value, "must map at least one arm name to {config, overrides}")
    return {check_name(f"{field}.{name}", name): build(Arm, f"{field}.{name}", arm) for name, arm in value.items()}


def check_grid(field: str, value: Any) -> dict[str, tuple[Level, ...]]:
    """``{axis: [values]}``: plain values of a dotted key, or bundles ``{label, x, <key>: value, ...}``."""
    if not isinstance(value, Mapping):
        raise ConfigError(field, value, "must map grid axes to lists of values")
    return {axis: _levels(f"{field}.{axis}", axis, values) for axis, values in value.items()}


def _levels(field: str, axis: Any, values: Any) -> tuple[Level, ...]:
    if not isinstance(values, list) or not values:
        raise ConfigError(field, values, "must list at least one value")
    if all(isinstance(v, Mapping) for v in values):
        levels = tuple(_bundle(f"{field}[{i}]", v) for i, v in enumerate(values))
    elif any(isinstance(v, Mapping) for v in values):
        raise ConfigError(field, values, "mixes plain values and bundles ({label: ..., <key>: value})")
    else:
        check_key(field, axis)
        levels = tuple(_plain(field, axis, v) for v in values)
    labels = [level.label for level in levels]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise ConfigError(field, values, f"{twice[0]!r} is listed twice")
    return levels


def _plain(field: str, key: str, value: Any) -> Level:
    if value is None or not isinstance(value, SCALARS):
        raise ConfigError(field, value, "a plain grid value must be a number, a string or true/false (or a bundle)")
    label = point_label(value)
    if not NAME.match(label):
        raise ConfigError(field, value, "cannot name a directory: letters, digits and _ . + - only")
    x = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    return Level(label, ((key, value),), x)


def _bundle(field: str, bundle: Mapping[str, Any]) -> Level:
    """A value that sets several keys at once, e.g. one model size: ``{label: 10M, x: 1.0e7, <key>: value, ...}``."""
    label = check_name(f"{field}.label", bundle.get("label"))
    x = bundle.get("x")
    if x is not None and (isinstance(x, bool) or not isinstance(x, int | float)):
        reason = "must be a number: its place on the report's scale axis (YAML reads 1.0e+7 as a number, 1e7 as text)"
        raise ConfigError(f"{field}.x", x, reason)
    overrides = check_overrides(field, {k: v for k, v in bundle.items() if k not in ("label", "x")})
    if not overrides:
        raise ConfigError(field, dict(bundle), "a bundle sets at least one config key besides label and x")
    return Level(label, tuple(overrides.items()), None if x is None else float(x), bundle=True)


def point_label(value: Any) -> str:
    """How a plain grid value reads in a directory name: Python's ``str`` (what OmegaConf interpolation gives)."""
    return str(value)


def check_steps(field: str, value: Any) -> tuple[str, ...]:
    if value not in (["fit"], ["fit", "test"], ("fit",), ("fit", "test")):
        raise ConfigError(field, value, "must be [fit] or [fit, test]")
    return tuple(value)


def check_optional_mapping(cls: type) -> Any:
    """A ``check`` that builds ``cls`` from a mapping (errors named after the field)."""
    return lambda field, value: build(cls, field, value)


@declared("study")
class Study:
    """A grid of ``run.py`` runs declared in one file: every arm crossed with every grid value."""

    def __init__(
        self,
        name: Annotated[
            str,
            Field(
                "the study's name: its directory under `--root` and its W&B group (default: the file's name)",
                valid="letters, digits and _ . + -",
                check=check_name,
            ),
        ],
        arms: Annotated[
            dict[str, Arm],
            Field(
                "named arms, each `{config, overrides}` (table below)",
                valid="a mapping of at least one arm name (letters, digits, _ . + -) to an arm",
                check=check_arms,
            ),
        ],
        grid: Annotated[
            dict[str, tuple[Level, ...]] | None,
            Field(
                "axes crossed with every arm: `{dotted key: [values]}`, or `{axis: [bundles]}` where a bundle "
                "`{label: L, x: X, <key>: value, ...}` sets several keys at once (e.g. one model size)",
                valid="null or a mapping of axes to non-empty lists of distinct plain values (numbers, strings, "
                "booleans) or bundles",
                check=check_grid,
            ),
        ] = None,
        steps: Annotated[
            tuple[str, ...],
            Field(
                "what each point runs: `fit` (resumed from its `last.ckpt`), then `test` of its own `last.ckpt`",
                valid="[fit] or [fit, test]",
                check=check_steps,
            ),
        ] = ("fit", "test"),
        overrides: Annotated[
            dict[str, Any] | None,
            Field(
                "config values of every arm, by dotted key (an arm's own overrides and the grid win)",
                valid="null or a mapping of dotted config keys to values",
                check=check_overrides,
            ),
        ] = None,
        compare: Annotated[
            Comparison | None,
            Field(
                "what `report` compares (table below)",
                valid="null or a comparison",
                check=check_optional_mapping(Comparison),
            ),
        ] = None,
        executor: Annotated[
            ExecutorSettings | None,
            Field(
                "how the points run (table below)",
                valid="null or executor settings",
                check=check_optional_mapping(ExecutorSettings),
            ),
        ] = None,
        caption: Annotated[
            str | None,
            Field("a line under the report's figures: what the data is (e.g. `smoke: synthetic corpus, tiny models`)"),
        ] = None,
        where: str = "study",
    ) -> None:
        fields = check_fields(Study, locals(), prefix=where)
        set_fields(self, fields, grid={}, overrides={}, executor=ExecutorSettings(where=f"{where}.executor"))
        self._check_comparison(where)

    def _check_comparison(self, where: str) -> None:
        compare = self.compare
        if compare is None:
            return
        for side in ("a", "b"):
            arm = getattr(compare, side)
            if arm not in self.arms:
                raise ConfigError(f"{where}.compare.{side}", arm, f"not an arm (arms: {', '.join(self.arms)})")
        if compare.a == compare.b:
            raise ConfigError(f"{where}.compare.b", compare.b, "must be another arm than a")
        for axis in compare.group_by:
            if axis not in self.grid:
                raise ConfigError(f"{where}.compare.group_by", axis, f"not a grid axis (axes: {', '.join(self.grid)})")
        if compare.scale is not None and compare.scale not in compare.group_by:
            raise ConfigError(f"{where}.compare.scale", compare.scale, "must be one of group_by")

    @property
    def sweep_glob(self) -> str:
        """Each point's sweep CSV (a glob under the point directory)."""
        if self.compare is not None and self.compare.sweep:
            return self.compare.sweep
        return f"robustness/sweep_{'test' if 'test' in self.steps else 'fit'}_epoch???.csv"


def load_study(path: str | Path) -> Study:
    """The study declared in ``path`` (its name defaults to the file's stem); ``ConfigError`` on bad input."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("study", str(path), "no such study file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(err, "problem", None) or first_line(err)
        raise ConfigError("study", str(path), f"not valid YAML: {problem}{where}") from None
    if not isinstance(data, Mapping):
        raise ConfigError("study", str(path), "must be a mapping of study fields")
    return build(Study, "study", {"name": path.stem, **data})
