"""Adaptive trials: a level gets seeded trials until the 95% interval of its mean is honest and narrow enough.

A grid's ``trials`` is either a count (every random level gets that many) or a rule, written in a
config as ``trials: {ci_half_width: X, relative: false, min: 20, max: 50}``:

- A level first gets ``min`` trials, then one more at a time, and stops at the first count whose
  95% interval of the mean (``cognitive_reserve.intervals``, the one its summary reports) is honest and has
  a half-width ≤ ``ci_half_width`` (``relative: true``: ≤ ``ci_half_width`` × |mean|, e.g. 0.01 for 1 %),
  or at ``max``. Honest means not flagged, so a level never stops before 10 trials whatever ``min`` says, nor,
  where its level is the per-trial probability that a unit is damaged, before ``intervals.trials_needed``.
  ``min`` is ``DEFAULT_MIN`` unless given: stopping at the first narrow interval favours runs of trials that
  happen to agree, and the coverage bench (``docs/intervals.md``) measures how much the interval at the stop
  then loses for each ``min``.
  Every metric the model reports must reach the target, or only ``metric`` when given. A non-finite value
  never reaches it, nor does a relative target a metric whose mean is 0, nor an unbounded interval.
- Comparison (``reference: <a sweep CSV of the other model, same grid and seed>``): the interval is the
  one of the paired difference, this model − the reference, trial by trial (same seeds, checked), and
  a level also stops as soon as that interval excludes 0: the sign of the difference is settled.
  A level stops at the number of trials the reference has for it (later trials have no partner).
  ``reference_model`` picks the model when the CSV holds several.

Trial t of a level keeps the seed it has in a fixed grid, so an adaptive sweep's trials are the
first ones of the fixed sweep and paired comparisons still pair. A decision depends on the measured
values and the trials' seeds only (they seed the interval's resampling): a resumed sweep (whose finished
trials come back from its CSV) and every DDP rank (whose metrics are reduced across ranks) take the same
decisions, whatever ``trial_batch``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from cognitive_reserve.errors import ConfigError, check_bool, check_int, check_number, check_text
from cognitive_reserve.intervals import interval_seed, level_interval
from cognitive_reserve.io import read_sweep_csv
from cognitive_reserve.metric_ranges import UNBOUNDED, metric_range
from cognitive_reserve.perturbations import hit_probability
from cognitive_reserve.rows import all_targets

#: The default ``min`` of a rule (see the module docstring).
DEFAULT_MIN = 20
#: Keys of a ``trials`` rule in a config.
RULE_KEYS = ("ci_half_width", "relative", "min", "max", "metric", "reference", "reference_model")

#: One level's reference trials, in trial order: ``(seed, {metric: value})``.
ReferenceTrials = list[tuple[int, dict[str, float]]]


@dataclass(frozen=True)
class AdaptiveTrials:
    """Trials per level until the 95% CI is honest and its half-width reaches ``ci_half_width`` (see the module
    docstring)."""

    ci_half_width: float
    relative: bool = False
    min: int = DEFAULT_MIN
    max: int = 50
    metric: str | None = None
    reference: str | None = None
    reference_model: str | None = None
    #: The reference CSV's trials per (perturbation, level), read once when the rule is built.
    paired: Mapping[tuple[str, float], ReferenceTrials] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_config(cls, name: str, spec: Mapping[str, Any]) -> AdaptiveTrials:
        """A validated rule from a config mapping; errors name ``<name>.<key>``."""
        for key in spec:
            if key not in RULE_KEYS:
                raise ConfigError(f"{name}.{key}", spec[key], f"unknown key; choose from {', '.join(RULE_KEYS)}")
        if "ci_half_width" not in spec:
            raise ConfigError(name, dict(spec), "an adaptive rule needs ci_half_width (or give an integer)")
        width = check_number(f"{name}.ci_half_width", spec["ci_half_width"], low=0, low_open=True)
        relative = check_bool(f"{name}.relative", spec.get("relative", False))
        least = check_int(f"{name}.min", spec.get("min", DEFAULT_MIN), minimum=2)
        most = check_int(f"{name}.max", spec.get("max", 50), minimum=least)
        metric = spec.get("metric")
        if metric is not None:
            check_text(f"{name}.metric", metric)
        reference, model = spec.get("reference"), spec.get("reference_model")
        paired = _read_reference(name, reference, model) if reference is not None else {}
        if reference is None and model is not None:
            raise ConfigError(f"{name}.reference_model", model, "needs a reference CSV")
        return cls(width, relative, least, most, metric, reference, model, paired)

    def cap(self, perturbation: str, level: float) -> int:
        """The most trials a level may get: ``max``, or fewer when the reference has fewer."""
        if not self.reference:
            return self.max
        trials = self.paired.get((perturbation, level))
        if not trials:
            raise ConfigError("trials.reference", self.reference, f"has no trials of {perturbation} at level {level}")
        return min(self.max, len(trials))

    def settled(self, perturbation: str, level: float, seeds: Sequence[int], values: Mapping[str, list[float]]) -> bool:
        """Whether a level whose first trials (``seeds``) measured ``values`` needs no more trials."""
        count = len(seeds)
        if count >= self.cap(perturbation, level):
            return True
        if count < self.min:
            return False
        reference = self._reference_values(perturbation, level, seeds) if self.reference else None
        hits = hit_probability(perturbation, level)
        for metric in self._targeted(values):
            own = values[metric]
            if reference:
                series = [a - b for a, b in zip(own, reference[metric], strict=True)]
                seed = interval_seed(f"{metric} - reference", seeds)
                interval = level_interval(series, UNBOUNDED, seed, hit_probability=hits)
            else:
                seed = interval_seed(metric, seeds)
                interval = level_interval(own, metric_range(metric), seed, hit_probability=hits)
            scale = abs(sum(own) / count) if self.relative else 1.0
            if not narrow_enough(interval.low, interval.high, interval.honest, self.ci_half_width * scale, reference):
                return False
        return True

    def _targeted(self, values: Mapping[str, list[float]]) -> list[str]:
        if self.metric is None:
            return list(values)
        if self.metric not in values:
            raise ConfigError("trials.metric", self.metric, f"not measured; the model reports {sorted(values)}")
        return [self.metric]

    def _reference_values(self, perturbation: str, level: float, seeds: Sequence[int]) -> dict[str, list[float]]:
        """The reference's values of the same trials, per metric (their seeds must match)."""
        trials = self.paired[(perturbation, level)][: len(seeds)]
        values: dict[str, list[float]] = {}
        for seed, (reference_seed, metrics) in zip(seeds, trials, strict=True):
            if seed != reference_seed:
                reason = f"was swept with other seeds ({perturbation} {level}: {reference_seed}, here {seed})"
                raise ConfigError("trials.reference", self.reference, reason)
            for metric, value in metrics.items():
                values.setdefault(metric, []).append(value)
        return values


