"""What runs in a point's submitit job: take the point's lock, run its missing steps, record each one.

``PointJob`` is pickled by the launcher and called in the job's process (a local process or a SLURM
task). It imports the standard library only, so a job starts in a fraction of a second. Each step is
``<python> run.py ...`` in a subprocess, output appended to ``<point>/study/<step>.log``; the subprocess
keeps the lock's descriptor, so the point stays locked while it lives. A DDP point on SLURM has one task
per process: task 0 does the bookkeeping and writes the plan (the commands it runs) for the others,
which run the same commands as the other ranks.

**Stopped and requeued.** A job is *checkpointable* in submitit's sense: on the warning signal before its
time limit (or a preemption's), submitit calls ``checkpoint``, which passes the signal on to the running
``run.py`` (it saves ``last.ckpt`` at the end of its batch and exits with status 75: ``EXIT_STOPPED``), waits
for it, records the point as ``requeued`` and hands submitit the same job to requeue: submitit owns the
requeue, and the requeued job continues the fit from that checkpoint. After ``executor.max_requeues``
requeues the point stops as ``failed`` instead. A SIGTERM (``scancel``, ``scontrol requeue``, a preemption
without warning) stops the step the same way; the point is then ``interrupted`` with what SLURM says of the
job (``CANCELLED``, ``PREEMPTED``, ...), and SLURM (a requeue) or the next ``launch`` continues it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studies import cluster
from studies.lock import PointLock, describe, owner
from studies.state import BOOKKEEPING, EXIT_STOPPED, LOCK_FILE, is_done, read_state, write_state

#: How long the other tasks of a multi-task job wait for task 0's plan.
PLAN_WAIT_S = 600.0
#: The step running in this job's process, for ``checkpoint`` (which submitit calls from its signal handler).
_RUNNING: dict[str, Any] = {}


@dataclass(frozen=True)
class Outcome:
    """How a job ended for its point: ``done``, ``skipped`` (finished before), ``locked`` (another process
    runs it), ``failed`` (a step's error) or ``interrupted`` (a step stopped by a signal)."""

    label: str
    result: str
    message: str = ""
    wall_s: float = 0.0


@dataclass(frozen=True)
class PointJob:
    """One point's job: its steps (``run.py`` arguments), where it runs and what it must leave behind."""

    label: str
    directory: str
    cwd: str
    steps: tuple[tuple[str, tuple[str, ...]], ...]
    outputs: tuple[str, ...]
    environment: tuple[tuple[str, str | None], ...] = ()
    retry_failed: bool = False
    max_requeues: int = 10
    stop_wait_s: float = 60.0

    def __call__(self) -> Outcome:
        started = time.time()
        _RUNNING.clear()
        signal.signal(signal.SIGTERM, _pass_on)
        if _task_rank() > 0:
            return self._follow(started)
        lock = PointLock(Path(self.directory) / LOCK_FILE)
        if not lock.acquire(owner(job_id())):
            message = f"{self.label}: not started, {describe(lock.holder)} holds its lock"
            print(message, file=sys.stderr)
            self._write_plan([])
            return Outcome(self.label, "locked", message)
        try:
            return self._run(lock, started)
        finally:
            _RUNNING.clear()
            lock.release()

    def _run(self, lock: PointLock, started: float) -> Outcome:
        state = read_state(self.directory)
        timings = {"job_started": started}
        if is_done(self.directory, state, self.outputs):
            self._write_plan([])
            return Outcome(self.label, "skipped", "finished before", state.get("wall_s", 0.0))
        if state.get("state") == "failed" and not self.retry_failed:  # another job ran it since the launch looked
            self._write_plan([])
            return Outcome(self.label, "skipped", f"failed before: {state.get('error')}")
        note = f"took over the stale lock of {describe(lock.stale)}" if lock.stale else ""
        if note:
            print(f"{self.label}: {note}", file=sys.stderr)
        if state.get("state") == "done":  # outputs missing: run every step again
            state["steps_done"] = []
        if state.get("state") == "failed":  # launch --retry-failed: a fresh requeue budget (history keeps the old)
            state["requeues"] = 0
        count_requeue(state)
        if state["requeues"] > self.max_requeues:
            return self._give_up(state)
        done_steps = list(state.get("steps_done", []))
        todo = [(step, argv) for step, argv in self.steps if step not in done_steps]
        self._write_plan([list(argv) for _, argv in todo])
        state.update(
            state="running",
            job_id=job_id(),
            host=os.uname().nodename,
            pid=os.getpid(),
            error=None,
            attempts=state.get("attempts", 0) + 1,
            steps_done=done_steps,
            timings=timings,
            slurm_state=None,
        )
        state.setdefault("history", []).append({"job": job_id(), "started": started})
        for step, argv in todo:
            state.update(step=step, step_pid=None)
            if _RUNNING.get("stop") is not None:  # stopped between two steps: the next one waits for the next job
                return self._stopped_between_steps(state, step)
            write_state(self.directory, state)
            step_started = time.time()
            timings[f"{step}_started"] = step_started
            returncode, error = self._step(step, argv, lock, state)
            timings[f"{step}_ended"] = time.time()
            state["wall_s"] = state.get("wall_s", 0.0) + time.time() - step_started
            if returncode != 0:
                stopped = returncode < 0 or returncode == EXIT_STOPPED or _RUNNING.get("stop") is not None
                state.update(state="interrupted" if stopped else "failed", returncode=returncode, error=error)
                if stopped:
                    state["slurm_state"] = _slurm_state()
                state["history"][-1].update(ended=time.time(), result=state["state"])
                write_state(self.directory, state)
                return Outcome(self.label, str(state["state"]), f"{step}: {error}", state["wall_s"])
            done_steps.append(step)
        timings["job_ended"] = time.time()
        state.update(state="done", step=None, step_pid=None, returncode=0)
        state["history"][-1].update(ended=timings["job_ended"], result="done")
        write_state(self.directory, state)
        return Outcome(self.label, "done", note, state["wall_s"])

    def _stopped_between_steps(self, state: dict[str, Any], step: str) -> Outcome:
        error = f"stopped by {_RUNNING['stop']} before {step}; launch again to continue it"
        state.update(state="interrupted", error=error, slurm_state=_slurm_state())
        state["history"][-1].update(ended=time.time(), result="interrupted")
        write_state(self.directory, state)
        return Outcome(self.label, "interrupted", f"{step}: {error}", state.get("wall_s", 0.0))

    def _give_up(self, state: dict[str, Any]) -> Outcome:
        """Past ``max_requeues``: the point stops as failed, in one line."""
        state.update(
            state="failed",
            error=f"stopped after {state['requeues']} requeues (executor.max_requeues="
            f"{self.max_requeues}): raise timeout_min or max_requeues, then launch --retry-failed",
        )
        write_state(self.directory, state)
        self._write_plan([])
        return Outcome(self.label, "failed", state["error"], state.get("wall_s", 0.0))

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit's hook on the warning signal before a time limit or a preemption (task 0 only): stop the
        running step where it is (it saves ``last.ckpt``), record the point as requeued and return this job
        for submitit to requeue; None (no requeue) once ``max_requeues`` is reached."""
        from submitit.helpers import DelayedSubmission

        signalled = time.time()
        received = _RUNNING.get("stop") or "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
        _RUNNING["stop"] = received
        process = _RUNNING.get("process")
        if process is not None:
            _stop_and_wait(process, self.stop_wait_s)
        state = read_state(self.directory)
        if state.get("state") == "done":
            return None  # finished just before the signal: nothing to requeue
        if "step_started" in _RUNNING:
            state["wall_s"] = state.get("wall_s", 0.0) + time.time() - _RUNNING["step_started"]
        step = state.get("step")
        log = Path(self.directory) / BOOKKEEPING / f"{step}.log"
        said = error_line(log, _RUNNING.get("log_offset", 0)) if step and log.exists() else ""
        if state.get("requeues", 0) >= self.max_requeues:
            self._give_up(state)
            return None
        state.update(state="requeued", error=f"{said or 'stopped by ' + received}; requeued", step_pid=None)
        if state.get("history"):
            state["history"][-1].update(signal=signalled, ended=time.time(), result="requeued")
        write_state(self.directory, state)
        return DelayedSubmission(self)

    def _step(self, step: str, argv: tuple[str, ...], lock: PointLock, state: dict[str, Any]) -> tuple[int, str]:
        """Run one step; its return code (negative: killed by that signal) and its error line."""
        log_path = Path(self.directory) / BOOKKEEPING / f"{step}.log"
        with log_path.open("a", encoding="utf-8") as log:
            log.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} job {job_id()}: {' '.join(argv)}\n")
            log.flush()
            offset = log.tell()
            process = subprocess.Popen(
                [sys.executable, *argv],
                cwd=self.cwd,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(lock.fd,) if lock.fd is not None else (),
            )
            _RUNNING.update(process=process, log_offset=offset, step_started=time.time())
            state["step_pid"] = process.pid
            write_state(self.directory, state)
            returncode = _wait(process)
            _RUNNING.pop("process", None)
        if returncode == 0:
            return 0, ""
        if returncode < 0:
            return returncode, f"killed by {signal.Signals(-returncode).name}; launch again to continue it"
        said = error_line(log_path, offset) or f"exit status {returncode}"
        if returncode == EXIT_STOPPED or _RUNNING.get("stop") is not None:
            return returncode, f"{said}; launch again to continue it" if returncode == EXIT_STOPPED else said
        return returncode, said

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if "SLURM_CPUS_PER_TASK" in env and "OMP_NUM_THREADS" not in env:
            env["OMP_NUM_THREADS"] = env["SLURM_CPUS_PER_TASK"]  # torch's threads: the CPUs the job was given
        for name, value in self.environment:
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def _write_plan(self, commands: list[list[str]]) -> None:
        """For the other tasks of a multi-task (DDP) job: the commands task 0 runs."""
        if _task_count() > 1:
            path = Path(self.directory) / BOOKKEEPING / f"plan-{job_id()}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(commands), encoding="utf-8")

    def _follow(self, started: float) -> Outcome:
        """A task other than 0: wait for task 0's plan, then run the same commands (another DDP rank)."""
        path = Path(self.directory) / BOOKKEEPING / f"plan-{job_id()}.json"
        deadline = time.monotonic() + PLAN_WAIT_S
        while not path.exists():
            if time.monotonic() > deadline:
                return Outcome(self.label, "failed", f"task {_task_rank()}: no plan from task 0 in {PLAN_WAIT_S:g} s")
            time.sleep(0.5)
        for argv in json.loads(path.read_text(encoding="utf-8")):
            process = subprocess.Popen([sys.executable, *argv], cwd=self.cwd, env=self._env())
            _RUNNING["process"] = process
            returncode = _wait(process)
            if returncode == EXIT_STOPPED or returncode < 0:
                return Outcome(self.label, "interrupted", f"task {_task_rank()}: {argv[1]} stopped")
            if returncode != 0:
                return Outcome(self.label, "failed", f"task {_task_rank()}: {argv[1]} failed")
        return Outcome(self.label, "done", f"task {_task_rank()}", time.time() - started)


def count_requeue(state: dict[str, Any]) -> None:
    """Count this start in ``state["requeues"]`` when it is a requeued job's: SLURM's restart count of this job
    went up, or (local jobs) the point was left ``requeued``."""
    restarts = state.setdefault("restarts", {})
    now = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    requeued = now > restarts.get(job_id(), 0) or (state.get("state") == "requeued" and now == 0)
    restarts[job_id()] = now
    state["requeues"] = state.get("requeues", 0) + int(requeued)


def _pass_on(number: int, frame: Any) -> None:
    """SIGTERM to the job: remember it and pass it on to the running step (which saves and stops)."""
    _RUNNING["stop"] = _RUNNING.get("stop") or signal.Signals(number).name
    process = _RUNNING.get("process")
    if process is not None and _alive(process):
        process.send_signal(number)


def _stop_and_wait(process: subprocess.Popen, wait_s: float) -> None:
    """Send the step the job's warning signal (it may have it already) and wait for it to end."""
    if _alive(process):
        process.send_signal(getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")))
    deadline = time.monotonic() + wait_s
    while _alive(process) and time.monotonic() < deadline:
        time.sleep(0.1)


def _alive(process: subprocess.Popen) -> bool:
    """Whether the step still runs, without reaping it (the job's own wait does; safe in a signal handler)."""
    try:
        return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    except ChildProcessError:
        return False


def _slurm_state() -> str | None:
    """What SLURM says of this job now (``CANCELLED``, ``REQUEUED``, ``PREEMPTED``, ...), when it runs under SLURM."""
    if not os.environ.get("SLURM_JOB_ID"):
        return None
    info = cluster.scontrol_job(job_id())
    return info.state if info else None


def _wait(process: subprocess.Popen) -> int:
    """The process's return code, polled (a signal handler may look at it meanwhile); a Ctrl-C to the job is
    passed on to it first and marks the step as stopped."""
    while True:
        try:
            while (returncode := process.poll()) is None:
                time.sleep(0.05)
            return returncode
        except KeyboardInterrupt:
            _RUNNING["stop"] = "SIGINT"
            process.send_signal(signal.SIGINT)


def error_line(log_path: Path, offset: int) -> str:
    """The last ``error: ...`` line a step printed (``run.py``'s one-line errors), else its last ``stopped by ...``
    line (a signal stopped it), else its last line."""
    with log_path.open(encoding="utf-8", errors="replace") as log:
        log.seek(offset)
        lines = [line.strip() for line in log if line.strip()]
    for prefix in ("error:", "stopped by "):
        said = [line for line in lines if line.startswith(prefix)]
        if said:
            return said[-1][:500]
    return lines[-1][:500] if lines else ""


def job_id() -> str:
    """The submitit/SLURM job id of this process (``<array job>_<task>`` in an array), else its pid."""
    if os.environ.get("SLURM_ARRAY_JOB_ID"):
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID', '0')}"
    return os.environ.get("SLURM_JOB_ID") or os.environ.get("SUBMITIT_LOCAL_JOB_ID") or str(os.getpid())


def _task_rank() -> int:
    return int(os.environ.get("SLURM_PROCID") or os.environ.get("SUBMITIT_LOCAL_GLOBALID") or 0)


def _task_count() -> int:
    return int(os.environ.get("SLURM_NTASKS") or os.environ.get("SUBMITIT_LOCAL_NTASKS") or 1)
