"""The shipped configs, base files and the overlays given after them: every run resolves to the config it resolved
to before (its golden file), every config file takes part in some run, comments (the study files' too) leave types
and defaults to the generated reference and docs/studies.md, no adaptive rule stops sooner than the coverage table
allows, and the tests' own merge of the layers (``tests.helpers.configs.merged``) agrees with ``run.py``'s."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from cognitive_reserve.adaptive import DEFAULT_MIN
from cognitive_reserve.intervals import trials_needed
from cognitive_reserve.perturbations import hit_probability
from tests.helpers.configs import CONFIGS, merged
from tests.helpers.resolved_configs import golden, resolved, runs, shipped_configs

SHIPPED = shipped_configs()
RUNS = runs()
STUDIES = sorted((CONFIGS / "studies").glob("*.yaml"))
#: What a comment restating a key's type, shape or default looks like: ``(int; default: 50)``, ``int (default 2):``,
#: ``{config, overrides} (mapping; required)``.
TYPE_OR_DEFAULT = re.compile(
    r"\bdefault\b|\((?:int|float|str|bool|list|dict|mapping)\b|^\s*(?:int|float|str|bool)\b"
    r"|\([^)]*\brequired\b[^)]*\)|\w+: \{\w+(?:, \w+)+\}"
)


def test_every_config_file_is_part_of_a_run_whose_config_is_recorded():
    used = {config for configs in RUNS.values() for config in configs}
    assert {str(path.relative_to(CONFIGS)) for path in SHIPPED} - used == set(), (
        "an overlay (a config without a model) joins the tests in OVERLAID of tests/helpers/resolved_configs.py"
    )
    unrecorded = [run for run in RUNS if not golden(run).exists()]
    assert unrecorded == [], f"record these runs: python -m tests.helpers.resolved_configs {' '.join(unrecorded)}"


@pytest.mark.parametrize("path", SHIPPED + STUDIES, ids=lambda path: str(path.relative_to(CONFIGS)))
def test_comments_say_why_not_the_type_or_default(path):
    comments = [line.partition("#")[2] for line in path.read_text(encoding="utf-8").splitlines() if "#" in line]
    restated = [comment.strip() for comment in comments if TYPE_OR_DEFAULT.search(comment)]
    assert restated == [], (
        "types and defaults are in docs/config_reference.md (python config_reference.py), a study file's in "
        "docs/studies.md: say why the value is what it is"
    )


def mappings(node: Any) -> list[dict[str, Any]]:
    """Every mapping anywhere in a loaded config (``node`` itself first)."""
    if isinstance(node, dict):
        return [node] + [found for value in node.values() for found in mappings(value)]
    if isinstance(node, list):
        return [found for value in node for found in mappings(value)]
    return []


def adaptive_rules(node: Any) -> list[dict[str, Any]]:
    """Every adaptive ``trials`` rule (a mapping with ``ci_half_width``) anywhere in a loaded config."""
    return [mapping for mapping in mappings(node) if "ci_half_width" in mapping]


@pytest.mark.parametrize("path", SHIPPED + STUDIES, ids=lambda path: str(path.relative_to(CONFIGS)))
def test_no_adaptive_rule_stops_before_the_trials_its_interval_needs(path):
    rules = adaptive_rules(yaml.safe_load(path.read_text(encoding="utf-8")))
    early = [rule for rule in rules if rule.get("min", DEFAULT_MIN) < DEFAULT_MIN]
    assert early == [], f"levels stopped at fewer than {DEFAULT_MIN} trials under-cover (docs/intervals.md)"


def fixed_grids(node: Any) -> list[tuple[str, dict[str, Any]]]:
    """Every perturbation grid with a fixed trial count anywhere in a loaded config, as (name, grid)."""
    sweeps = [mapping["perturbations"] for mapping in mappings(node) if isinstance(mapping.get("perturbations"), dict)]
    return [(name, grid) for grids in sweeps for name, grid in grids.items() if isinstance(grid.get("trials"), int)]


@pytest.mark.parametrize("run", [run for run in RUNS if run.startswith("linear/")])
def test_the_linear_runs_give_every_random_level_the_trials_its_interval_needs(run):
    """The offline experiments (the quickstart first) print an interval at every level: no level is flagged for
    too few trials (``random_deletion`` at p = 0.1 needs 31; the GPU paper configs keep the paper's 20)."""
    config = merged(*(CONFIGS / config for config in RUNS[run]))
    short = [
        (name, level, grid["trials"])
        for name, grid in fixed_grids(config)
        for level in grid["levels"]
        if grid["trials"] < trials_needed(hit_probability(name, level))
    ]
    assert short == [], "give these levels the trials intervals.trials_needed asks for"


def contained(part: Any, whole: Any, where: str = "") -> list[str]:
    """Where ``part`` says something ``whole`` does not (interpolations ``${...}`` are left to the parser)."""
    if isinstance(part, str) and "${" in part:
        return []
    if isinstance(part, dict) and isinstance(whole, dict):
        return [miss for key, value in part.items() for miss in contained(value, whole.get(key), f"{where}.{key}")]
    if isinstance(part, list) and isinstance(whole, list) and len(part) == len(whole):
        pairs = enumerate(zip(part, whole, strict=True))
        return [miss for i, (a, b) in pairs for miss in contained(a, b, f"{where}[{i}]")]
    return [] if part == whole else [f"{where}: {part!r} != {whole!r}"]


@pytest.mark.parametrize("run", list(RUNS))
def test_the_tests_merge_of_the_layers_agrees_with_run_py(run):
    recorded = yaml.safe_load(golden(run).read_text(encoding="utf-8"))
    assert contained(merged(*(CONFIGS / config for config in RUNS[run])), recorded) == []


@pytest.mark.slow
@pytest.mark.parametrize("run", list(RUNS))
def test_every_run_resolves_to_its_recorded_config(run):
    expected = golden(run).read_text(encoding="utf-8")
    assert resolved(RUNS[run]) == expected, (
        f"the resolved config of {run} ({' + '.join(RUNS[run])}) changed; if that is deliberate (a new field, "
        f"a new value), record it: python -m tests.helpers.resolved_configs {run}"
    )
