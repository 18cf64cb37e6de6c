"""Studies on a real SLURM cluster (``.ci/slurm-up.sh``: one node, this machine). Most of these scenarios' time is
SLURM's own (time limits, requeue delays, the scheduler's passes), so one fixture runs them side by side; each
test then checks one of them:

- **array**: 4 points as one job array with ``--max-parallel 2``, launched by two launchers at the same moment;
- **ddp**: a point with 2 tasks through ``srun`` (DDP on gloo) against the same fit in one process;
- **timeout**: tiny GPT-2 with a 1-minute time limit and more work than fits in one job: stopped on SLURM's
  warning signal and requeued until it finishes, against the same point run straight through;
- **requeue**: the same point, ``scontrol requeue`` while it trains;
- **cancel**: a point cancelled with ``scancel`` while it trains, then launched again;
- **lost**: a point whose job is killed with SIGKILL (as when its node is lost), then launched again.

A job that fails before its point starts has its own test, without the fixture.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cognitive_reserve import read_sweep_csv
from studies import cluster
from studies.state import read_state
from studies.status import last_job_ids
from tests.helpers.cli import ROOT, run_cli
from tests.helpers.ddp_probe import ddp_config
from tests.helpers.gpt2_fixtures import tiny_corpus
from tests.helpers.signals import steps_done
from tests.helpers.study_fixtures import (
    fast_digits_config,
    run_studies,
    studies_command,
    studies_env,
    tiny_gpt2_config,
    write_study,
)


def cluster_answers() -> bool:
    if not cluster.available():
        return False
    try:
        result = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return any(state.startswith(("idle", "mix", "alloc")) for state in result.stdout.split())


pytestmark = [
    pytest.mark.slow,
    pytest.mark.slurm,
    pytest.mark.skipif(not cluster_answers(), reason="no SLURM cluster answers here (.ci/slurm-up.sh starts one)"),
    pytest.mark.timeout(1200),  # the fixture waits for every scenario (minutes: SLURM's time limits and delays)
]

#: The tiny GPT-2 point of the timeout and requeue scenarios: 2 batches an epoch, a validation (and its
#: sweep) every 10 steps, a pause after every step (long in wall time, light on the CPU).
GPT2_STEPS, GPT2_VALIDATE_EVERY, GPT2_PACE_S = 100, 10, 0.3
SCENARIO_TIMEOUT_S = 480.0


def wait_for(condition: Callable[[], Any], what: str, timeout_s: float = SCENARIO_TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s:g} s for {what}")
        time.sleep(0.5)
    return value


def launch(study: Path, root: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_studies("launch", str(study), "--root", str(root), "--executor", "slurm", *extra, timeout=300)


def point_state(root: Path, study: str, label: str) -> dict[str, Any]:
    return read_state(root / study / label)


def done(root: Path, study: str, *labels: str) -> bool:
    return all(point_state(root, study, label).get("state") == "done" for label in labels)


def ended(root: Path, study: str, label: str) -> bool:
    """Done, or failed (its test says why)."""
    return point_state(root, study, label).get("state") in ("done", "failed")


def job_of(root: Path, study: str, label: str) -> str:
    return last_job_ids(root / study / "launches.jsonl")[label]


def gone(job: str) -> bool:
    info = cluster.job_states([job]).get(job)
    return info is None or not info.live


def csv_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.glob("*/*.csv"))}


# ---- the scenarios ---------------------------------------------------------------------------------------------


def array_scenario(work: Path) -> dict[str, Any]:
    config = fast_digits_config(work)
    study = write_study(work / "array.yaml", {
        "name": "array", "arms": {"a": {"config": str(config), "overrides": {"trainer.logger": False}}},
        "grid": {"seed_everything": [0, 1, 2, 3]}, "steps": ["fit"],
        "executor": {"max_parallel": 2, "timeout_min": 10, "mem_gb": 1},
    })  # fmt: skip
    root, labels = work / "root", [f"a/seed_everything={s}" for s in range(4)]
    args = studies_command("launch", str(study), "--root", str(root), "--executor", "slurm")
    launchers = [
        subprocess.Popen(args, cwd=ROOT, env=studies_env(), text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(2)
    ]
    outputs = [launcher.communicate(timeout=300)[0] for launcher in launchers]
    most, deadline = 0, time.monotonic() + SCENARIO_TIMEOUT_S
    while not done(root, "array", *labels) and time.monotonic() < deadline:
        running = [job for job in cluster.squeue("study-array").values() if job.state == "RUNNING"]
        most = max(most, len(running))
        time.sleep(0.3)
    return {"root": root, "study": study, "labels": labels, "outputs": outputs, "most_running": most}


def ddp_scenario(work: Path) -> dict[str, Any]:
    config = ddp_config(work)
    overrides = {"trainer.strategy": "ddp", "trainer.devices": 2, "trainer.accelerator": "cpu", "trainer.logger": False}
    study = write_study(work / "two_tasks.yaml", {
        "name": "ddp", "arms": {"two": {"config": str(config), "overrides": overrides}}, "steps": ["fit"],
        "executor": {"tasks_per_node": 2, "timeout_min": 10, "mem_gb": 2},
    })  # fmt: skip
    root = work / "root"
    launched = launch(study, root)
    wait_for(lambda: ended(root, "ddp", "two/base"), "the DDP point")
    single, no_wandb = work / "one", "--trainer.logger=false"
    reference = run_cli("fit", "--config", str(config), no_wandb, f"--trainer.default_root_dir={single}")
    return {"root": root, "launched": launched, "single": single, "reference": reference}


def gpt2_scenarios(work: Path) -> dict[str, Any]:
    """The timeout and requeue points (one config), and the reference: the same point run straight through.
    ``ended[study]`` is True, or why the point did not end."""
    corpus = tiny_corpus(work / "corpus", kilobytes=16)
    paced = tiny_gpt2_config(work, corpus, GPT2_STEPS, GPT2_VALIDATE_EVERY, pace_s=GPT2_PACE_S, name="paced")
    arms = {"mono": {"config": str(paced)}}
    timeout = write_study(work / "timeout.yaml", {
        "name": "timeout", "arms": arms, "steps": ["fit", "test"],
        "executor": {"timeout_min": 1, "signal_delay_s": 1, "max_requeues": 20, "mem_gb": 2},
    })  # fmt: skip
    requeue = write_study(work / "requeue.yaml", {
        "name": "requeue", "arms": arms, "steps": ["fit", "test"], "executor": {"timeout_min": 10, "mem_gb": 2},
    })  # fmt: skip
    root = work / "root"
    launched = {"timeout": launch(timeout, root), "requeue": launch(requeue, root)}
    point = root / "requeue" / "mono" / "base"
    wait_for(lambda: steps_done(point) >= 20, "the requeue point's first 20 steps")
    subprocess.run(["scontrol", "requeue", job_of(root, "requeue", "mono/base")], check=True, capture_output=True)
    straight = work / "straight"
    plain = tiny_gpt2_config(work, corpus, GPT2_STEPS, GPT2_VALIDATE_EVERY, name="plain")
    one_thread = {"OMP_NUM_THREADS": "1"}  # as the jobs (their CPUs per task): the same float sums, bit for bit
    reference: list[subprocess.CompletedProcess] = []
    straight_through = threading.Thread(target=lambda: reference.extend([  # while the points wait for SLURM
        run_cli("fit", "--config", str(plain), f"--trainer.default_root_dir={straight}", env=one_thread),
        run_cli("test", "--config", str(plain), f"--trainer.default_root_dir={straight}",
                f"--ckpt_path={straight / 'checkpoints' / 'last.ckpt'}", env=one_thread),
    ]))  # fmt: skip
    straight_through.start()
    ended_as: dict[str, Any] = {}
    for study in ("timeout", "requeue"):
        try:
            ended_as[study] = wait_for(lambda study=study: ended(root, study, "mono/base"), f"the {study} point")
        except TimeoutError as err:
            ended_as[study] = str(err)
    straight_through.join()
    return {"root": root, "launched": launched, "straight": straight, "reference": reference, "ended": ended_as}


def stopped_then_relaunched(work: Path, name: str, stop: Callable[[Path, str], None]) -> dict[str, Any]:
    """A digits point (a pause after each of its 40 steps, a checkpoint after each), stopped by ``stop(point, job)``
    after 8 steps; its status once its job is gone; then launched again, until it is done."""
    config = fast_digits_config(work, pace_s=0.5)
    study = write_study(work / f"{name}.yaml", {
        "name": name, "arms": {"a": {"config": str(config), "overrides": {"trainer.logger": False}}},
        "steps": ["fit"], "executor": {"timeout_min": 10, "mem_gb": 1},
    })  # fmt: skip
    root = work / "root"
    launch(study, root)
    point = root / name / "a" / "base"
    wait_for(lambda: steps_done(point) >= 8, f"8 steps of the {name} point")
    job = job_of(root, name, "a/base")
    stop(point, job)
    wait_for(lambda: gone(job), f"job {job} to end")
    status = run_studies("status", str(study), "--root", str(root))
    again = launch(study, root)
    wait_for(lambda: ended(root, name, "a/base"), f"the {name} point, launched again")
    return {"root": root, "point": point, "job": job, "status": status, "again": again}


def cancel(point: Path, job: str) -> None:
    subprocess.run(["scancel", job], check=True)


def kill_its_processes(point: Path, job: str) -> None:
    """SIGKILL the job's process and its ``run.py`` (nothing can save: as when the node is lost)."""
    state = read_state(point)
    for pid in (state["step_pid"], state["pid"]):
        os.kill(int(pid), signal.SIGKILL)


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory) -> dict[str, Any]:
    """Every scenario at once, each in its own thread and folder: ``{name: its result or the error it raised}``."""
    plan = {
        "array": array_scenario,
        "ddp": ddp_scenario,
        "gpt2": gpt2_scenarios,
        "cancel": lambda work: stopped_then_relaunched(work, "cancel", cancel),
        "lost": lambda work: stopped_then_relaunched(work, "lost", kill_its_processes),
    }
    results: dict[str, Any] = {}

    def run(name: str, scenario: Callable[[Path], dict[str, Any]], work: Path) -> None:
        started = time.monotonic()
        try:
            results[name] = scenario(work)
        except Exception as err:  # reported by the scenario's own tests
            results[name] = err
        print(f"slurm scenario {name}: {time.monotonic() - started:.0f} s", flush=True)

    # the folders first: pytest's numbered folders are not made safely from several threads at once
    works = {name: tmp_path_factory.mktemp(name) for name in plan}
    threads = [threading.Thread(target=run, args=(name, scenario, works[name])) for name, scenario in plan.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def result(scenarios: dict[str, Any], name: str) -> dict[str, Any]:
    outcome = scenarios[name]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


# ---- the tests -------------------------------------------------------------------------------------------------


def test_a_study_is_one_job_array_and_never_runs_more_than_max_parallel(scenarios):
    array = result(scenarios, "array")
    ledger = [json.loads(line) for line in (array["root"] / "array" / "launches.jsonl").read_text().splitlines()]
    assert sorted(entry["point"] for entry in ledger) == sorted(array["labels"])  # each point submitted once
    assert len({entry["job_id"].split("_")[0] for entry in ledger}) == 1  # as one array
    assert array["most_running"] == 2  # side by side (they asked for memory), never more than --max-parallel


def test_two_launchers_at_once_submit_each_point_once(scenarios):
    array = result(scenarios, "array")
    said = "\n".join(array["outputs"])
    assert said.count("submitted as job") == 4, said
    assert "study array: nothing to launch (" in said, said  # the second found them queued (or done)
    for label in array["labels"]:
        assert point_state(array["root"], "array", label)["attempts"] == 1
    status = run_studies("status", str(array["study"]), "--root", str(array["root"]))
    assert status.returncode == 0 and status.stdout.splitlines()[-1].endswith("4 done"), status.stdout


def test_a_ddp_point_runs_as_two_srun_tasks_with_the_single_process_sweep(scenarios):
    ddp = result(scenarios, "ddp")
    assert ddp["reference"].returncode == 0, ddp["reference"].stderr[-2000:]
    point = ddp["root"] / "ddp" / "two" / "base"
    log = (point / "study" / "fit.log").read_text()
    assert point_state(ddp["root"], "ddp", "two/base")["state"] == "done", log[-3000:]
    assert "Initializing distributed: GLOBAL_RANK: 0, MEMBER: 1/2" in log  # task 0 of 2: the other is rank 1
    for name in ("sweep_fit_epoch001.csv", "sweep_train_epoch001.csv"):
        expected, got = (read_sweep_csv(root / "robustness" / name) for root in (ddp["single"], point))
        assert [(r.perturbation, r.level, r.trial, r.metric) for r in got] == [
            (r.perturbation, r.level, r.trial, r.metric) for r in expected
        ]
        assert [r.value for r in got] == pytest.approx([r.value for r in expected], rel=1e-5)


def test_a_point_longer_than_its_time_limit_is_requeued_until_it_ends_as_if_never_stopped(scenarios):
    gpt2 = result(scenarios, "gpt2")
    assert all(run.returncode == 0 for run in gpt2["reference"]), gpt2["reference"][-1].stderr[-2000:]
    assert gpt2["ended"]["timeout"] is True, gpt2["ended"]["timeout"]
    point = gpt2["root"] / "timeout" / "mono" / "base"
    state, log = read_state(point), (point / "study" / "fit.log").read_text()
    assert state["state"] == "done", (state, log[-3000:])
    assert state["requeues"] >= 1 and "stopped by SIGUSR2" in log  # SLURM's warning signal, then a requeue
    assert csv_files(point) == csv_files(gpt2["straight"])  # every sweep and monitor CSV, byte for byte


def test_scontrol_requeue_mid_fit_continues_from_where_it_stopped(scenarios):
    gpt2 = result(scenarios, "gpt2")
    assert gpt2["ended"]["requeue"] is True, gpt2["ended"]["requeue"]
    point = gpt2["root"] / "requeue" / "mono" / "base"
    state, log = read_state(point), (point / "study" / "fit.log").read_text()
    assert state["state"] == "done" and state["requeues"] == 1, (state, log[-3000:])
    assert "stopped by SIGTERM" in log and "Restoring states from the checkpoint" in log
    assert csv_files(point) == csv_files(gpt2["straight"])


def test_a_cancelled_point_shows_as_cancelled_and_the_next_launch_continues_it(scenarios):
    cancelled = result(scenarios, "cancel")
    row = next(line for line in cancelled["status"].stdout.splitlines() if line.startswith("a "))
    assert row.split()[2] == "cancelled" and "job CANCELLED" in row, cancelled["status"].stdout
    assert "launch continues it" in row
    assert "a/base: submitted as job" in cancelled["again"].stdout
    log = (cancelled["point"] / "study" / "fit.log").read_text()
    assert read_state(cancelled["point"])["state"] == "done", log[-3000:]
    assert "stopped by SIGTERM" in log and log.count("Restoring states from the checkpoint") == 1


def test_a_job_killed_without_a_word_shows_as_lost_and_the_next_launch_continues_it(scenarios):
    lost = result(scenarios, "lost")
    row = next(line for line in lost["status"].stdout.splitlines() if line.startswith("a "))
    assert row.split()[2] == "lost" and "ended without a word in fit" in row, lost["status"].stdout
    job = lost["job"]
    assert row.endswith(f"(log: {lost['root'] / 'lost' / '.submitit' / job / f'{job}_0_log.out'})"), row
    log = (lost["point"] / "study" / "fit.log").read_text()
    assert read_state(lost["point"])["state"] == "done", log[-3000:]
    assert "stopped by" not in log and log.count("Restoring states from the checkpoint") == 1


def test_a_job_that_fails_before_its_point_starts_shows_as_failed_with_its_log(tmp_path):
    """A job whose batch script fails before the point's job runs (a setup line that exits, as a node without the
    environment would): SLURM ends it ``FAILED`` and the point never wrote a word; ``status`` says so in one line
    with submitit's log of the job, where the script's error is. (No scenario fixture: runs alone in ~30 s.)"""
    config = fast_digits_config(tmp_path)
    study = write_study(tmp_path / "broken.yaml", {
        "name": "broken", "arms": {"a": {"config": str(config), "overrides": {"trainer.logger": False}}},
        "steps": ["fit"],
        "executor": {"timeout_min": 5, "mem_gb": 1, "slurm": {"slurm_setup": ["echo 'no such env' >&2", "exit 3"]}},
    })  # fmt: skip
    root = tmp_path / "root"
    launched = launch(study, root)
    assert launched.returncode == 0, launched.stdout + launched.stderr
    job = job_of(root, "broken", "a/base")
    wait_for(lambda: gone(job), f"job {job} to end", timeout_s=120)
    status = run_studies("status", str(study), "--root", str(root))
    row = next(line for line in status.stdout.splitlines() if line.startswith("a "))
    log = root / "broken" / ".submitit" / job / f"{job}_0_log.out"
    assert status.returncode == 1 and row.split()[2] == "failed", status.stdout
    assert row.endswith(f"job FAILED before the point started; launch runs it again (log: {log})"), status.stdout
    assert "no such env" in log.read_text()
    assert not (root / "broken" / "a" / "base" / "study" / "state.json").exists()
