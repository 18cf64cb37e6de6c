"""W&B panels of a real digits run, read back from its offline run file: curves keyed by the damage
level, a small summary, the end-of-run summary, and the dashboard spec built for every experiment."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from wandb_workspaces.reports.v2 import internal as report_models
from wandb_workspaces.workspaces import Workspace
from wandb_workspaces.workspaces import internal as workspace_models

from cognitive_reserve.io import read_sweep_csv
from cognitive_reserve.sensitivity import sweep_moment
from cognitive_reserve.stats import LevelSummary, area_under_curve, curves, summarize
from lightning_modules import families
from run_outputs.sweeps import first_last_crossovers
from tests.helpers.cli import OFFLINE_ENV, ROOT
from tracking.dashboard import build_report, build_workspace, infer_experiment, sensitivity_section, specs
from tracking.offline_run import OfflineRun, find_runs, read_run
from tracking.panels import CROSSOVER_COLUMNS, curve_rows
from tracking.preview import render, run_curves

DIGITS = ROOT / "configs" / "linear" / "digits.yaml"
SUMMARY_BUDGET = 200  # issue 14: the digits run sends at most this many summary keys


@dataclass
class DigitsRun:
    root: Path
    run: OfflineRun
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> DigitsRun:
    """The quickstart's digits run (all 12 models, full grids), in-process, W&B offline."""
    from run import main

    root = tmp_path_factory.mktemp("digits")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        main(["fit", "--config", str(DIGITS), f"--trainer.default_root_dir={root}"])
    (path,) = find_runs(root)
    return DigitsRun(root, read_run(path), out.getvalue(), err.getvalue())


def fit_summaries(root: Path):
    return summarize(read_sweep_csv(root / "robustness" / "sweep_fit_epoch000.csv"))


@pytest.mark.slow  # the quickstart's digits job end to end, in-process
def test_every_curve_is_a_history_series_keyed_by_its_level(digits):
    run, checked = digits.run, 0
    for (model, perturbation, metric), points in curves(fit_summaries(digits.root)).items():
        x = f"robustness/fit/{perturbation}/level"
        assert run.metrics[x]["summary_none"], x
        for stat in ("mean", "ci_low", "ci_high"):
            key = f"robustness/fit/{model}/{perturbation}/{metric}/{stat}"
            assert run.metrics[key] == {"step_metric": x, "summary_none": True}, key
            logged = run.curve(key, x)  # a level without a finite interval logs its mean only
            assert logged == {
                s.level: pytest.approx(getattr(s, stat)) for s in points if math.isfinite(getattr(s, stat))
            }, key
            checked += 1
    assert checked == 12 * 3 * 3  # models × perturbations × statistics
    assert run.metrics["*"]["step_metric"] == "trainer/global_step"  # Lightning's glob: our exact names win


@pytest.mark.slow  # the quickstart's digits job end to end, in-process
def test_summary_holds_run_level_scalars_only(digits):
    summary = digits.run.summary
    assert len(summary) <= SUMMARY_BUDGET, len(summary)
    assert not [key for key in summary if "@" in key or key.endswith(("/mean", "/ci_low", "/ci_high"))]
    for (model, perturbation, metric), points in curves(fit_summaries(digits.root)).items():
        assert summary[f"robustness/fit/{model}/{perturbation}/{metric}/auc"] == pytest.approx(area_under_curve(points))
        assert summary[f"robustness/fit/{model}/{metric}/clean"] == pytest.approx(points[0].mean)
    assert {f"theory/robustness_slope_T{t}" for t in (1, 2, 10, 20)} <= set(summary)
    # unit-norm task vectors, MSE against c_iᵀx: T = 20 never overtakes T = 1 in the grid
    # (docs/experiments/linear.md), so the cross-over table is logged and no cross-over level is
    assert not [key for key in summary if key.endswith("/crossover")]
    assert "robustness/fit/crossover/_type" in summary


@pytest.mark.slow  # the quickstart's digits job end to end, in-process
def test_the_crossover_table_says_whether_each_crossover_is_identified_and_how(digits):
    (run_dir,) = (digits.root / "wandb").glob("offline-run-*")
    (path,) = (run_dir / "files").glob("media/table/robustness/fit/crossover_*.table.json")
    table = json.loads(path.read_text(encoding="utf-8"))
    assert table["columns"] == list(CROSSOVER_COLUMNS) and {"identified", "method"} <= set(table["columns"])
    rows = [dict(zip(table["columns"], row, strict=True)) for row in table["data"]]
    found = first_last_crossovers(read_sweep_csv(digits.root / "robustness" / "sweep_fit_epoch000.csv"))
    assert [(r["perturbation"], r["identified"], r["method"]) for r in rows] == [
        (c.perturbation, c.identified, c.method) for c in found
    ]
    assert {r["method"] for r in rows} == {"paired t over trials"}  # every level has the trials it needs


