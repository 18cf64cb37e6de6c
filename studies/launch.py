"""``launch``: run what is missing of a study through submitit (SLURM where it exists, local processes otherwise).

A finished point is skipped without being touched, a running one (its lock held) is left to its owner,
a failed one is reported (run again with ``--retry-failed``), every other point is submitted: one job per
point. On SLURM the jobs form one job array (``--max-parallel`` running at once) and ``launch`` returns
once they are queued; locally it keeps ``--max-parallel`` jobs running and waits for the last one.
Every submission is appended to ``<root>/<study>/launches.jsonl`` (point, job id, time).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cognitive_reserve.errors import ConfigError, first_line
from studies.job import Outcome, PointJob
from studies.points import Point, point_commands, study_points
from studies.spec import Study
from studies.state import point_status

EXECUTORS = ("auto", "local", "slurm")
#: Seconds between two looks at the running local jobs.
POLL_S = 0.2


def point_job(study: Study, point: Point, cwd: Path, cluster: str = "local", retry_failed: bool = False) -> PointJob:
    """The picklable job of one point (its directory made absolute, its commands fixed now)."""
    directory = (cwd / point.directory).resolve()
    environment: tuple[tuple[str, str | None], ...] = ()
    if cluster == "local" and study.executor.gpus_per_node == 0:
        # submitit's local jobs see the GPUs they asked for: none here, so keep this shell's view instead
        environment = (("CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES")),)
    return PointJob(
        label=point.label,
        directory=str(directory),
        cwd=str(cwd),
        steps=tuple((step, tuple(argv)) for step, argv in point_commands(study, point)),
        outputs=(study.sweep_glob,) if study.compare is not None else (),
        environment=environment,
        retry_failed=retry_failed,
    )


def dry_run(study: Study, root: Path, say: Callable[[str], None] = print) -> None:
    """The table of points, then every command exactly as the jobs run it (``python`` = this interpreter)."""
    points = study_points(study, root)
    say(f"study {study.name}: {len(points)} points ({len(study.arms)} arms × {_grid_size(study)} grid values)")
    width = max(len(p.arm) for p in points)
    say(f"{'arm':<{width}}  point")
    for point in points:
        say(f"{point.arm:<{width}}  {point.name}")
    say(f"\ncommands (python = {sys.executable}), run from {Path.cwd()}:")
    for point in points:
        for _, argv in point_commands(study, point):
            say(shlex.join(["python", *argv]))


def _grid_size(study: Study) -> int:
    size = 1
    for levels in study.grid.values():
        size *= len(levels)
    return size


def make_executor(study: Study, root: Path, executor: str, max_parallel: int) -> Any:
    """submitit's ``AutoExecutor`` for the study: ``auto`` picks SLURM where ``sbatch`` exists."""
    import submitit

    if executor == "slurm" and shutil.which("sbatch") is None:
        raise ConfigError("executor", executor, "no sbatch on this machine (use --executor local or auto)")
    cluster = None if executor == "auto" else executor
    chosen = submitit.AutoExecutor(folder=root / study.name / ".submitit" / "%j", cluster=cluster)
    settings = study.executor
    parameters: dict[str, Any] = {
        "name": f"study-{study.name}",
        "timeout_min": settings.timeout_min,
        "gpus_per_node": settings.gpus_per_node,
        "stderr_to_stdout": True,
    }
    if chosen.cluster == "slurm":
        parameters.update(
            nodes=settings.nodes, tasks_per_node=settings.tasks_per_node, cpus_per_task=settings.cpus_per_task,
            mem_gb=settings.mem_gb, slurm_partition=settings.partition, slurm_array_parallelism=max_parallel,
            **settings.slurm,
        )  # fmt: skip
    chosen.update_parameters(**{k: v for k, v in parameters.items() if v is not None})
    return chosen


