"""The Table-2 command: synthetic sweep CSVs of tasks × {mono, bi} → Markdown / CSV numbers, figure, offline W&B run."""

from __future__ import annotations

import csv
import json

import pytest

from cognitive_reserve import SweepCsvWriter, SweepRow, read_sweep_csv
from cognitive_reserve.intervals import RARE_EVENTS
from cognitive_reserve.stats import LevelSummary, summarize
from run_reports.glue import main
from tests.helpers.wandb_offline import find_runs, read_run_until

pytestmark = pytest.mark.slow  # end to end: every test runs the CLI or a real process

LEVELS = {"random_deletion": [0.0, 0.05, 0.5], "gaussian_noise": [0.0, 0.01]}
MODELS = {  # model name: (num_tasks, metrics in its CSV)
    "gpt2-mono-cola": (1, ["mcc"]),
    "gpt2-bi-cola": (2, ["mcc"]),
    "gpt2-mono-mrpc": (1, ["accuracy", "f1"]),
    "gpt2-bi-mrpc": (2, ["accuracy", "f1"]),
}
TRIALS = 12  # enough for an interval (none below 10 trials), but not at deletion p = 0.05 (it needs 63)


def value(model: str, perturbation: str, level: float, trial: int, metric: str) -> float:
    """A known, distinct number for every cell and trial (f1 far from accuracy, so a mix-up shows)."""
    base = {"mcc": 0.4, "accuracy": 0.8, "f1": 0.1}[metric] + (0.01 if "-bi-" in model else 0.0)
    slope = 0.5 if "-mono-" in model else 0.3
    return base - slope * level + (0.0 if level == 0 else 0.004 * trial * (1 + 10 * level))


def trials(level: float) -> int:
    return 1 if level == 0 else TRIALS


@pytest.fixture(scope="module")
def sweep_csvs(tmp_path_factory):
    """One CSV per fine-tuned model, like runs/glue/<task>-<mono|bi>/robustness/sweep_test_epoch000.csv."""
    root = tmp_path_factory.mktemp("sweeps")
    paths = []
    for model, (num_tasks, metrics) in MODELS.items():
        path = root / model / "sweep_test_epoch000.csv"
        with SweepCsvWriter(path) as writer:
            for perturbation, levels in LEVELS.items():
                for level in levels:
                    for trial in range(trials(level)):
                        for metric in metrics:
                            measured = value(model, perturbation, level, trial, metric)
                            row = (model, num_tasks, perturbation, level, trial, 1000 + trial, metric, measured)
                            writer.write([SweepRow(*row, expected=None, stage="test", epoch=0)])
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def summaries(sweep_csvs) -> dict[tuple, LevelSummary]:
    """Each sweep's own summary (``summarize``), by model, perturbation, level and metric: what the report's
    cells must say."""
    rows = [row for path in sweep_csvs for row in read_sweep_csv(path)]
    return {(s.model, s.perturbation, s.level, s.metric): s for s in summarize(rows)}


@pytest.fixture(scope="module")
def report(sweep_csvs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    main([*map(str, sweep_csvs), "--out", str(out)])
    return out


def test_markdown_table_has_levels_as_rows_and_task_by_pretraining_columns(report, summaries):
    lines = (report / "glue_random_deletion.md").read_text().splitlines()
    assert lines[0].startswith(
        "**Random deletion of the attention weights (probability p).** Mean [95% CI over the trials: bootstrap-t, "
        "clipped to the metric's range; none below 10 trials, nor where too few trials see a rarely damaged unit] "
        "over 12 trials per level (1 where it is deterministic);"
    )
    assert "Matthews correlation: CoLA" in lines[0] and "accuracy: MRPC" in lines[0]
    header = [cell.strip() for cell in lines[2].strip("|").split("|")]
    assert header == ["level", "CoLA mono", "CoLA bi", "MRPC mono", "MRPC bi"]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[4:]]
    assert [row[0] for row in rows] == ["0.00", "0.05", "0.50"]
    columns = [("gpt2-mono-cola", "mcc"), ("gpt2-bi-cola", "mcc"), ("gpt2-mono-mrpc", "accuracy"),
               ("gpt2-bi-mrpc", "accuracy")]  # fmt: skip
    for row, level in zip(rows, LEVELS["random_deletion"], strict=True):
        for cell, (model, metric) in zip(row[1:], columns, strict=True):
            s = summaries[model, "random_deletion", level, metric]
            if level == 0.05:  # every trial too likely misses a weight that matters
                assert s.flag == RARE_EVENTS and cell == f"{s.mean:.3f} (no 95% CI: rare_events, 12 trials)"
            else:
                assert cell == f"{s.mean:.3f} [{s.ci_low:.3f}, {s.ci_high:.3f}]", (model, level)
    assert (report / "glue_gaussian_noise.md").read_text().splitlines()[0].startswith("**Gaussian noise")


