"""A new model family needs its own files and nothing else: the recipe of docs/architecture.md ("A model") followed
for a throwaway family (``tests/fixtures/new_family``: a LightningModule declaring its ``Family``, a DataModule,
a config, and a line in each package's ``__init__``) in a copy of the repository, then its per-epoch sweeps, its
dashboard spec and the property tests of its fields, each as a user runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import OFFLINE_ENV, ROOT

pytestmark = pytest.mark.slow  # three fresh interpreters in a copy of the repository

FAMILY = ROOT / "tests" / "fixtures" / "new_family"
#: What a copy of the repository needs to run, sweep, build dashboards and run the property tests.
COPIED = ("callbacks", "cognitive_reserve", "datamodules", "lightning_modules", "tracking", "run_outputs", "run_cli")
COPIED += ("run_reports", "studies", "tests", "run.py", "config_reference.py", "pyproject.toml")
EXPORTS = {
    "lightning_modules": "from lightning_modules.toy import ToyRegression  # noqa: F401\n",
    "datamodules": "from datamodules.toy import ToyDataModule  # noqa: F401\n",
}


def clone_with_the_family(folder: Path) -> Path:
    """The repository's code copied to ``folder``, plus the family's files and its two exports."""
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("__pycache__", "fixtures"))
        else:
            shutil.copy(source, folder / name)
    shutil.copytree(FAMILY, folder, dirs_exist_ok=True)
    for package, line in EXPORTS.items():
        with (folder / package / "__init__.py").open("a", encoding="utf-8") as init:
            init.write(line)
    return folder


def run(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**OFFLINE_ENV, "PATH": "/usr/bin:/bin", "HOME": str(folder), "PYTHONPATH": str(folder)}
    return subprocess.run(
        [sys.executable, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_a_new_family_is_swept_dashboarded_and_property_tested_with_its_own_files_only(tmp_path):
    clone = clone_with_the_family(tmp_path / "clone")

    fit = run(clone, "run.py", "fit", "--config", "configs/toy/toy.yaml")
    assert fit.returncode == 0, fit.stderr[-2000:]
    per_epoch = (clone / "runs" / "toy" / "robustness" / "sensitivity_train.csv").read_text(encoding="utf-8")
    assert len({line.split(",")[0] for line in per_epoch.splitlines()[1:]}) == 3  # a sweep after each epoch
    assert ",mse," in per_epoch

    dashboard = run(clone, "-m", "tracking.dashboard", "--entity", "e", "--project", "p", "--group", "toy-smoke",
                    "--dry-run", "spec.json")  # fmt: skip
    assert dashboard.returncode == 0, dashboard.stderr[-2000:]
    spec = (clone / "spec.json").read_text(encoding="utf-8")
    assert "/mse/" in spec and json.loads(spec)["workspace"]

    properties = run(clone, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_config_properties.py",
                     "-k", "ToyRegression or ToyDataModule")  # fmt: skip
    assert properties.returncode == 0, properties.stdout[-2000:]
    assert "4 passed" in properties.stdout  # width, lr, examples, seed: each field tried from its declaration