def launch(
    study: Study,
    root: Path,
    executor: str = "auto",
    max_parallel: int | None = None,
    retry_failed: bool = False,
    study_file: str | None = None,
    say: Callable[[str], None] = print,
) -> int:
    """Submit every point that is not done, running or failed (failed too with ``retry_failed``); exit status."""
    max_parallel = max_parallel or study.executor.max_parallel
    points = study_points(study, root)
    cwd = Path.cwd()
    todo, skipped = [], {"done": 0, "running": 0, "failed": 0}
    for point in points:
        status = point_status(point.directory, (study.sweep_glob,) if study.compare is not None else ())
        if status.state == "done" or status.state == "running" or (status.state == "failed" and not retry_failed):
            skipped[status.state] += 1
            if status.state != "done":
                say(f"{point.label}: {status.state} ({status.note})" + _retry_hint(status.state))
            continue
        todo.append(point)
    summary = ", ".join(f"{n} {state}" for state, n in skipped.items() if n)
    if not todo:
        say(f"study {study.name}: nothing to launch ({summary or 'no points'})")
        return 1 if skipped["failed"] else 0
    chosen = make_executor(study, root, executor, max_parallel)
    jobs = [point_job(study, point, cwd, chosen.cluster, retry_failed) for point in todo]
    say(
        f"study {study.name}: launching {len(jobs)} of {len(points)} points on {chosen.cluster} "
        f"({max_parallel} at once){'; skipped: ' + summary if summary else ''}"
    )
    ledger = root / study.name / "launches.jsonl"
    if chosen.cluster != "local":
        with chosen.batch():
            submitted = [chosen.submit(job) for job in jobs]
        for job, handle in zip(jobs, submitted, strict=True):
            _record(ledger, job, handle.job_id, chosen.cluster)
            say(f"{job.label}: submitted as job {handle.job_id}")
        say(f"follow it with: python -m studies status {study_file or 'STUDY.yaml'} --root {root} (or squeue)")
        return 0
    outcomes = run_local(chosen, jobs, max_parallel, ledger, say)
    bad = [o for o in outcomes if o.result in ("failed", "interrupted")]
    say(f"study {study.name}: " + ", ".join(f"{n} {r}" for r, n in _counts(outcomes).items()))
    return 1 if bad or skipped["failed"] else 0


def run_local(
    executor: Any, jobs: Sequence[PointJob], max_parallel: int, ledger: Path, say: Callable[[str], None]
) -> list[Outcome]:
    """Keep ``max_parallel`` local jobs running until every job has ended; their outcomes, in end order."""
    queue, running, outcomes = list(jobs), [], []
    while queue or running:
        while queue and len(running) < max_parallel:
            job = queue.pop(0)
            submitted = time.time()
            handle = executor.submit(job)
            _record(ledger, job, handle.job_id, "local", submitted)
            running.append((job, handle))
        time.sleep(POLL_S)
        for job, handle in [entry for entry in running if entry[1].done()]:
            running.remove((job, handle))
            outcome = _outcome(job, handle)
            outcomes.append(outcome)
            say(_line(outcome))
    return outcomes


def _outcome(job: PointJob, handle: Any) -> Outcome:
    try:
        return handle.result()
    except Exception as err:  # the job itself broke (not a step): its last line
        return Outcome(job.label, "failed", f"job {handle.job_id}: {first_line(err).splitlines()[-1]}")


def _line(outcome: Outcome) -> str:
    wall = f" in {outcome.wall_s:.0f} s" if outcome.result == "done" else ""
    message = f" ({outcome.message})" if outcome.message else ""
    return f"{outcome.label}: {outcome.result}{wall}{message}"


def _record(ledger: Path, job: PointJob, job_id: str, cluster: str, submitted: float | None = None) -> None:
    """Append one submission to the study's ledger (one short line: atomic with O_APPEND)."""
    ledger.parent.mkdir(parents=True, exist_ok=True)
    entry = {"point": job.label, "job_id": str(job_id), "executor": cluster, "submitted": submitted or time.time()}
    with ledger.open("a", encoding="utf-8") as file:
        file.write(json.dumps(entry) + "\n")


def _retry_hint(state: str) -> str:
    return "; --retry-failed runs it again" if state == "failed" else ""


def _counts(outcomes: Sequence[Outcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.result] = counts.get(outcome.result, 0) + 1
    return counts
