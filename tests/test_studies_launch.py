"""Studies launched for real: ``python -m studies`` processes, submitit's local executor, ``run.py`` jobs.

One small study (fast digits config, ``fit`` only): arm ``a`` logs to W&B, ``b`` does not, ``bad`` has an
override ``run.py`` refuses. Two launchers start it at the same moment; then it is launched again, its
status read, its report made; a copy of point ``b`` is killed mid-fit and launched again.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from cognitive_reserve.io import read_sweep_csv
from studies.spec import load_study
from studies.state import LOCK_FILE, STATE_FILE, read_state
from studies.status import show_status
from tests.helpers.cli import ROOT
from tests.helpers.signals import sigint_as_in_a_terminal, steps_done
from tests.helpers.study_fixtures import fast_digits_config, run_studies, studies_command, studies_env, write_study
from tests.helpers.wandb_offline import find_runs, read_run_until

pytestmark = pytest.mark.slow  # every test runs real processes

POINTS = ("a/seed_everything=0", "b/seed_everything=0", "bad/seed_everything=0")
SWEEP = "robustness/sweep_fit_epoch039.csv"


def study_file(directory: Path, config: Path, arms: tuple[str, ...] = ("a", "b", "bad")) -> Path:
    all_arms = {
        "a": {"config": str(config)},
        "b": {"config": str(config), "overrides": {"trainer.logger": False, "model.init_args.k": 2}},
        "bad": {"config": str(config), "overrides": {"trainer.logger": False, "model.init_args.k": -1}},
    }
    study = {
        "name": "tiny",
        "arms": {arm: all_arms[arm] for arm in arms},
        "grid": {"seed_everything": [0]},
        "steps": ["fit"],
        "executor": {"max_parallel": 2, "timeout_min": 20},
    }
    if {"a", "b"} <= set(arms):
        study["compare"] = {"a": "a", "b": "b", "metrics": ["mse_task_vector"], "model_a": "linear_sgd_k4_T5",
                            "model_b": "linear_sgd_k2_T5"}  # fmt: skip
    return write_study(directory / f"tiny_{len(arms)}.yaml", study)


@pytest.fixture(scope="module")
def launched(tmp_path_factory) -> dict:
    """The study launched by two ``launch`` processes at once (``--max-parallel 2`` each)."""
    work = tmp_path_factory.mktemp("study")
    path = study_file(work, fast_digits_config(work))
    root = work / "root"
    args = ["launch", str(path), "--root", str(root), "--executor", "local"]
    launchers = [
        subprocess.Popen(studies_command(*args), cwd=ROOT, env=studies_env(), text=True, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        for _ in range(2)
    ]  # fmt: skip
    outputs = [launcher.communicate(timeout=600)[0] for launcher in launchers]
    return {"path": path, "root": root, "work": work, "outputs": outputs, "codes": [p.returncode for p in launchers]}


def point_dir(root: Path, label: str) -> Path:
    return root / "tiny" / label


def test_two_launches_at_once_run_every_point_once_and_the_second_says_who_holds_the_slots(launched):
    said = "\n".join(launched["outputs"])
    refused = [out for out in launched["outputs"] if "study tiny: not launched, another launch runs its points" in out]
    assert len(refused) == 1 and "the study's max_parallel slots are its" in refused[0], said
    assert refused[0].count("\n") == 1  # one line, nothing submitted
    for label in POINTS:
        state = read_state(point_dir(launched["root"], label))
        assert state["attempts"] == 1, (label, said)
        log = (point_dir(launched["root"], label) / "study" / "fit.log").read_text()
        assert log.count("\n# ") == 1, label  # one run.py fit, whatever the two launchers submitted
    assert said.count("a/seed_everything=0: done in") == 1, said
    assert said.count("b/seed_everything=0: done in") == 1, said
    assert said.count("bad/seed_everything=0: failed") == 1, said
    for label in POINTS[:2]:
        rows = read_sweep_csv(point_dir(launched["root"], label) / SWEEP)
        keys = Counter((r.model, r.perturbation, r.level, r.trial, r.metric) for r in rows)
        # 2 models × (σ = 0 once, σ = 0.1, 0.2 × 4 trials, 2 pruning levels): whole, each row once
        assert len(rows) == 2 * (1 + 2 * 4 + 2) and max(keys.values()) == 1, label
        assert (point_dir(launched["root"], label) / "checkpoints" / "last.ckpt").is_file()
        assert (point_dir(launched["root"], label) / LOCK_FILE).read_text() == ""  # released cleanly


def test_a_failing_point_is_reported_with_its_error_line_and_the_others_finish(launched):
    assert 1 in launched["codes"]  # the launcher whose job ran `bad` says it failed
    status = run_studies("status", str(launched["path"]), "--root", str(launched["root"]))
    assert status.returncode == 1, status.stderr
    rows = {line.split()[0] + "/" + line.split()[1]: line for line in status.stdout.splitlines()[1:-1]}
    assert rows["bad/seed_everything=0"].split()[2] == "failed"
    log = point_dir(launched["root"], "bad/seed_everything=0") / "study" / "fit.log"
    assert rows["bad/seed_everything=0"].endswith(f"fit: error: model.k=-1: must be an integer >= 1 (log: {log})")
    assert rows["a/seed_everything=0"].split()[2] == rows["b/seed_everything=0"].split()[2] == "done"
    assert status.stdout.splitlines()[-1].endswith("2 done, 1 failed")


def test_a_point_logs_to_wandb_in_the_study_group(launched):
    (run_file,) = find_runs(point_dir(launched["root"], "a/seed_everything=0") / "wandb")
    run = read_run_until(run_file, lambda run: bool(run.group))
    assert (run.group, run.name, run.job_type) == ("tiny", "a/seed_everything=0", "fit")
    assert {"a", "seed_everything=0"} <= set(run.tags)


def files_of(directory: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(directory)): (p.stat().st_mtime_ns, p.stat().st_size) for p in directory.rglob("*")}


def test_launching_again_runs_nothing_and_touches_no_file_of_a_finished_point(launched):
    before = {label: files_of(point_dir(launched["root"], label)) for label in POINTS[:2]}
    ledger = (launched["root"] / "tiny" / "launches.jsonl").read_text()
    again = run_studies("launch", str(launched["path"]), "--root", str(launched["root"]), "--executor", "local")
    assert "study tiny: nothing to launch (2 done, 1 failed)" in again.stdout, again.stdout + again.stderr
    assert "bad/seed_everything=0: failed (fit: error: model.k=-1" in again.stdout
    assert again.returncode == 1  # a failed point stays failed until --retry-failed
    assert {label: files_of(point_dir(launched["root"], label)) for label in POINTS[:2]} == before
    assert (launched["root"] / "tiny" / "launches.jsonl").read_text() == ledger


def test_report_logs_one_wandb_run_in_the_study_group(launched):
    out = launched["work"] / "report"
    result = run_studies("report", str(launched["path"]), "--root", str(launched["root"]), "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    with (out / "report.csv").open() as file:
        (row,) = [r for r in csv.DictReader(file) if r["perturbation"] == "gaussian_noise"]
    assert row["group"] == "all" and row["n_seeds_a"] == row["n_seeds_b"] == "1"
    (run_file,) = find_runs(out / "wandb")
    run = read_run_until(run_file, lambda run: "study/report/table/_type" in run.summary)
    assert (run.group, run.job_type) == ("tiny", "study-report") and "study/report/table/nrows" in run.summary


def test_ctrl_c_stops_the_launch_in_one_line_and_the_next_launch_continues(launched, tmp_path):
    """Ctrl-C in the terminal (SIGINT to the launch's whole process group): no traceback, one line, status 130;
    the running point saved where it was and is continued by the next launch."""
    path = study_file(tmp_path, fast_digits_config(tmp_path, pace_s=0.5), arms=("a", "b"))
    root = tmp_path / "root"
    args = ["launch", str(path), "--root", str(root), "--executor", "local", "--max-parallel", "1"]
    launcher = subprocess.Popen(studies_command(*args), cwd=ROOT, env=studies_env(), text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=sigint_as_in_a_terminal)  # fmt: skip
    deadline = time.monotonic() + 300
    while steps_done(point_dir(root, "a/seed_everything=0")) < 3:
        assert time.monotonic() < deadline and launcher.poll() is None, "the first point never trained"
        time.sleep(0.1)
    os.killpg(launcher.pid, signal.SIGINT)  # what Ctrl-C does
    said = launcher.communicate(timeout=200)[0]
    assert launcher.returncode == 130, said
    assert "Traceback" not in said and "KeyboardInterrupt" not in said, said
    assert said.splitlines()[-1] == "interrupted: 0 points done, 2 will continue on the next launch", said
    state = read_state(point_dir(root, "a/seed_everything=0"))
    assert state["state"] == "interrupted" and "stopped by SIGTERM" in state["error"], state


def test_a_point_killed_mid_fit_continues_from_its_checkpoint_to_the_same_sweep(launched, tmp_path):
    path = study_file(tmp_path, fast_digits_config(launched["work"]), arms=("b",))
    root, label = tmp_path / "root", "b/seed_everything=0"
    point = point_dir(root, label)
    args = ["launch", str(path), "--root", str(root), "--executor", "local"]
    launcher = subprocess.Popen(studies_command(*args), cwd=ROOT, env=studies_env(), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 300
    while not (point / "checkpoints" / "last.ckpt").exists():  # a checkpoint after every epoch
        assert time.monotonic() < deadline and launcher.poll() is None, "no checkpoint before the fit ended"
        time.sleep(0.01)
    step_pid = json.loads((point / STATE_FILE).read_text())["step_pid"]
    os.kill(step_pid, signal.SIGSTOP)  # held still between two epochs' checkpoints...
    assert not (point / SWEEP).exists(), "the fit ended before it could be killed"
    os.kill(step_pid, signal.SIGKILL)  # ...then killed in the middle of its fit
    first = launcher.communicate(timeout=120)[0]
    assert launcher.returncode == 1 and f"{label}: interrupted (fit: killed by SIGKILL" in first, first
    (point / LOCK_FILE).write_text(json.dumps({"host": "gone", "pid": 1, "job_id": "lost"}))  # as if its job died too

    again = run_studies(*args)
    assert again.returncode == 0 and f"{label}: done in" in again.stdout, again.stdout + again.stderr
    assert "took over the stale lock of pid 1 on gone (job lost)" in again.stdout
    log = (point / "study" / "fit.log").read_text()
    assert log.count("\n# ") == 2 and "Restoring states from the checkpoint path" in log.split("\n# ")[2]
    whole = read_sweep_csv(point_dir(launched["root"], label) / SWEEP)
    resumed = read_sweep_csv(point / SWEEP)
    assert [(r.model, r.perturbation, r.level, r.trial) for r in resumed] == [
        (r.model, r.perturbation, r.level, r.trial) for r in whole
    ]
    assert [r.value for r in resumed] == pytest.approx([r.value for r in whole], rel=1e-4, abs=1e-9)


def test_a_point_at_its_requeue_cap_stops_as_failed_at_its_time_limit(tmp_path):
    """``max_requeues: 0`` and a 1-minute limit: submitit's local warning (30 s before the limit) stops the fit,
    which is not requeued: the point fails with the cap's line, in ``launch`` and in ``status``."""
    config = fast_digits_config(tmp_path, pace_s=1.0)  # 40 steps of at least 1 s: still training at the warning
    study = {"name": "capped", "arms": {"b": {"config": str(config), "overrides": {"trainer.logger": False}}},
             "grid": {"seed_everything": [0]}, "steps": ["fit"],
             "executor": {"timeout_min": 1, "signal_delay_s": 30, "max_requeues": 0}}  # fmt: skip
    path, root = write_study(tmp_path / "capped.yaml", study), tmp_path / "root"
    cap = (
        "stopped after 0 requeues (executor.max_requeues=0): raise timeout_min or max_requeues, "
        "then launch --retry-failed"
    )
    launched = run_studies("launch", str(path), "--root", str(root), "--executor", "local", timeout=300)
    assert launched.returncode == 1, launched.stdout + launched.stderr
    assert f"b/seed_everything=0: failed (fit: {cap})" in launched.stdout.splitlines(), launched.stdout
    state = read_state(root / "capped" / "b" / "seed_everything=0")
    assert (state["state"], state["requeues"], state["error"]) == ("failed", 0, cap), state
    shown: list[str] = []
    assert show_status(load_study(path), root, shown.append) == 1
    row = next(line for line in shown if line.startswith("b "))
    assert row.split()[2] == "failed" and f"fit: {cap} (log: " in row, shown
