"""A point's job and its ``status`` row against what SLURM says, in this process: the requeue cap
(``executor.max_requeues``) met on a warning signal and by SLURM's restart count, and jobs that ended before
their point wrote a word (``FAILED``, ``OUT_OF_MEMORY``, ``NODE_FAIL``, ``BOOT_FAIL``).

SLURM's client commands are replaced by small shell scripts on ``PATH`` that print what a real ``sacct`` or
``scontrol show job`` prints: the single-node cluster of ``.ci/slurm-up.sh`` keeps no accounting (``sacct``
answers nothing there), and a job that fails before its first line cannot be made to fail on purpose in
every way listed (a node failure, a boot failure). The real cluster's paths are in ``test_studies_slurm.py``.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from submitit.helpers import DelayedSubmission

from studies.job import PointJob, count_requeue
from studies.launch import point_job
from studies.points import study_points
from studies.spec import load_study
from studies.state import read_state, write_state
from studies.status import show_status, study_status
from tests.helpers.study_fixtures import write_study

DIGITS = "configs/linear/digits.yaml"
SLURM_JOB = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT", "SLURM_PROCID",
             "SLURM_NTASKS", "SUBMITIT_LOCAL_JOB_ID", "SUBMITIT_LOCAL_GLOBALID", "SUBMITIT_LOCAL_NTASKS")  # fmt: skip


def reason(requeues: int, cap: int) -> str:
    return (
        f"stopped after {requeues} requeues (executor.max_requeues={cap}): raise timeout_min or max_requeues, "
        "then launch --retry-failed"
    )


def fake_slurm(directory: Path, sacct: str = "", scontrol: str = "") -> Path:
    """A ``bin`` directory (shell builtins only: nothing else is on ``PATH``) whose ``squeue`` holds no job, whose
    ``sacct`` prints ``sacct`` (fails when empty, as without accounting) and whose ``scontrol show job`` prints
    ``scontrol`` (fails when empty: job unknown)."""
    directory.mkdir(parents=True, exist_ok=True)
    scripts = {
        "sbatch": "exit 1",
        "squeue": "exit 0",
        "sacct": f"printf '%s\\n' '{sacct}'" if sacct else "echo 'sacct: error: accounting disabled' >&2; exit 1",
        "scontrol": f"printf '%s\\n' '{scontrol}'" if scontrol else "echo 'Invalid job id specified' >&2; exit 1",
    }
    for name, body in scripts.items():
        path = directory / name
        path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
        path.chmod(0o755)
    return directory


@pytest.fixture
def study(tmp_path, monkeypatch):
    """A two-point study (``max_requeues: 2``) outside any job, with a SLURM that knows no job."""
    for name in SLURM_JOB:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("studies.job._RUNNING", {})
    monkeypatch.setenv("PATH", str(fake_slurm(tmp_path / "bin")))
    study = {"arms": {"a": {"config": DIGITS}}, "grid": {"seed_everything": [0, 1]}, "executor": {"max_requeues": 2}}
    return load_study(write_study(tmp_path / "capped.yaml", study))


def row_of(study, root: Path, label: str):
    return next(row for row in study_status(study, root) if f"{row.arm}/{row.point}" == label)


def test_a_warning_signal_at_the_requeue_cap_fails_the_point_with_one_line_in_status(study, tmp_path):
    """submitit calls ``checkpoint`` on the warning signal: below the cap the job is handed back to be requeued;
    at ``requeues == max_requeues`` it is not (None) and the point is failed with the cap's line."""
    root = tmp_path / "root"
    point = study_points(study, root)[0]
    job = point_job(study, point, tmp_path)
    running = {"state": "running", "step": "fit", "job_id": "7", "history": [{"job": "7", "started": 0.0}]}
    write_state(point.directory, {**running, "requeues": 1})
    assert isinstance(job.checkpoint(), DelayedSubmission)
    assert read_state(point.directory)["state"] == "requeued"

    write_state(point.directory, {**running, "requeues": 2})
    assert job.checkpoint() is None
    state = read_state(point.directory)
    assert (state["state"], state["error"]) == ("failed", reason(2, 2))
    row = row_of(study, root, point.label)
    log = point.directory / "study" / "fit.log"
    assert (row.state, row.requeues, row.note) == ("failed", 2, f"fit: {reason(2, 2)} (log: {log})")


