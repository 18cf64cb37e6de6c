"""Studies without training: the study file's one-line errors, every shipped study's dry run and W&B sweeps,
the point lock, ``status`` from recorded states, and ``report`` against ``run_reports.compare`` by hand.

The real launches (processes, kills, concurrent launchers) are in ``test_studies_launch.py``.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg

from cognitive_reserve.fields import update_reference
from config_reference import resolve
from run_reports import compare as compare_command
from studies.__main__ import run
from studies.lock import PointLock, lock_holder, owner
from studies.points import point_commands, study_points
from studies.report import scale_figure
from studies.spec import load_study
from studies.state import LOCK_FILE, write_state
from studies.status import study_status
from studies.wandb_sweep import sweep_documents
from tests.helpers.cli import ROOT
from tests.helpers.study_fixtures import SHIPPED, expand_agent_command, resolved_run, write_study, write_sweep

DIGITS = "configs/linear/digits.yaml"
BASE = {"arms": {"a": {"config": DIGITS}, "b": {"config": DIGITS, "overrides": {"model.init_args.k": 2}}}}


def documented_point_counts() -> dict[str, int]:
    """The docs' table of shipped studies: ``{file: points}``, the points read from ``3 widths × 3 seeds × mono/bi``
    (a number per axis, the arms named with slashes)."""
    table = (ROOT / "docs" / "studies.md").read_text("utf-8").split("## Shipped studies")[1].split("\n\n")[1]
    counts = {}
    for row in table.splitlines()[2:]:
        name, points = (cell.strip() for cell in row.strip("|").split("|")[:2])
        factors = [len(part.split("/")) if "/" in part else int(part.split()[0]) for part in points.split("×")]
        counts[name.strip("`")] = int(np.prod(factors))
    return counts


def test_the_docs_table_lists_every_shipped_study_with_its_number_of_points():
    counts = {path.name: len(study_points(load_study(path), Path("runs/studies"))) for path in SHIPPED}
    assert documented_point_counts() == counts


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"grid": {"seed_everything": []}}, "study.grid.seed_everything=[]: must list at least one value"),
        ({"grid": {"seed_everything": [0, 0]}}, "study.grid.seed_everything=[0, 0]: '0' is listed twice"),
        ({"grid": {"seed everything": [0]}}, "study.grid.seed everything='seed everything': not a dotted config key"),
        ({"grid": {"data.init_args.root": ["a/b"]}}, "study.grid.data.init_args.root='a/b': cannot name a directory"),
        (
            {"grdi": {}},
            "study.grdi={}: not a field (did you mean grid? fields: name, arms, grid, steps, overrides, compare, "
            "executor, caption)",
        ),
        ({"executor": {"timeout_min": 1, "signal_delay_s": 60}}, "study.executor.signal_delay_s=60: must be below"),
        ({"executor": {"max_requeues": -1}}, "study.executor.max_requeues=-1: must be an integer >= 0"),
        ({"arms": {}}, "study.arms={}: must map at least one arm name"),
        ({"arms": {"a": {"config": "nope.yaml"}}}, "study.arms.a.config='nope.yaml': no such config file"),
        ({"arms": {"a": {}}}, "study.arms.a.config=None: required"),
        ({"steps": ["test"]}, "study.steps=['test']: must be [fit] or [fit, test]"),
        ({"compare": {"a": "a", "b": "c"}}, "study.compare.b='c': not an arm (arms: a, b)"),
        ({"compare": {"a": "a", "b": "b", "confidence": 1.5}}, "study.compare.confidence=1.5: must be < 1"),
        ({"compare": {"a": "a", "b": "b", "n_boot": 300}}, "study.compare.n_boot=300: not a field (fields: a, b, "),
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


def test_a_misspelt_field_is_named_with_a_suggestion_and_a_short_value(tmp_path, capsys):
    arms = {name: {"config": DIGITS, "overrides": {"model.init_args.k": k}} for name, k in (("one", 1), ("two", 2))}
    path = write_study(tmp_path / "misspelt.yaml", {"arm": arms})
    assert run(["launch", str(path), "--root", str(tmp_path / "root")]) == 2
    err = capsys.readouterr().err
    shown = "{'one': {'config': 'configs/linear/digits.yaml', 'overrides…"  # the value, cut short
    assert err.startswith(f"error: study.arm={shown}: not a field (")
    assert "did you mean arms?" in err and err.count("\n") == 1 and len(err) < 250, err


def test_a_study_file_that_is_not_yaml_names_the_line_and_column(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("arms:\n  a:\n    config: [configs/linear/digits.yaml\ngrid: {}\n")
    assert run(["status", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: study='{path}': not valid YAML: ") and "(line 4, column 5)" in err, err
    assert err.count("\n") == 1


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


def test_a_dry_run_names_the_executor_it_was_asked_for(tmp_path, capsys):
    path = write_study(tmp_path / "ok.yaml", BASE)
    assert run(["launch", str(path), "--dry-run", "--executor", "local", "--root", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "executor: local (--executor local)"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.stem)
def test_every_shipped_study_dry_runs(tmp_path, capsys, path):
    assert run(["launch", str(path), "--dry-run", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    study = load_study(path)
    points = study_points(study, tmp_path)
    grid_size = len(list(itertools.product(*study.grid.values())))
    assert len(points) == len(study.arms) * grid_size == len({p.directory for p in points})
    assert f"{len(points)} points" in out.splitlines()[0]
    sbatch = shutil.which("sbatch") if shutil.which("srun") else None
    picked = f"slurm (auto: sbatch on PATH ({sbatch}))" if sbatch else "local (auto: no sbatch on PATH)"
    assert out.splitlines()[1] == f"executor: {picked}"  # what `auto` would pick, and why
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
    """Without a cluster to ask, each row comes from what the point's job recorded (and its lock)."""
    study = load_study(write_study(tmp_path / "s.yaml", {**BASE, "grid": {"seed_everything": [0, 1, 2, 3]}}))
    points = {p.label: p for p in study_points(study, tmp_path)}
    recorded = {
        "a/seed_everything=0": {"state": "done", "wall_s": 75.0, "job_id": "11"},
        "b/seed_everything=0": {"state": "failed", "step": "fit", "error": "error: model.k=-1: must be an integer >= 1"},  # noqa: E501
        "a/seed_everything=1": {"state": "running", "step": "test", "job_id": "13"},  # its job died without a word
        "a/seed_everything=2": {"state": "interrupted", "step": "fit", "slurm_state": "CANCELLED", "requeues": 2,
                                "error": "stopped by SIGTERM at step 40: saved ...; launch again to continue it"},
        "b/seed_everything=2": {"state": "requeued", "step": "fit", "requeues": 3, "error": "stopped by SIGUSR2"},
        "a/seed_everything=3": {"state": "failed", "step": "fit", "requeues": 4,
                                "error": "stopped after 4 requeues (executor.max_requeues=4): raise timeout_min"},
    }  # fmt: skip
    for label, state in recorded.items():
        write_state(points[label].directory, state)
    lock = PointLock(points["b/seed_everything=1"].directory / LOCK_FILE)
    assert lock.acquire(owner("14"))
    try:
        rows = {f"{row.arm}/{row.point}": row for row in study_status(study, tmp_path)}
    finally:
        lock.release()
    states = {label: (row.state, row.requeues) for label, row in rows.items()}
    assert states == {
        "a/seed_everything=0": ("done", 0), "b/seed_everything=0": ("failed", 0),
        "a/seed_everything=1": ("lost", 0), "b/seed_everything=1": ("running", 0),
        "a/seed_everything=2": ("cancelled", 2), "b/seed_everything=2": ("requeued", 3),
        "a/seed_everything=3": ("failed", 4), "b/seed_everything=3": ("pending", 0),
    }  # fmt: skip
    assert rows["a/seed_everything=0"].wall_s == 75.0 and rows["b/seed_everything=1"].job_id == "14"
    log = points["b/seed_everything=0"].directory / "study" / "fit.log"
    assert rows["b/seed_everything=0"].note == f"fit: error: model.k=-1: must be an integer >= 1 (log: {log})"
    assert rows["a/seed_everything=1"].note.startswith("its job ended without a word in test (killed")
    assert rows["a/seed_everything=2"].note.startswith("job CANCELLED: stopped by SIGTERM at step 40")
    assert "stopped after 4 requeues (executor.max_requeues=4)" in rows["a/seed_everything=3"].note


