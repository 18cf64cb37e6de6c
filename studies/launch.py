"""``launch``: run what is missing of a study through submitit (SLURM where it exists, local processes otherwise).

A finished point is skipped without being touched, a running one (its lock held, or its SLURM job still
queued or running) is left to its owner, a failed one is reported (run again with ``--retry-failed``),
every other point is submitted: one job per point. On SLURM the jobs form one job array (``--max-parallel``
running at once; after the study's jobs still in the queue, so the limit stays the study's) and ``launch``
returns once they are queued; locally it keeps ``--max-parallel`` jobs running and waits for the last one.
One launch at a time per study: a launch holds ``<root>/<study>/launch.lock`` (locally while its points run;
on SLURM while it submits), and a second one says who holds it (locally) or waits its turn (SLURM).
Every submission is appended to ``<root>/<study>/launches.jsonl`` (point, job id, time).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cognitive_reserve.errors import ConfigError, first_line
from studies import cluster
from studies.job import Outcome, PointJob
from studies.lock import PointLock, describe, owner
from studies.points import Point, point_commands, study_points
from studies.resources import Resources, point_resources
from studies.spec import Study
from studies.state import point_status, read_state
from studies.status import SUBMITIT, last_job_ids

EXECUTORS = ("auto", "local", "slurm")
#: Seconds between two looks at the running local jobs.
POLL_S = 0.2
#: How long a SLURM launch waits for another launch of the study to finish submitting.
SUBMIT_LOCK_WAIT_S = 120.0
#: How long an interrupted local launch waits for its running points to save where they are.
STOP_WAIT_S = 120.0
#: The exit status of a launch stopped by Ctrl-C (128 + SIGINT, as a shell reports it).
EXIT_INTERRUPTED = 130


def point_job(study: Study, point: Point, cwd: Path, executor: str = "local", retry_failed: bool = False) -> PointJob:
    """The picklable job of one point (its directory made absolute, its commands fixed now)."""
    directory = (cwd / point.directory).resolve()
    environment: tuple[tuple[str, str | None], ...] = ()
    if executor == "local" and study.executor.gpus_per_node == 0:
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
        max_requeues=study.executor.max_requeues,
        stop_wait_s=max(1.0, study.executor.signal_delay_s - 10.0),
    )


def choose_executor(requested: str) -> tuple[str, str]:
    """``(local|slurm, why)``: ``auto`` is SLURM where ``sbatch`` (and ``srun``) are on PATH."""
    sbatch = shutil.which("sbatch")
    if requested == "slurm" and (sbatch is None or shutil.which("srun") is None):
        raise ConfigError("executor", requested, "no sbatch/srun on this machine (use --executor local or auto)")
    if requested != "auto":
        return requested, f"--executor {requested}"
    if sbatch is not None and shutil.which("srun") is not None:
        return "slurm", f"auto: sbatch on PATH ({sbatch})"
    return "local", "auto: no sbatch on PATH"


def dry_run(study: Study, root: Path, executor: str = "auto", say: Callable[[str], None] = print) -> None:
    """The executor ``launch`` would use, the table of points, then every command exactly as the jobs run it
    (``python`` = this interpreter)."""
    points = study_points(study, root)
    chosen, why = choose_executor(executor)
    say(f"study {study.name}: {len(points)} points ({len(study.arms)} arms × {_grid_size(study)} grid values)")
    say(f"executor: {chosen} ({why})")
    if chosen == "slurm":
        say(f"each job asks for: {point_resources(study).describe()}")
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


def make_executor(study: Study, root: Path, chosen: str, max_parallel: int, after: Sequence[str] = ()) -> Any:
    """submitit's executor for the study's jobs on ``chosen`` (``local`` or ``slurm``); on SLURM the array
    starts ``after`` the given jobs end."""
    import submitit

    settings = study.executor
    # submitit stops requeueing after its own count of time-outs; the point's max_requeues decides first
    allowed = {f"{chosen}_max_num_timeout": settings.max_requeues + 1}
    executor = submitit.AutoExecutor(folder=root / study.name / SUBMITIT / "%j", cluster=chosen, **allowed)
    parameters: dict[str, Any] = {
        "name": f"study-{study.name}",
        "timeout_min": settings.timeout_min,
        "gpus_per_node": settings.gpus_per_node,
        "stderr_to_stdout": True,
    }
    if chosen == "slurm":
        resources: Resources = point_resources(study)
        extra = dict(settings.slurm.get("slurm_additional_parameters") or {})
        if after:
            extra["dependency"] = "afterany:" + ":".join(after)
        parameters.update(
            nodes=settings.nodes,
            tasks_per_node=settings.tasks_per_node,
            cpus_per_task=resources.cpus_per_task,
            mem_gb=resources.mem_gb,
            slurm_partition=settings.partition,
            slurm_array_parallelism=max_parallel,
            slurm_signal_delay_s=settings.signal_delay_s,
        )
        parameters.update(settings.slurm)  # the study's own submitit options win
        parameters["slurm_additional_parameters"] = extra or None
    executor.update_parameters(**{k: v for k, v in parameters.items() if v is not None})
    return executor


def launch(
    study: Study,
    root: Path,
    executor: str = "auto",
    max_parallel: int | None = None,
    retry_failed: bool = False,
    study_file: str | None = None,
    say: Callable[[str], None] = print,
) -> int:
    """Submit every point that is not done, running, queued or failed (failed too with ``retry_failed``);
    the exit status (130 when interrupted)."""
    max_parallel = max_parallel or study.executor.max_parallel
    chosen, _ = choose_executor(executor)
    lock = PointLock(root / study.name / "launch.lock")
    if not lock.acquire(owner(f"launch of {study.name}"), wait_s=SUBMIT_LOCK_WAIT_S if chosen == "slurm" else 2.0):
        say(
            f"study {study.name}: not launched, another launch runs its points ({describe(lock.holder)}, since "
            f"{time.strftime('%H:%M:%S', time.localtime(lock.holder.get('since', 0)))}): the study's "
            f"max_parallel slots are its; wait for it to end or stop it"
        )
        return 1
    try:
        return _launch(study, root, chosen, max_parallel, retry_failed, study_file, say)
    finally:
        lock.release()


def _launch(
    study: Study,
    root: Path,
    chosen: str,
    max_parallel: int,
    retry_failed: bool,
    study_file: str | None,
    say: Callable[[str], None],
) -> int:
    points = study_points(study, root)
    outputs = (study.sweep_glob,) if study.compare is not None else ()
    queued = _queued_jobs(study, root) if chosen == "slurm" else {}
    cwd = Path.cwd()
    todo, skipped = [], {"done": 0, "running": 0, "queued": 0, "failed": 0}
    for point in points:
        status = point_status(point.directory, outputs)
        if point.label in queued and status.state != "done":
            skipped["queued"] += 1
            say(f"{point.label}: queued as job {queued[point.label]} ({status.note or 'not started yet'})")
            continue
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
    after = sorted({job.split("_")[0] for job in queued.values()})
    executor = make_executor(study, root, chosen, max_parallel, after)
    jobs = [point_job(study, point, cwd, chosen, retry_failed) for point in todo]
    waits = f", after the study's queued jobs {', '.join(after)}" if after else ""
    say(
        f"study {study.name}: launching {len(jobs)} of {len(points)} points on {chosen} "
        f"({max_parallel} at once{waits}){'; skipped: ' + summary if summary else ''}"
    )
    ledger = root / study.name / "launches.jsonl"
    if chosen != "local":
        with executor.batch():
            submitted = [executor.submit(job) for job in jobs]
        for job, handle in zip(jobs, submitted, strict=True):
            _record(ledger, job, handle.job_id, chosen)
            say(f"{job.label}: submitted as job {handle.job_id}")
        say(f"follow it with: python -m studies status {study_file or 'STUDY.yaml'} --root {root} (or squeue)")
        return 0
    outcomes: list[Outcome] = []
    try:
        run_local(executor, jobs, max_parallel, ledger, say, outcomes)
    except KeyboardInterrupt:
        return _interrupted(jobs, outcomes, say)
    bad = [o for o in outcomes if o.result in ("failed", "interrupted")]
    say(f"study {study.name}: " + ", ".join(f"{n} {r}" for r, n in _counts(outcomes).items()))
    return 1 if bad or skipped["failed"] else 0


def _queued_jobs(study: Study, root: Path) -> dict[str, str]:
    """``{point: job id}`` of the study's points whose last SLURM job is still queued or running."""
    submitted = last_job_ids(root / study.name / "launches.jsonl", "slurm")
    states = cluster.job_states(submitted.values(), name=f"study-{study.name}")
    return {label: job for label, job in submitted.items() if job in states and states[job].live}