def test_a_slurm_restart_past_the_cap_fails_the_point_before_any_step(study, tmp_path, monkeypatch):
    """A job that SLURM itself requeued (``scontrol requeue``, a preemption: no ``checkpoint`` call) starts again
    with ``SLURM_RESTART_COUNT`` one higher: the third restart of a point capped at 2 runs nothing."""
    root = tmp_path / "root"
    point = study_points(study, root)[0]
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    stopped = {"state": "interrupted", "step": "fit", "job_id": "77", "slurm_state": "REQUEUED"}
    again = {**stopped, "requeues": 2, "restarts": {"77": 2}}
    monkeypatch.setenv("SLURM_RESTART_COUNT", "2")
    count_requeue(again)  # the same start seen twice counts once
    assert again["requeues"] == 2

    write_state(point.directory, {**stopped, "requeues": 2, "restarts": {"77": 2}})
    monkeypatch.setenv("SLURM_RESTART_COUNT", "3")
    handler = signal.getsignal(signal.SIGTERM)
    try:
        outcome = point_job(study, point, tmp_path)()
    finally:
        signal.signal(signal.SIGTERM, handler)  # the job passes SIGTERM on to its step: give pytest's back
    assert (outcome.result, outcome.message) == ("failed", reason(3, 2))
    state = read_state(point.directory)
    assert (state["state"], state["requeues"], state["restarts"]) == ("failed", 3, {"77": 3})
    assert not (point.directory / "study" / "fit.log").exists(), "no step ran"
    assert row_of(study, root, point.label).note.startswith(f"fit: {reason(3, 2)} (log: ")


def test_a_retry_of_a_point_stopped_at_the_cap_starts_with_a_fresh_requeue_budget(study, tmp_path, monkeypatch):
    """``launch --retry-failed`` after the cap (as its line advises): the retried job's steps run with the requeue
    count back at 0, so the point may be requeued ``max_requeues`` times again; the history keeps the old job."""
    root = tmp_path / "root"
    point = study_points(study, root)[0]
    old_job = {"job": "77", "started": 0.0, "result": "requeued"}
    capped = {"state": "failed", "step": "fit", "job_id": "77", "requeues": 2, "restarts": {"77": 2}}
    write_state(point.directory, {**capped, "error": reason(2, 2), "history": [old_job]})
    monkeypatch.setenv("SLURM_JOB_ID", "88")
    seen: list[tuple[str, int]] = []

    def step(job: PointJob, name: str, argv: tuple[str, ...], lock: object, state: dict) -> tuple[int, str]:
        seen.append((name, state["requeues"]))  # what a warning signal during this step would be measured against
        return 0, ""

    monkeypatch.setattr(PointJob, "_step", step)  # the steps' own work is not what is tested here
    handler = signal.getsignal(signal.SIGTERM)
    try:
        point_job(study, point, tmp_path, retry_failed=True)()
    finally:
        signal.signal(signal.SIGTERM, handler)
    assert seen and all(requeues == 0 for _, requeues in seen), seen
    assert [entry["job"] for entry in read_state(point.directory)["history"]] == ["77", "88"]


def ledger(study, root: Path, jobs: dict[str, str], executor: str = "slurm") -> None:
    """``launches.jsonl`` as ``launch`` writes it: the last job submitted for each point."""
    path = root / study.name / "launches.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"point": point, "job_id": job, "executor": executor}) for point, job in jobs.items()]
    path.write_text("".join(line + "\n" for line in lines))


def job_log(root: Path, study, job: str) -> Path:
    return root / study.name / ".submitit" / job / f"{job}_0_log.out"


