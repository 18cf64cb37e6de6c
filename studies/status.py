"""``status``: one row per point — state, wall time, requeues, job id, and what explains it.

A point's own files say ``done``, ``running`` (its lock is held), ``failed`` (a step's error; the row names
its log) or not finished. For a point not finished, what its last SLURM job says refines the word (SLURM's
``squeue`` for the jobs it holds; ``sacct`` where accounting is on, else ``scontrol show job`` for jobs that
ended lately; else what the job recorded itself when it stopped):

- ``queued``: its job waits to start; ``requeued``: its job was requeued (a time limit, a preemption) and
  waits to start again, it continues from its checkpoint;
- ``cancelled`` (``scancel``), ``timeout`` (the time limit, not requeued), ``lost`` (its job ended without a
  word: killed, out of memory, its node lost; the row names the job's log), ``interrupted`` (stopped by a
  signal): the next ``launch`` continues each of them from its ``last.ckpt``;
- ``failed`` (``lost`` for ``NODE_FAIL``) with ``job <STATE> before the point started`` and the job's log: its
  job ended ``FAILED``, ``OUT_OF_MEMORY``, ``BOOT_FAIL`` or ``NODE_FAIL`` before it wrote the point's state
  (a bad batch script, the job's own Python failing); the next ``launch`` runs it again;
- ``pending``: never started.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studies import cluster
from studies.points import study_points
from studies.spec import Study
from studies.state import BOOKKEEPING, point_status, read_state

#: SLURM's final states, as the row names them (anything else: ``lost``).
ENDED_AS = {"CANCELLED": "cancelled", "TIMEOUT": "timeout", "DEADLINE": "timeout", "PREEMPTED": "interrupted"}
#: SLURM's states of a job that broke on its own, as the row names them when the job never reached its point.
BROKE_AS = {"FAILED": "failed", "OUT_OF_MEMORY": "failed", "BOOT_FAIL": "failed", "NODE_FAIL": "lost"}
#: submitit's folder under ``<root>/<study>``: one folder per job, named by its id.
SUBMITIT = ".submitit"
#: Where launch continues a point from.
CONTINUES = "launch continues it"


@dataclass(frozen=True)
class Row:
    """One point in ``status``."""

    arm: str
    point: str
    state: str
    wall_s: float | None
    requeues: int
    job_id: str | None
    note: str


def job_log(study_root: Path, job_id: str) -> Path:
    """submitit's log of a job (its task 0's stdout and stderr, where SLURM writes what it did to the job)."""
    return study_root / SUBMITIT / job_id / f"{job_id}_0_log.out"


def last_job_ids(ledger: Path, executor: str | None = None) -> dict[str, str]:
    """The last job id submitted for each point (``launches.jsonl``); with ``executor``, of the points whose last
    job was submitted there (a local job's id is a process id: SLURM is not asked about it)."""
    if not ledger.is_file():
        return {}
    last = {}
    for line in ledger.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by a crash: the next launch writes whole ones again
        last[entry["point"]] = entry
    return {point: e["job_id"] for point, e in last.items() if executor in (None, e.get("executor"))}


def study_status(study: Study, root: Path) -> list[Row]:
    """Every point's row (SLURM asked once, about the jobs of points not finished)."""
    outputs = (study.sweep_glob,) if study.compare is not None else ()
    submitted = last_job_ids(root / study.name / "launches.jsonl")
    on_slurm = last_job_ids(root / study.name / "launches.jsonl", "slurm")
    points = study_points(study, root)
    own = {point.label: point_status(point.directory, outputs) for point in points}
    unfinished = [on_slurm[label] for label, s in own.items() if s.state != "done" and label in on_slurm]
    jobs = cluster.job_states(unfinished, name=f"study-{study.name}")
    unknown = [job for job in unfinished if job not in jobs]
    forgotten = set(unknown) if unknown and cluster.answers() else set()
    rows = []
    for point in points:
        status, recorded = own[point.label], read_state(point.directory)
        job = recorded.get("job_id") if status.state in ("done", "failed") else submitted.get(point.label)
        job = job or status.job_id or submitted.get(point.label)
        log = job_log(root / study.name, str(job)) if job else None
        info = jobs.get(str(job)) if point.label in on_slurm else None
        gone = str(job) if point.label in on_slurm and str(job) in forgotten else None
        state, note = _refine(status.state, status.note, recorded, info, log, gone)
        if status.state == "failed":
            note = f"{note} (log: {point.directory / BOOKKEEPING / str(recorded.get('step') or 'fit')}.log)"
        rows.append(Row(point.arm, point.name, state, status.wall_s, recorded.get("requeues", 0), job, note))
    return rows


def _refine(
    state: str,
    note: str,
    recorded: dict[str, Any],
    job: cluster.JobInfo | None,
    log: Path | None,
    forgotten: str | None = None,
) -> tuple[str, str]:
    """The row's state and note: the point's own word, refined by what its job says (``job``, else recorded);
    ``log`` is the job's submitit log; ``forgotten``: the id of the point's job when SLURM answers but knows
    nothing of it (it left the queue, and without accounting ``scontrol`` forgets it after ``MinJobAge``)."""
    if state in ("done", "running", "failed"):
        return state, note
    named = f" (log: {log})" if log else ""
    said = recorded.get("error") or ""
    if job is not None and job.live:
        if job.state in ("RUNNING", "COMPLETING", "CONFIGURING"):
            return "running", f"job {job.state.lower()}, its step not started yet"
        waiting = f"waits to start ({job.reason})" if job.reason else "waits to start"
        if (job.restarts or 0) > 0 or recorded.get("state") == "requeued" or job.state.startswith("REQUEUE"):
            return "requeued", f"{said + '; ' if said else ''}{waiting}; continues from its checkpoint"
        return "queued", waiting
    if job is not None and job.state in BROKE_AS and recorded.get("job_id") != job.job_id:
        return BROKE_AS[job.state], f"job {job.state} before the point started; launch runs it again{named}"
    if forgotten and recorded.get("job_id") != forgotten and recorded.get("state") not in ("running", "requeued"):
        return "lost", (
            f"job {forgotten} ended before the point started and SLURM no longer knows how (no accounting); "
            f"launch runs it again{named}"
        )
    final = job.state if job is not None else recorded.get("slurm_state")
    if recorded.get("state") == "requeued" and job is None:
        return "requeued", f"{said}; {CONTINUES} if SLURM does not"
    if final in ENDED_AS:
        return ENDED_AS[final], f"job {final}{': ' + said if said else ''}; {CONTINUES}"
    if recorded.get("state") == "interrupted":
        return "interrupted", note
    if recorded.get("state") in ("running", "requeued"):
        ended = f"job {final}" if final else "its job"
        return (
            "lost",
            f"{ended} ended without a word in {recorded.get('step')} (killed, out of memory or node lost); "
            f"{CONTINUES}{named}",
        )
    return state, note


def show_status(study: Study, root: Path, say: Callable[[str], None] = print) -> int:
    """Print the table and a count per state; exit status 1 when a point failed."""
    rows = study_status(study, root)
    header = ("arm", "point", "state", "wall", "requeues", "job", "note")
    cells = [(r.arm, r.point, r.state, _wall(r.wall_s), str(r.requeues), r.job_id or "-", r.note) for r in rows]
    widths = [max(len(str(row[i])) for row in [header, *cells]) for i in range(len(header) - 1)]
    for row in [header, *cells]:
        say("  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths, strict=False)) + f"  {row[-1]}".rstrip())
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.state] = counts.get(row.state, 0) + 1
    say(f"study {study.name} under {root / study.name}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return 1 if counts.get("failed") else 0


def _wall(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