@pytest.mark.slow  # the quickstart's digits job end to end, in-process
def test_the_run_ends_with_a_summary_for_people_and_without_our_warnings(digits):
    out = digits.stdout
    assert f"Run finished; outputs under {digits.root}" in out
    assert "sweep      robustness/sweep_fit_epoch000.csv" in out and "checkpoint checkpoints/last.ckpt" in out
    (run_dir,) = (digits.root / "wandb").glob("offline-run-*")
    assert f"wandb sync {run_dir}" in out
    assert re.search(r"R\(T\) \(robustness slope\): T=1 \S+ .* T=20 \S+", out)
    assert (
        "gaussian_noise / mse_task_vector: none in the grid (linear_svd_k4_T20 never better than linear_svd_k4_T1 "
        "up to 0.2)" in out
    )
    assert "anonymous setting" not in digits.stderr
    assert "Run summary" not in digits.stderr + out  # W&B's wall of keys is gone


FAMILIES = families()


@pytest.mark.parametrize("experiment", list(FAMILIES))
def test_dashboard_spec_of_every_experiment_validates(experiment):
    workspace = build_workspace("someone", "cognitive-reserve", f"{experiment}-x", FAMILIES[experiment])
    spec = specs(workspace, build_report("someone", "cognitive-reserve", f"{experiment}-x", workspace))
    view = workspace_models.View.model_validate(spec["workspace"])
    report_models.ReportViewspec.model_validate(spec["report"])
    reloaded = Workspace._from_model(view)
    assert [s.name for s in reloaded.sections] == [s.name for s in workspace.sections]
    names = [s.name for s in workspace.sections]
    assert "Sensitivity over training" in names and "Spectral norms (σ_max over steps)" in names
    assert ("Table 2 (GLUE)" in names) == (experiment == "glue")
    filters = json.dumps(spec["workspace"]["spec"]["section"]["runSets"][0]["filters"])
    assert f'"value": "{experiment}-x"' in filters


@pytest.mark.parametrize("experiment", ["linear", "gpt2"])
def test_dashboard_of_a_study_shows_its_report_first(experiment):
    """``--study``: the keys ``python -m studies report`` logs (``studies.report``), in the first section."""
    workspace = build_workspace("someone", "p", "digits_examples_per_task", FAMILIES[experiment], study=True)
    spec = specs(workspace, build_report("someone", "p", "digits_examples_per_task", workspace))
    workspace_models.View.model_validate(spec["workspace"])
    first = workspace.sections[0]
    assert first.name == "Study report"
    tables = {p.table_name for p in first.panels if hasattr(p, "table_name")}
    media = {key for p in first.panels for key in getattr(p, "media_keys", None) or []}
    assert "study/report/table" in tables and ("study/slopes/table" in tables) == (experiment == "linear")
    assert {f"study/scale/{metric}" for metric in FAMILIES[experiment].metrics} <= media
    assert infer_experiment("digits_examples_per_task").name == "linear"
    assert infer_experiment("gpt2_scaling").name == "gpt2"
    with pytest.raises(SystemExit, match="--group=rnn-x: no model family's groups start so"):
        infer_experiment("rnn-x")


@pytest.mark.slow  # the quickstart's digits job end to end, in-process
def test_dashboard_curve_panels_find_the_keys_a_run_logs(digits):
    logged = digits.run.logged_keys()
    section = next(s for s in build_workspace("e", "p", None, FAMILIES["linear"]).sections if "(fit)" in s.name)
    plots = [p for p in section.panels if getattr(p, "metric_regex", None)]
    assert len(plots) == 6  # two metrics (mse_task_vector, mse_label) × three perturbations
    assert not [key for key in logged if "/mse_label/" in key]  # this run measures against c_iᵀx only
    for plot in [p for p in plots if "mse_task_vector" in p.metric_regex]:
        assert plot.x in logged
        matched = {key for key in logged if re.search(plot.metric_regex, key)}
        assert len(matched) == 12 * 3, plot.title  # every model's mean and CI bounds