@pytest.mark.parametrize(
    ("final", "shown"),
    [("FAILED", "failed"), ("OUT_OF_MEMORY", "failed"), ("BOOT_FAIL", "failed"), ("NODE_FAIL", "lost")],
)
@pytest.mark.parametrize("source", ["sacct", "scontrol"])
def test_a_job_that_ended_before_its_point_started_says_so_with_its_log(study, tmp_path, final, shown, source):
    """The job never reached the point (no state, or only an older job's): ``failed`` (``lost`` for a node
    failure) with SLURM's word and submitit's log of that job, from ``sacct`` (accounting on) or ``scontrol``."""
    root = tmp_path / "root"
    fresh, older = study_points(study, root)
    write_state(older.directory, {"state": "interrupted", "step": "fit", "job_id": "40", "error": "stopped by SIGTERM"})
    ledger(study, root, {fresh.label: "41", older.label: "42_3"})
    answers = {
        "sacct": {"sacct": f"41|{final}\n42_3|{final}\n42|{final}"},
        "scontrol": {"scontrol": f"JobId=41 JobName=study-capped JobState={final} Reason=None Restarts=0"},
    }[source]
    fake_slurm(tmp_path / "bin", **answers)
    rows = {f"{row.arm}/{row.point}": row for row in study_status(study, root)}
    row = rows[fresh.label]
    assert (row.state, row.job_id) == (shown, "41")
    log = job_log(root, study, "41")
    assert row.note == f"job {final} before the point started; launch runs it again (log: {log})"
    row = rows[older.label]  # its state is an older job's: the new one never reached it
    assert (row.state, row.job_id) == (shown, "42_3")
    log = job_log(root, study, "42_3")
    assert row.note == f"job {final} before the point started; launch runs it again (log: {log})"
    said: list[str] = []
    assert show_status(study, root, said.append) == (1 if shown == "failed" else 0)


def test_a_job_slurm_has_forgotten_before_its_point_started_is_lost_not_pending(study, tmp_path):
    """No accounting, and the job ended longer ago than ``MinJobAge``: ``squeue`` answers without it and
    ``scontrol`` no longer knows it. A point it never reached is ``lost`` with the job's log (it was ``pending``,
    as if the job were still to come); a point stopped by an older job keeps its own word."""
    root = tmp_path / "root"
    fresh, older = study_points(study, root)
    write_state(older.directory, {"state": "interrupted", "step": "fit", "job_id": "60", "error": "stopped by SIGTERM"})
    ledger(study, root, {fresh.label: "61", older.label: "60"})
    rows = {f"{row.arm}/{row.point}": row for row in study_status(study, root)}
    assert (rows[fresh.label].state, rows[fresh.label].job_id) == ("lost", "61")
    assert rows[fresh.label].note == (
        "job 61 ended before the point started and SLURM no longer knows how (no accounting); launch runs it again "
        f"(log: {job_log(root, study, '61')})"
    )
    assert rows[older.label].note == "interrupted in fit: stopped by SIGTERM; launch continues it"


def test_a_lost_job_names_its_log(study, tmp_path):
    """A job that ended without a word while its point ran (killed, out of memory): ``lost``, with the log where
    SLURM writes its own word (``slurmstepd: error: Detected 1 oom_kill event``) and ``launch`` continues it."""
    root = tmp_path / "root"
    point = study_points(study, root)[0]
    write_state(point.directory, {"state": "running", "step": "fit", "job_id": "51"})
    ledger(study, root, {point.label: "51"})
    fake_slurm(tmp_path / "bin", sacct="51|OUT_OF_MEMORY")
    row = row_of(study, root, point.label)
    assert row.state == "lost"
    assert row.note == (
        "job OUT_OF_MEMORY ended without a word in fit (killed, out of memory or node lost); launch continues it "
        f"(log: {job_log(root, study, '51')})"
    )


def test_a_local_jobs_id_is_not_asked_of_slurm(study, tmp_path):
    """A local job's id is its process id: a SLURM job of the same number says nothing about the point."""
    root = tmp_path / "root"
    point = study_points(study, root)[0]
    ledger(study, root, {point.label: "41"}, executor="local")
    fake_slurm(tmp_path / "bin", sacct="41|FAILED")
    row = row_of(study, root, point.label)
    assert (row.state, row.note) == ("pending", "")