def synthetic_study(tmp_path: Path, axis: str = "model.init_args.k", values=(1, 4), **compare) -> tuple[Path, dict]:
    """A study of 2 values of ``axis`` × 3 seeds whose points hold synthetic sweep CSVs: B is worse than A when
    clean (by 0.05 × the value's place, 1 and 4) but degrades half as fast, so it overtakes A at 0.05 and 0.2."""
    study = {
        **BASE,
        "grid": {axis: list(values), "seed_everything": [0, 1, 2]},
        "steps": ["fit"],
        "compare": {"a": "a", "b": "b", "group_by": [axis], "scale": axis, **compare},
    }
    path = write_study(tmp_path / "synthetic.yaml", study)
    for point in study_points(load_study(path), tmp_path / "root"):
        value, seed = (level.label for _, level in point.levels)
        k = (1, 4)[[str(v) for v in values].index(value)]
        shift, slope = (0.0, 2.0) if point.arm == "a" else (0.05 * k, 1.0)
        write_sweep(point.directory / "robustness" / "sweep_fit_epoch000.csv", point.arm, shift, slope, int(seed))
    return path, study


def report_records(path: Path) -> list[dict]:
    """``report.csv`` read back with its numbers as numbers (what ``scale_figure`` draws from)."""
    with path.open() as file:
        records = list(csv.DictReader(file))
    text = ("group", "x_label", "perturbation", "metric", "status", "method", "identified")
    return [{k: (v if k in text else float(v) if v else None) for k, v in r.items()} for r in records]


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
        compare_command.main(["--a", *csvs["a"], "--b", *csvs["b"], "--paired-seeds", "--out", str(by_hand)])
        assert (tmp_path / f"out/k={k}/crossover.csv").read_text() == (by_hand / "crossover.csv").read_text()
        assert f"python -m run_reports.compare --a {' '.join(csvs['a'])}" in out
    assert out.count("--confidence 0.95 --paired-seeds --out") == 2  # a crossed grid: the seeds pair up
    records = report_records(tmp_path / "out/report.csv")
    assert [r["group"] for r in records] == ["k=1", "k=4"] and [r["status"] for r in records] == ["crossing"] * 2
    assert [r["level"] for r in records] == pytest.approx([0.05, 0.2], abs=0.01)
    assert [r["clean_gap"] for r in records] == pytest.approx([0.05, 0.2])
    assert [(r["x"], r["x_label"]) for r in records] == [(1.0, "1"), (4.0, "4")]
    assert {r["method"] for r in records} == {"paired t over 3 training seeds, shared trials"}
    assert (tmp_path / "out/scale_bits_per_byte_en.png").stat().st_size > 0


