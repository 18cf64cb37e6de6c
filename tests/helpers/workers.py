"""How the suite is spread over pytest-xdist's workers (pyproject's ``-n auto --dist loadfile``); tests/conftest.py
wires these in.

- ``-n auto`` means a worker per CPU, at least 2 (the SLURM module mostly waits on the scheduler: the other worker
  computes meanwhile), and none when the command names tests of one file only (they run in this process, as fast
  as without xdist);
- a test file is one unit of work (its module fixtures run once), and the files that name the session fixture
  ``documented_chains`` are one unit together, so the manual's command chains run once;
- the longest units go first: the SLURM module, then the chains, then the files with the most end-to-end tests;
- each worker computes on one thread (torch here, OpenMP and MKL in the processes it starts), so that 2 workers
  do not fight over 2 cores.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

#: The session fixture whose files run on one worker (it runs every chain of the manual: minutes).
SHARED_FIXTURE = "documented_chains"


def worker_count(args: list[str]) -> int:
    """Workers for ``-n auto``: none for tests of one file, else one per CPU and at least 2."""
    files = {arg.split("::", 1)[0] for arg in args}
    if len(files) == 1 and files.pop().endswith(".py"):
        return 0
    return max(2, len(os.sched_getaffinity(0)))


def compute_on_one_thread() -> None:
    """In a worker: one thread for torch and for the processes its tests start."""
    import torch

    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    torch.set_num_threads(1)


def longest_first(items: list[pytest.Item]) -> None:
    """Order ``items`` (in place, each file's tests kept together and in order) so that the longest units of work
    come first: the SLURM module, the files of the command chains, then by the number of end-to-end tests."""
    slow: dict[Path, int] = {}
    rank: dict[Path, int] = {}
    for item in items:
        path = item.path
        slow[path] = slow.get(path, 0) + ("slow" in item.keywords)
        if "slurm" in item.keywords:
            rank[path] = 0
        elif SHARED_FIXTURE in getattr(item, "fixturenames", ()):
            rank[path] = min(rank.get(path, 1), 1)
    first_seen = {path: index for index, path in enumerate(dict.fromkeys(item.path for item in items))}
    items.sort(key=lambda item: (rank.get(item.path, 2), -slow[item.path], first_seen[item.path]))


@functools.cache
def names_shared_fixture(path: str) -> bool:
    try:
        return SHARED_FIXTURE in Path(path).read_text(encoding="utf-8")
    except OSError:
        return False


def file_scheduler(config: pytest.Config, log):
    """xdist's ``loadfile`` scheduling, with the files of the command chains as one unit and the units in the order
    the workers collected them (``longest_first``), not by their number of tests."""
    from xdist.scheduler import LoadScopeScheduling

    class FileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return SHARED_FIXTURE if names_shared_fixture(str(config.rootpath / path)) else path

    config.option.loadscopereorder = False
    return FileScheduling(config, log)
