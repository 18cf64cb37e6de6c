"""What SLURM says about a study's jobs: ``squeue`` for the jobs it still holds, then ``sacct`` where accounting
is on, else ``scontrol show job`` (jobs that ended within the cluster's ``MinJobAge``, 5 minutes by default).

A job's state is SLURM's word (``PENDING``, ``RUNNING``, ``REQUEUED``, ``COMPLETED``, ``CANCELLED``,
``FAILED``, ``TIMEOUT``, ``NODE_FAIL``, ``PREEMPTED``, ``OUT_OF_MEMORY``, ...), its reason the one ``squeue``
gives (``BeginTime`` for a requeued job waiting to start again). Nothing here raises when SLURM is absent or
does not answer: the jobs it cannot see are simply missing. Standard library only: the jobs import it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

#: Seconds any one SLURM command may take before it is given up.
COMMAND_TIMEOUT_S = 30.0
#: SLURM states of a job that still holds (or waits for) resources.
LIVE = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "REQUEUED",
        "REQUEUE_HOLD",
        "REQUEUE_FED",
        "RESIZING",
        "SUSPENDED",
        "STOPPED",
        "SIGNALING",
        "STAGE_OUT",
        "RESV_DEL_HOLD",
    }
)


@dataclass(frozen=True)
class JobInfo:
    """One job as SLURM sees it: its state, the reason squeue gives (pending jobs), its restarts (requeues)."""

    job_id: str
    state: str
    reason: str = ""
    restarts: int | None = None

    @property
    def live(self) -> bool:
        return self.state in LIVE


def available() -> bool:
    """Whether this machine has SLURM's client commands."""
    return shutil.which("squeue") is not None and shutil.which("sbatch") is not None


def _run(*command: str) -> str | None:
    """The command's output, or None when it is missing, fails or hangs."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def job_states(job_ids: Iterable[str], name: str | None = None) -> dict[str, JobInfo]:
    """What SLURM knows of ``job_ids`` (``123`` or array tasks ``123_4``): the live ones from ``squeue`` (of jobs
    called ``name``, when given), the others from ``sacct`` or, without accounting, ``scontrol show job``."""
    wanted = [str(job) for job in dict.fromkeys(job_ids) if job]
    if not wanted or not available():
        return {}
    found = {job: info for job, info in squeue(name).items() if job in wanted}
    ended = [job for job in wanted if job not in found]
    accounted = sacct(ended)
    for job in ended:
        info = accounted.get(job) or scontrol_job(job)
        if info is not None:
            found[job] = info
    return found


def answers() -> bool:
    """Whether ``squeue`` answers here: then a job it does not list has left the queue."""
    return available() and _run("squeue", "-h", "-o", "%i") is not None


def squeue(name: str | None = None) -> dict[str, JobInfo]:
    """Every job squeue holds (one line per array task), or those called ``name``."""
    command = ["squeue", "-h", "-r", "-o", "%i|%T|%r"] + (["-n", name] if name else [])
    jobs = {}
    for line in (_run(*command) or "").splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            jobs[parts[0]] = JobInfo(parts[0], parts[1], "" if parts[2] in ("None", "(null)") else parts[2])
    return jobs


def sacct(job_ids: list[str]) -> dict[str, JobInfo]:
    """The jobs' final states from the accounting database (empty where accounting is off)."""
    if not job_ids:
        return {}
    output = _run("sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(job_ids))
    jobs = {}
    for line in (output or "").splitlines():
        job, _, state = line.strip().partition("|")
        if job in job_ids and state:
            jobs[job] = JobInfo(job, state.split()[0])  # "CANCELLED by 0" -> CANCELLED
    return jobs


def scontrol_job(job_id: str) -> JobInfo | None:
    """``scontrol show job``'s state and restarts of a job it still remembers."""
    output = _run("scontrol", "-o", "show", "job", job_id)
    if not output:
        return None
    fields = dict(item.split("=", 1) for item in output.split() if "=" in item)
    if "JobState" not in fields:
        return None
    restarts = fields.get("Restarts")
    reason = fields.get("Reason", "")
    return JobInfo(
        job_id,
        fields["JobState"],
        "" if reason == "None" else reason,
        int(restarts) if restarts and restarts.isdigit() else None,
    )