def run_local(
    executor: Any,
    jobs: Sequence[PointJob],
    max_parallel: int,
    ledger: Path,
    say: Callable[[str], None],
    outcomes: list[Outcome],
) -> None:
    """Keep ``max_parallel`` local jobs running until every job has ended; ``outcomes`` gets theirs, in end order.

    The jobs ignore Ctrl-C (it reaches the launcher only): an interrupted launch stops them itself."""
    queue, running = list(jobs), []
    while queue or running:
        while queue and len(running) < max_parallel:
            job = queue.pop(0)
            submitted = time.time()
            with _ctrl_c_ignored_by_children():
                handle = executor.submit(job)
            _record(ledger, job, handle.job_id, "local", submitted)
            running.append((job, handle))
        time.sleep(POLL_S)
        for job, handle in [entry for entry in running if entry[1].done()]:
            running.remove((job, handle))
            outcome = _outcome(job, handle)
            outcomes.append(outcome)
            say(_line(outcome))


@contextmanager
def _ctrl_c_ignored_by_children():
    """Start processes that ignore SIGINT (inherited through exec): Ctrl-C in the terminal reaches the
    launcher alone, not submitit's controllers, the jobs and their ``run.py`` (which would print tracebacks
    and be killed a second later)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupted(jobs: Sequence[PointJob], outcomes: list[Outcome], say: Callable[[str], None]) -> int:
    """Ctrl-C: stop the running points (SIGTERM: each saves where its fit is), wait for them, say it in one line."""
    finished = {outcome.label for outcome in outcomes}
    running = [job for job in jobs if job.label not in finished and read_state(job.directory).get("state") == "running"]
    pids = [read_state(job.directory).get("pid") for job in running]
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT_S
    try:
        while any(_signal(pid, 0) for pid in pids) and time.monotonic() < deadline:
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        pass  # a second Ctrl-C: stop waiting (the points still stop by themselves)
    done = sum(outcome.result == "done" for outcome in outcomes)
    failed = sum(outcome.result == "failed" for outcome in outcomes)
    left = len(jobs) - done - failed
    failures = f", {failed} failed" if failed else ""
    say(f"interrupted: {done} points done{failures}, {left} will continue on the next launch")
    return EXIT_INTERRUPTED


def _signal(pid: Any, number: int) -> bool:
    """Send ``number`` to ``pid`` (0: only check that it lives); whether it was there."""
    try:
        os.kill(int(pid), number)
    except (ProcessLookupError, TypeError, ValueError):
        return False
    return True


def _outcome(job: PointJob, handle: Any) -> Outcome:
    try:
        return handle.result()
    except Exception as err:  # the job ended without returning: the point's own word, else the job's last line
        recorded = read_state(job.directory)
        if recorded.get("state") == "failed" and recorded.get("job_id") == str(handle.job_id):  # max_requeues reached
            return Outcome(job.label, "failed", f"{recorded.get('step')}: {recorded.get('error')}")
        return Outcome(job.label, "failed", f"job {handle.job_id}: {first_line(err).splitlines()[-1]}")


def _line(outcome: Outcome) -> str:
    wall = f" in {outcome.wall_s:.0f} s" if outcome.result == "done" else ""
    message = f" ({outcome.message})" if outcome.message else ""
    return f"{outcome.label}: {outcome.result}{wall}{message}"


def _record(ledger: Path, job: PointJob, job_id: str, executor: str, submitted: float | None = None) -> None:
    """Append one submission to the study's ledger (one short line: atomic with O_APPEND)."""
    ledger.parent.mkdir(parents=True, exist_ok=True)
    entry = {"point": job.label, "job_id": str(job_id), "executor": executor, "submitted": submitted or time.time()}
    with ledger.open("a", encoding="utf-8") as file:
        file.write(json.dumps(entry) + "\n")


def _retry_hint(state: str) -> str:
    return "; --retry-failed runs it again" if state == "failed" else ""


def _counts(outcomes: Sequence[Outcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.result] = counts.get(outcome.result, 0) + 1
    return counts
