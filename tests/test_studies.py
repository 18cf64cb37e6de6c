"""Studies without training: the study file's one-line errors, every shipped study's dry run and W&B sweeps,
the point lock, ``status`` from recorded states, and ``report`` against ``run_reports.compare`` by hand.

The real launches (processes, kills, concurrent launchers) are in ``test_studies_launch.py``.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cognitive_reserve.fields import update_reference
from config_reference import resolve
from run_reports import compare as compare_command
from studies.__main__ import run
from studies.lock import PointLock, lock_holder, owner
from studies.points import point_commands, study_points
from studies.spec import load_study
from studies.state import LOCK_FILE, write_state
from studies.status import study_status
from studies.wandb_sweep import sweep_documents
from tests.helpers.cli import ROOT
from tests.helpers.study_fixtures import SHIPPED, expand_agent_command, resolved_run, write_study, write_sweep

DIGITS = "configs/linear/digits.yaml"
BASE = {"arms": {"a": {"config": DIGITS}, "b": {"config": DIGITS, "overrides": {"model.init_args.k": 2}}}}


def test_the_shipped_studies_are_the_six_of_the_docs():
    assert [path.stem for path in SHIPPED] == [
        "digits_examples_per_task", "gpt2_scaling", "gpt2_tiny_replicates", "gpt2_tiny_scaling",
        "gpt2_tiny_structural", "mnist_examples_per_task",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"grid": {"seed_everything": []}}, "study.grid.seed_everything=[]: must list at least one value"),
        ({"grid": {"seed_everything": [0, 0]}}, "study.grid.seed_everything=[0, 0]: '0' is listed twice"),
        ({"grid": {"seed everything": [0]}}, "study.grid.seed everything='seed everything': not a dotted config key"),
        ({"grid": {"data.init_args.root": ["a/b"]}}, "study.grid.data.init_args.root='a/b': cannot name a directory"),
        (
            {"grdi": {}},
            "study.grdi={}: not a field (fields: name, arms, grid, steps, overrides, compare, executor, caption)",
        ),
        ({"arms": {}}, "study.arms={}: must map at least one arm name"),
        ({"arms": {"a": {"config": "nope.yaml"}}}, "study.arms.a.config='nope.yaml': no such config file"),
        ({"arms": {"a": {}}}, "study.arms.a.config=None: required"),
        ({"steps": ["test"]}, "study.steps=['test']: must be [fit] or [fit, test]"),
        ({"compare": {"a": "a", "b": "c"}}, "study.compare.b='c': not an arm (arms: a, b)"),
        ({"compare": {"a": "a", "b": "b", "n_boot": 0}}, "study.compare.n_boot=0: must be an integer >= 1"),
        ({"compare": {"a": "a", "b": "b", "group_by": ["k"]}}, "study.compare.group_by='k': not a grid axis"),
        ({"executor": {"gpus_per_node": -1}}, "study.executor.gpus_per_node=-1: must be an integer >= 0"),
        ({"executor": {"slurm": {"slurm_bogus": 1}}}, "study.executor.slurm.slurm_bogus=1: not a submitit SLURM"),
        ({"grid": {"size": [{"label": "s", "x": "1e7", "model.init_args.k": 1}]}}, "study.grid.size[0].x='1e7'"),
    ],
)
def test_bad_study_stops_with_one_line_before_anything_is_launched(tmp_path, capsys, change, error):
    path = write_study(tmp_path / "bad.yaml", {**BASE, **change})
    assert run(["launch", str(path), "--root", str(tmp_path / "root")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {error}") and err.count("\n") == 1, err
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        (["--max-parallel", "0"], "error: max_parallel=0: must be an integer >= 1"),
        (["--gpus-per-node", "-2"], "error: executor.gpus_per_node=-2: must be an integer >= 0"),
        (["--slurm-option", "slurm_nope=1"], "error: executor.slurm.slurm_nope=1: not a submitit SLURM option"),
    ],
)
def test_bad_launch_flags_are_one_line_too(tmp_path, capsys, flags, error):
    path = write_study(tmp_path / "ok.yaml", BASE)
    assert run(["launch", str(path), "--root", str(tmp_path / "root"), *flags]) == 2
    assert capsys.readouterr().err.startswith(error)
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.stem)
def test_every_shipped_study_dry_runs(tmp_path, capsys, path):
    assert run(["launch", str(path), "--dry-run", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    study = load_study(path)
    points = study_points(study, tmp_path)
    grid_size = len(list(itertools.product(*study.grid.values())))
    assert len(points) == len(study.arms) * grid_size == len({p.directory for p in points})
    assert f"{len(points)} points" in out.splitlines()[0]
    commands = [line for line in out.splitlines() if line.startswith("python run.py ")]
    assert len(commands) == len(points) * len(study.steps)
    for point in points:
        assert f"{point.arm}  " in out and point.name in out
        for step, argv in point_commands(study, point):
            assert f"--trainer.default_root_dir={point.directory}" in argv
            assert argv[-1] == (
                "--ckpt_path=last" if step == "fit" else f"--ckpt_path={point.directory}/checkpoints/last.ckpt"
            )
    assert not any(tmp_path.iterdir()), "a dry run writes nothing"


SWEEP_KEYS = {"name", "description", "program", "method", "project", "parameters", "command"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.stem)
def test_every_shipped_study_is_an_equivalent_wandb_grid_sweep(capsys, path):
    """Each document follows W&B's sweep-config rules (its JSON schema when ``sweeps``, wandb's validator, is
    installed), and ``wandb agent``'s own expansion of it runs exactly the study's commands, point by point."""
    study = load_study(path)
    assert run(["wandb-sweep", str(path)]) == 0
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    assert documents == sweep_documents(study, Path("runs/studies"))
    try:
        import sweeps
    except ImportError:
        sweeps = None
    expected = {}
    for point in study_points(study, Path("runs/studies")):
        expected[point.directory] = [resolved_run(argv) for _, argv in point_commands(study, point)]
    seen = set()
    for document in documents:
        assert set(document) <= SWEEP_KEYS and document["method"] == "grid" and document["program"] == "run.py"
        assert all(isinstance(p["values"], list) and p["values"] for p in document["parameters"].values())
        assert all(isinstance(chunk, str) for chunk in document["command"])
        if sweeps is not None:
            assert sweeps.schema_violations_from_proposed_config(document) == []
        names = list(document["parameters"])
        for values in itertools.product(*(document["parameters"][name]["values"] for name in names)):
            args = dict(zip(names, values, strict=True))
            runs = [resolved_run(argv) for argv in expand_agent_command(document["command"], args)]
            directory = Path(runs[0][2]["trainer.default_root_dir"])
            assert runs == expected[directory], directory
            seen.add(directory)
    assert seen == set(expected), "every point is one run of one sweep"


def test_a_second_owner_is_refused_and_a_stale_lock_taken_over(tmp_path):
    path = tmp_path / "point" / LOCK_FILE
    first, second = PointLock(path), PointLock(path)
    assert first.acquire(owner("job-1")) and first.stale is None
    assert lock_holder(path)["job_id"] == "job-1"
    assert not second.acquire(owner("job-2"), wait_s=0.1)
    assert second.holder["pid"] == os.getpid()
    first.release()
    assert lock_holder(path) is None and path.read_text() == ""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path.write_text(json.dumps({"host": "vm", "pid": int(dead.stdout), "job_id": "killed"}))  # died holding it
    third = PointLock(path)
    assert third.acquire(owner("job-3"), wait_s=0.1)
    assert third.stale["job_id"] == "killed"
    third.release()


def test_status_reads_each_point_from_its_directory(tmp_path):
    study = load_study(
        write_study(tmp_path / "s.yaml", {**BASE, "grid": {"seed_everything": [0, 1]}, "steps": ["fit"]})
    )
    points = {p.label: p for p in study_points(study, tmp_path)}
    write_state(points["a/seed_everything=0"].directory, {"state": "done", "wall_s": 75.0, "job_id": "11"})
    write_state(
        points["b/seed_everything=0"].directory,
        {"state": "failed", "step": "fit", "error": "error: model.k=-1: must be an integer >= 1", "job_id": "12"},
    )
    write_state(points["a/seed_everything=1"].directory, {"state": "running", "step": "fit", "job_id": "13"})
    lock = PointLock(points["b/seed_everything=1"].directory / LOCK_FILE)
    assert lock.acquire(owner("14"))
    try:
        rows = {f"{arm}/{name}": status for arm, name, status in study_status(study, tmp_path)}
    finally:
        lock.release()
    assert rows["a/seed_everything=0"].state == "done" and rows["a/seed_everything=0"].wall_s == 75.0
    assert rows["b/seed_everything=0"].state == "failed"
    assert rows["b/seed_everything=0"].note == "fit: error: model.k=-1: must be an integer >= 1"
    assert rows["a/seed_everything=1"].state == "pending" and "interrupted in fit" in rows["a/seed_everything=1"].note
    assert rows["b/seed_everything=1"].state == "running" and rows["b/seed_everything=1"].job_id == "14"


def synthetic_study(tmp_path: Path) -> tuple[Path, dict]:
    """A scaling study of 2 widths × 3 seeds whose points hold synthetic sweep CSVs: B is worse than A when
    clean (by 0.05 k) but degrades half as fast, so it overtakes A at 0.05 k."""
    study = {
        **BASE,
        "grid": {"model.init_args.k": [1, 4], "seed_everything": [0, 1, 2]},
        "steps": ["fit"],
        "compare": {"a": "a", "b": "b", "group_by": ["model.init_args.k"], "scale": "model.init_args.k", "n_boot": 300},
    }
    path = write_study(tmp_path / "synthetic.yaml", study)
    for point in study_points(load_study(path), tmp_path / "root"):
        k, seed = (int(level.label) for _, level in point.levels)
        shift, slope = (0.0, 2.0) if point.arm == "a" else (0.05 * k, 1.0)
        write_sweep(point.directory / "robustness" / "sweep_fit_epoch000.csv", point.arm, shift, slope, seed)
    return path, study


def test_report_gives_the_numbers_of_run_reports_compare_by_hand(tmp_path, capsys):
    path, _ = synthetic_study(tmp_path)
    assert (
        run(["report", str(path), "--root", str(tmp_path / "root"), "--out", str(tmp_path / "out"), "--no-wandb"]) == 0
    )
    out = capsys.readouterr().out
    for k in (1, 4):
        point = "root/synthetic/{}/k={},seed_everything={}/robustness/sweep_fit_epoch000.csv"
        csvs = {arm: [str(tmp_path / point.format(arm, k, s)) for s in range(3)] for arm in "ab"}
        by_hand = tmp_path / f"by_hand_{k}"
        compare_command.main(["--a", *csvs["a"], "--b", *csvs["b"], "--n-boot", "300", "--out", str(by_hand)])
        assert (tmp_path / f"out/k={k}/crossover.csv").read_text() == (by_hand / "crossover.csv").read_text()
        assert f"python -m run_reports.compare --a {' '.join(csvs['a'])}" in out
    with (tmp_path / "out/report.csv").open() as file:
        records = list(csv.DictReader(file))
    assert [r["group"] for r in records] == ["k=1", "k=4"] and [r["status"] for r in records] == ["crossing"] * 2
    assert [float(r["level"]) for r in records] == pytest.approx([0.05, 0.2], abs=0.01)
    assert [float(r["clean_gap"]) for r in records] == pytest.approx([0.05, 0.2])
    assert (tmp_path / "out/scale_bits_per_byte_en.png").stat().st_size > 0


def test_report_of_a_study_without_comparison_shows_every_points_slope(tmp_path, capsys):
    path = write_study(tmp_path / "slopes.yaml", {**BASE, "grid": {"seed_everything": [0]}, "steps": ["fit"]})
    for point in study_points(load_study(path), tmp_path / "root"):
        slope = point.directory / "robustness" / "robustness_slope.csv"
        slope.parent.mkdir(parents=True)
        last = 0.5 if point.arm == "a" else 0.8
        slope.write_text(f"num_tasks,robustness_slope\n1,1.0\n5,{last}\n")
    assert (
        run(["report", str(path), "--root", str(tmp_path / "root"), "--out", str(tmp_path / "out"), "--no-wandb"]) == 0
    )
    out = capsys.readouterr().out
    assert "a/seed_everything=0: R(1) = 1.000, R(5) = 0.500, ratio 0.50" in out
    assert "b/seed_everything=0: R(1) = 1.000, R(5) = 0.800, ratio 0.80" in out
    assert (tmp_path / "out/slopes.png").is_file()


def test_the_docs_field_tables_are_generated_from_the_declarations():
    page = ROOT / "docs" / "studies.md"
    assert update_reference(page.read_text("utf-8"), resolve) == page.read_text("utf-8"), "python config_reference.py"