def test_any_grid_axis_can_be_the_scale_with_its_label(tmp_path):
    """A non-numeric axis (a solver) drawn in grid order, labelled with ``scale_label`` and its values."""
    path, _ = synthetic_study(tmp_path, "model.init_args.solver", ("svd", "sgd"), scale_label="solver of the fit")
    study = load_study(path)
    assert (
        run(["report", str(path), "--root", str(tmp_path / "root"), "--out", str(tmp_path / "out"), "--no-wandb"]) == 0
    )
    records = report_records(tmp_path / "out/report.csv")
    assert [(r["group"], r["x"], r["x_label"]) for r in records] == [
        ("solver=svd", None, "svd"),
        ("solver=sgd", None, "sgd"),
    ]
    fig = scale_figure(records, "bits_per_byte_en", study)
    for ax in fig.axes:
        assert ax.get_xlabel() == "solver of the fit"
        assert [t.get_text() for t in ax.get_xticklabels()] == ["svd", "sgd"]
        assert list(ax.get_xticks()) == [0, 1]


def crafted_records() -> list[dict]:
    """Three widths, two perturbations: a bounded cross-over, one open above, none, and one not identified."""
    base = {
        "metric": "bits_per_byte_en",
        "grid_low": 0.0,
        "grid_high": 0.4,
        "method": "Welch t over 3 + 3 training seeds",
    }
    cases = {
        32: [("crossing", 0.2, 0.15, 0.25), ("none", None, math.inf, math.inf)],
        64: [("crossing", 0.3, 0.2, math.inf), ("none", None, 0.3, math.inf)],
        128: [("crossing", 0.1, -math.inf, math.inf), ("b_better_from_start", None, -math.inf, -math.inf)],
    }
    records = []
    for width, rows in cases.items():
        for perturbation, (status, level, low, high) in zip(("random_deletion", "gaussian_noise"), rows, strict=True):
            records.append({
                **base, "group": f"n_embd={width}", "x": float(width), "x_label": str(width),
                "perturbation": perturbation, "status": status, "level": level, "ci_low": low, "ci_high": high,
                "clean_gap": 0.2, "clean_gap_low": 0.1, "clean_gap_high": 0.3,
            })  # fmt: skip
    return records


def test_scale_figure_has_one_clean_gap_panel_readable_labels_and_says_none_in_words(tmp_path):
    axis = "model.init_args.gpt2_config.n_embd"
    path, _ = synthetic_study(tmp_path, axis, (32, 64))
    study = load_study(path)
    fig = scale_figure(crafted_records(), "bits_per_byte_en", study)
    clean, deletion, noise = fig.axes  # one clean-gap panel, one panel per perturbation
    assert clean.get_title() == "undamaged: clean gap" and deletion.get_title() == "cross-over: random deletion"
    assert {ax.get_xlabel() for ax in fig.axes} == {"n_embd"}  # the axis' name, not its dotted key
    assert [t.get_text() for t in deletion.get_xticklabels()] == ["32", "64", "128"]
    words = {ax.get_title(): sorted(t.get_text() for t in ax.texts) for ax in (deletion, noise)}
    assert words == {
        "cross-over: random deletion": ["not identified"],
        "cross-over: gaussian noise": ["none: b better throughout", "none: b never better"],
    }
    # nothing is drawn at the top of the grid for "none": the grid's top is an arrow only where an interval is open
    assert deletion.get_ylim() == pytest.approx((-0.02, 0.42))
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    for left, right in itertools.pairwise(fig.axes):
        label = right.yaxis.label.get_window_extent(renderer)
        assert label.x0 >= left.get_tightbbox(renderer).x1, f"{right.get_ylabel()!r} overlaps the panel on its left"


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
