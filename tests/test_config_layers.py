"""The shipped configs, base files and the overlays given after them: every run resolves to the config it resolved
to before (its golden file), and every config file takes part in some run."""

from __future__ import annotations

import pytest

from tests.helpers.cli import ROOT
from tests.helpers.resolved_configs import RUNS, golden, resolved

CONFIGS = ROOT / "configs"


def test_every_config_file_is_part_of_a_recorded_run():
    shipped = {str(path.relative_to(CONFIGS)) for path in CONFIGS.rglob("*.yaml") if path.parent.name != "studies"}
    used = {config for configs in RUNS.values() for config in configs}
    assert shipped - used == set(), "add a run with these configs to RUNS in tests/helpers/resolved_configs.py"
    assert used - shipped == set(), "RUNS names configs that do not exist"


@pytest.mark.slow
@pytest.mark.parametrize("run", list(RUNS))
def test_every_run_resolves_to_its_recorded_config(run):
    expected = golden(run).read_text(encoding="utf-8")
    assert resolved(RUNS[run]) == expected, (
        f"the resolved config of {run} ({' + '.join(RUNS[run])}) changed; if that is deliberate (a new field, "
        f"a new value), record it: python -m tests.helpers.resolved_configs {run}"
    )
