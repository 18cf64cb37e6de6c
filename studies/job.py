"""What runs in a point's submitit job: take the point's lock, run its missing steps, record each one.

``PointJob`` is pickled by the launcher and called in the job's process (a local process or a SLURM
task). It imports the standard library only, so a job starts in a fraction of a second. Each step is
``<python> run.py ...`` in a subprocess, output appended to ``<point>/study/<step>.log``; the subprocess
keeps the lock's descriptor, so the point stays locked while it lives. A DDP point on SLURM has one task
per process: task 0 does the bookkeeping and writes the plan (the commands it runs) for the others,
which run the same commands as the other ranks.
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

from studies.lock import PointLock, describe, owner
from studies.state import BOOKKEEPING, LOCK_FILE, is_done, read_state, write_state

#: How long the other tasks of a multi-task job wait for task 0's plan.
PLAN_WAIT_S = 600.0


@dataclass(frozen=True)
class Outcome:
    """How a job ended for its point: ``done``, ``skipped`` (finished before), ``locked`` (another process
    runs it), ``failed`` (a step's error) or ``interrupted`` (a step killed by a signal)."""

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

    def __call__(self) -> Outcome:
        started = time.time()
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
        done_steps = list(state.get("steps_done", []))
        todo = [(step, argv) for step, argv in self.steps if step not in done_steps]
        self._write_plan([list(argv) for _, argv in todo])
        state.update(
            state="running", job_id=job_id(), host=os.uname().nodename, pid=os.getpid(), error=None,
            attempts=state.get("attempts", 0) + 1, steps_done=done_steps, timings=timings,
        )  # fmt: skip
        for step, argv in todo:
            state.update(step=step, step_pid=None)
            write_state(self.directory, state)
            step_started = time.time()
            timings[f"{step}_started"] = step_started
            returncode, error = self._step(step, argv, lock, state)
            timings[f"{step}_ended"] = time.time()
            state["wall_s"] = state.get("wall_s", 0.0) + time.time() - step_started
            if returncode != 0:
                interrupted = returncode < 0
                state.update(state="interrupted" if interrupted else "failed", returncode=returncode, error=error)
                write_state(self.directory, state)
                return Outcome(self.label, str(state["state"]), f"{step}: {error}", state["wall_s"])
            done_steps.append(step)
        timings["job_ended"] = time.time()
        state.update(state="done", step=None, step_pid=None, returncode=0)
        write_state(self.directory, state)
        return Outcome(self.label, "done", note, state["wall_s"])

    def _step(self, step: str, argv: tuple[str, ...], lock: PointLock, state: dict[str, Any]) -> tuple[int, str]:
        """Run one step; its return code (negative: killed by that signal) and its error line."""
        log_path = Path(self.directory) / BOOKKEEPING / f"{step}.log"
        with log_path.open("a", encoding="utf-8") as log:
            log.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} job {job_id()}: {' '.join(argv)}\n")
            log.flush()
            offset = log.tell()
            process = subprocess.Popen(
                [sys.executable, *argv], cwd=self.cwd, env=self._env(), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, pass_fds=(lock.fd,) if lock.fd is not None else (),
            )  # fmt: skip
            state["step_pid"] = process.pid
            write_state(self.directory, state)
            returncode = _wait(process)
        if returncode == 0:
            return 0, ""
        if returncode < 0:
            return returncode, f"killed by {signal.Signals(-returncode).name}; launch again to continue it"
        return returncode, error_line(log_path, offset) or f"exit status {returncode}"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
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
            if _wait(process) != 0:
                return Outcome(self.label, "failed", f"task {_task_rank()}: {argv[1]} failed")
        return Outcome(self.label, "done", f"task {_task_rank()}", time.time() - started)


def _wait(process: subprocess.Popen) -> int:
    """The process's return code; a SIGINT/SIGTERM to the job is passed on to it first."""
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            process.send_signal(signal.SIGINT)


def error_line(log_path: Path, offset: int) -> str:
    """The last ``error: ...`` line a step printed (``run.py``'s one-line errors), else its last line."""
    with log_path.open(encoding="utf-8", errors="replace") as log:
        log.seek(offset)
        lines = [line.strip() for line in log if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    chosen = errors[-1] if errors else (lines[-1] if lines else "")
    return chosen[:500]


def job_id() -> str:
    """The submitit/SLURM job id of this process (``<array job>_<task>`` in an array), else its pid."""
    if os.environ.get("SLURM_ARRAY_JOB_ID"):
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID', '0')}"
    return os.environ.get("SLURM_JOB_ID") or os.environ.get("SUBMITIT_LOCAL_JOB_ID") or str(os.getpid())


def _task_rank() -> int:
    return int(os.environ.get("SLURM_PROCID") or os.environ.get("SUBMITIT_LOCAL_GLOBALID") or 0)


def _task_count() -> int:
    return int(os.environ.get("SLURM_NTASKS") or os.environ.get("SUBMITIT_LOCAL_NTASKS") or 1)
