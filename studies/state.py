"""What a point's job records in ``<point>/study/state.json``, and the point's status read back from it.

The job writes the file (atomically) under the point's lock: ``state`` (``running``, ``done``, ``failed``,
``interrupted``, ``requeued``), the steps finished, the step running and its ``run.py`` pid, the job id, the
wall time of its steps over every attempt, the last attempt's ``timings`` (job start, each step's start and
end, job end: seconds since the epoch), its ``requeues`` (and SLURM's restart count per job id), every
attempt's ``history`` (job, start, end, how it ended, when a requeue's signal came), what SLURM said of the
job when a signal stopped it (``slurm_state``), and for a failure its return code and error line. A point is

- **done** when its state is ``done`` and its outputs exist,
- **running** when a live process holds its lock,
- **failed** when a step exited with an error (retried by ``launch --retry-failed``),
- **pending** otherwise: never started, or interrupted or requeued (a killed job, a lost node, a time limit:
  its fit continues from ``last.ckpt``). ``studies.status`` refines this word with what SLURM says.

Standard library only: the job imports it.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studies.lock import describe, lock_holder

#: ``run.py``'s exit status after a signal stopped it where it was (``callbacks.signal_checkpoint.EXIT_STOPPED``).
EXIT_STOPPED = 75
BOOKKEEPING = "study"
STATE_FILE = f"{BOOKKEEPING}/state.json"
LOCK_FILE = f"{BOOKKEEPING}/lock"


def read_state(directory: str | Path) -> dict[str, Any]:
    """The point's recorded state (empty when it never started)."""
    path = Path(directory) / STATE_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def write_state(directory: str | Path, state: dict[str, Any]) -> None:
    """Replace the point's state file atomically (a reader never sees half of it)."""
    path = Path(directory) / STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp", encoding="utf-8") as file:
        json.dump(state, file, indent=1)
    os.replace(file.name, path)


def missing_outputs(directory: str | Path, outputs: tuple[str, ...]) -> list[str]:
    """The output globs with no match under the point directory."""
    return [pattern for pattern in outputs if not any(Path(directory).glob(pattern))]


def is_done(directory: str | Path, state: dict[str, Any], outputs: tuple[str, ...]) -> bool:
    return state.get("state") == "done" and not missing_outputs(directory, outputs)


@dataclass(frozen=True)
class PointStatus:
    """One row of ``status``: done / running / failed / pending, with what explains it."""

    state: str
    wall_s: float | None
    job_id: str | None
    note: str


def point_status(directory: str | Path, outputs: tuple[str, ...]) -> PointStatus:
    """The point's status from its directory alone (its state file and lock)."""
    state = read_state(directory)
    wall = state.get("wall_s")
    job = state.get("job_id")
    holder = lock_holder(Path(directory) / LOCK_FILE)
    if holder is not None:
        step = state.get("step")
        return PointStatus("running", wall, holder.get("job_id", job), f"{step or 'starting'}: {describe(holder)}")
    recorded = state.get("state")
    if recorded == "done":
        missing = missing_outputs(directory, outputs)
        if not missing:
            return PointStatus("done", wall, job, "")
        return PointStatus("pending", wall, job, f"outputs missing: {', '.join(missing)}")
    if recorded == "failed":
        return PointStatus("failed", wall, job, f"{state.get('step')}: {state.get('error', '')}")
    if recorded in ("running", "interrupted", "requeued"):
        why = state.get("error") or "its job ended without a word (killed, timed out or node lost)"
        return PointStatus("pending", wall, job, f"interrupted in {state.get('step')}: {why}; launch continues it")
    return PointStatus("pending", None, None, "")