@pytest.mark.slow
def test_dashboard_command_writes_the_specs_without_network(documented_chains):
    """The manual's `python -m tracking.dashboard ... --group gpt2-tiny --dry-run dash.json`, run as written."""
    out = documented_chains.folder / "dash.json"
    spec = json.loads(out.read_text())
    workspace_models.View.model_validate(spec["workspace"])
    assert "σ_max of Q per block" in out.read_text()
    unknown = dashboard("--entity", "e", "--project", "p", "--group", "mystery")
    assert unknown.returncode != 0 and "--group=mystery" in unknown.stderr


def dashboard(*args: object) -> subprocess.CompletedProcess:
    """``python -m tracking.dashboard ARGS`` in a fresh interpreter, offline."""
    return subprocess.run(
        [sys.executable, "-m", "tracking.dashboard", *map(str, args)],
        cwd=ROOT, env={**os.environ, **OFFLINE_ENV}, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def test_per_epoch_panels_find_the_per_epoch_curve_keys():
    """Stage ``train``: every sweep is its own series (named by epoch, or epoch and step where a run validates
    several times per epoch), all found by the sensitivity section's curve panels."""
    cells = [
        LevelSummary("m", 2, "random_deletion", level, "mse_task_vector", 5, 0, mean, 0.1, mean - 0.1, mean + 0.1, None)
        for level, mean in ((0.0, 0.2), (0.5, 0.6))
    ]
    keys: set[str] = set()
    for moment in (sweep_moment(0), sweep_moment(1), sweep_moment(2, 100), sweep_moment(2, 200)):
        step_metrics, rows = curve_rows("train", cells, moment)
        assert set(step_metrics.values()) == {"robustness/train/random_deletion/level"}
        assert [row["robustness/train/random_deletion/level"] for row in rows] == [0.0, 0.5]
        keys |= set(step_metrics)
    section = sensitivity_section(FAMILIES["linear"])
    (panel,) = [
        p
        for p in section.panels
        if (getattr(p, "title", None) or "") == "train: mse_task_vector against deletion probability p, per epoch"
    ]
    assert panel.title_x == "deletion probability p"  # random deletion's declared level_label
    assert {key for key in keys if re.search(panel.metric_regex, key)} == keys
    assert "robustness/train/m/random_deletion/mse_task_vector/epoch001/mean" in keys
    assert "robustness/train/m/random_deletion/mse_task_vector/epoch002_step000200/mean" in keys and len(keys) == 4 * 3


@pytest.mark.slow  # the quickstart's digits job end to end, in-process
def test_preview_draws_the_panel_data_of_an_offline_run(digits, tmp_path):
    drawn = run_curves(digits.run, "fit", "random_deletion", "mse_task_vector")
    expected = curves(fit_summaries(digits.root))
    assert len(drawn) == 12
    for model, points in drawn.items():
        cells = expected[(model, "random_deletion", "mse_task_vector")]
        assert points == [pytest.approx((s.level, s.mean, s.ci_low, s.ci_high), nan_ok=True) for s in cells]
    assert all(math.isfinite(s.ci_low) for points in expected.values() for s in points)  # a band at every level
    figure = render([digits.run], tmp_path / "panels.png", "fit", "mse_task_vector")
    assert figure.read_bytes()[:4] == b"\x89PNG"


def test_preview_leaves_no_band_where_a_level_logged_none(tmp_path):
    """A level without an honest interval logs its mean only (``tracking.panels``); the preview draws its point with
    NaN ends instead of failing on the missing band (it raised ``KeyError`` on fewer than 10 trials)."""
    key = "robustness/fit/m/random_deletion/loss/{}"
    level = "robustness/fit/random_deletion/level"
    run = OfflineRun(history=[
        {level: 0.0, key.format("mean"): 1.0, key.format("ci_low"): 1.0, key.format("ci_high"): 1.0},
        {level: 0.5, key.format("mean"): 2.0},
    ])  # fmt: skip
    ((model, points),) = run_curves(run, "fit", "random_deletion", "loss").items()
    assert model == "m" and points[0] == (0.0, 1.0, 1.0, 1.0)
    assert points[1][:2] == (0.5, 2.0) and all(math.isnan(end) for end in points[1][2:])
    assert render([run], tmp_path / "panels.png", "fit", "loss").read_bytes()[:4] == b"\x89PNG"