def narrow_enough(low: ArrayLike, high: ArrayLike, honest: ArrayLike, half_width: ArrayLike, paired: object = False):
    """Whether intervals stop their levels (numbers, or arrays of many levels): honest, bounded, and no wider
    than ``half_width`` on each side of their centre, or, for a ``paired`` difference, not containing 0."""
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        narrow = (high - low) / 2 <= half_width
        if paired:
            narrow |= (low > 0) | (high < 0)
    return np.asarray(honest) & np.isfinite(low) & np.isfinite(high) & narrow


def _read_reference(name: str, path: Any, model: Any) -> dict[tuple[str, float], ReferenceTrials]:
    """The trials of one model in a sweep CSV, per (perturbation, level), in trial order."""
    check_text(f"{name}.reference", path)
    if not Path(path).is_file():
        raise ConfigError(f"{name}.reference", path, "no such file")
    try:
        rows = all_targets(read_sweep_csv(path))
    except (ValueError, KeyError) as err:
        raise ConfigError(f"{name}.reference", path, str(err)) from None
    models = sorted({row.model for row in rows})
    if model is None and len(models) != 1:
        raise ConfigError(f"{name}.reference_model", model, f"the reference holds models {models}; name one")
    chosen = model if model is not None else models[0]
    if chosen not in models:
        raise ConfigError(f"{name}.reference_model", model, f"not in the reference (models {models})")
    trials: dict[tuple[str, float, int], tuple[int, dict[str, float]]] = {}
    for row in rows:
        if row.model == chosen:
            trials.setdefault((row.perturbation, row.level, row.trial), (row.seed, {}))[1][row.metric] = row.value
    paired: dict[tuple[str, float], ReferenceTrials] = {}
    for (perturbation, level, trial), value in sorted(trials.items()):
        level_trials = paired.setdefault((perturbation, level), [])
        if trial == len(level_trials):  # keep the unbroken run of trials 0, 1, 2, ...
            level_trials.append(value)
    return paired
