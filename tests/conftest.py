"""Shared test setup: offline everything, reproducible property tests, GPU-only tests skipped without CUDA, the
manual's command chains run once per session (``documented_chains``), and the suite spread over pytest-xdist's
workers (``tests/helpers/workers.py``).

Helpers live in ``tests/helpers`` (``from tests.helpers.cli import run_cli``, ...), never here.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from tests.helpers import workers
from tests.helpers.cli import OFFLINE_ENV

os.environ.update(OFFLINE_ENV)  # before any test module imports Lightning (and with it the Hugging Face hub)
if os.environ.get("PYTEST_XDIST_WORKER"):
    workers.compute_on_one_thread()

# Property tests draw the same examples on every run, so CI is reproducible; set
# HYPOTHESIS_PROFILE=explore to draw fresh ones when hunting for new failures.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` skip cleanly on a machine without CUDA. A test that reads the documented chains may be
    the one whose setup runs them all (minutes on a loaded 2-core machine): it gets a longer timeout."""
    import torch

    if os.environ.get("PYTEST_XDIST_WORKER"):
        workers.longest_first(items)
    for item in items:
        if "documented_chains" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(1800))
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    return workers.worker_count(config.args)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    return workers.file_scheduler(config, log) if config.getvalue("dist") == "loadfile" else None


@pytest.fixture(scope="session")
def documented_chains(tmp_path_factory: pytest.TempPathFactory):
    """The manual's command chains, run once per session in order in a fresh folder (``tests.helpers.doc_chains``);
    the end-to-end tests of each experiment check their outputs."""
    from tests.helpers.doc_chains import run_in_fresh_folder

    return run_in_fresh_folder(tmp_path_factory.mktemp("chains") / "clone", tmp_path_factory.mktemp("home"))