def test_csv_table_holds_mean_and_ci_of_each_column(report, summaries):
    with (report / "glue_gaussian_noise.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [float(r["level"]) for r in rows] == LEVELS["gaussian_noise"]
    assert list(rows[0]) == ["level"] + [
        f"{task}_{p}_{metric}_{stat}"
        for task, metric in (("cola", "mcc"), ("mrpc", "accuracy"))
        for p in ("mono", "bi")
        for stat in ("mean", "ci_low", "ci_high", "n")
    ]  # fmt: skip
    for row in rows:
        level = float(row["level"])
        s = summaries["gpt2-bi-mrpc", "gaussian_noise", level, "accuracy"]
        expected = [s.mean, s.ci_low, s.ci_high]
        got = [float(row[f"mrpc_bi_accuracy_{stat}"]) for stat in ("mean", "ci_low", "ci_high")]
        assert (got == pytest.approx(expected, abs=1e-12) and s.ci_low < s.mean < s.ci_high) or level == 0
        assert int(row["mrpc_bi_accuracy_n"]) == trials(level)


def test_figure_is_a_png_with_one_panel_per_perturbation_and_task(report):
    assert (report / "glue_figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def offline_runs(root):
    return [path for path in find_runs(root) if path.parent.name.startswith("offline-run-")]  # not latest-run/


def test_tables_and_figure_are_logged_to_an_offline_wandb_run(report):
    (run_file,) = offline_runs(report)
    key = "glue/random_deletion/table/path"
    (logged,) = [
        row for row in read_run_until(run_file, lambda run: any(key in r for r in run.history)).history if key in row
    ]
    assert logged["glue/figure/_type"] == "image-file"
    assert logged["glue/random_deletion/table/_type"] == "table-file"
    table = json.loads((run_file.parent / "files" / logged["glue/random_deletion/table/path"]).read_text())
    with (report / "glue_random_deletion.csv").open() as file:
        written = list(csv.reader(file))
    assert table["columns"] == written[0]
    logged_cells = [float("nan") if x is None else float(x) for row in table["data"] for x in row]
    written_cells = [float(x) if x else float("nan") for row in written[1:] for x in row]  # no interval: empty
    assert len(table["data"]) == len(written) - 1 and logged_cells == pytest.approx(written_cells, nan_ok=True)
    assert logged["glue/gaussian_noise/table/_type"] == "table-file"
    assert logged["glue/gaussian_noise/markdown/_type"] == "html-file"


@pytest.fixture
def fresh_wandb():
    """wandb keeps its settings (e.g. WANDB_MODE) in a process-wide singleton: reset it, as a new process would."""
    import wandb

    wandb.teardown()
    yield
    wandb.teardown()


def test_without_wandb_credentials_the_report_goes_offline(sweep_csvs, tmp_path, monkeypatch, capsys, fresh_wandb):
    for name in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    main([str(p) for p in sweep_csvs[:2]] + ["--out", str(tmp_path / "out")])
    assert "(offline; upload with: wandb sync " in capsys.readouterr().out
    assert len(offline_runs(tmp_path / "out")) == 1


BAD = {
    "same run twice": (lambda paths, tmp: [paths[0], paths[0]], "error: csv='{0}': repeats gpt2-mono-cola"),
    "model not named <name>-<pretraining>-<task>": (
        lambda paths, tmp: [write_one(tmp, "gpt2-monolingual")],
        "error: csv='{0}': model 'gpt2-monolingual' is not named <name>-<pretraining>-<task> with a GLUE task"),
    "no file": (lambda paths, tmp: [tmp / "none.csv"], "error: csv='{0}': no such file"),
}  # fmt: skip


def write_one(tmp, model):
    path = tmp / "one.csv"
    with SweepCsvWriter(path) as writer:
        writer.write([SweepRow(model, 1, "random_deletion", 0.0, 0, 0, "accuracy", 0.5, None, "test", 0)])
    return path


@pytest.mark.parametrize("case", list(BAD))
def test_bad_csvs_are_one_line_errors(case, sweep_csvs, tmp_path, capsys):
    make, expected = BAD[case]
    paths = make(sweep_csvs, tmp_path)
    with pytest.raises(SystemExit) as info:
        main([*map(str, paths), "--out", str(tmp_path / "out"), "--no-wandb"])
    assert info.value.code == 2
    assert capsys.readouterr().err.strip().startswith(expected.format(*map(str, paths)))
    assert not (tmp_path / "out").exists()
