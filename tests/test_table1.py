"""The Table 1 command: real tiny GPT-2 fits' weight-norm monitors → Σw² per block, CSV, Markdown, W&B; edge cases."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest

from callbacks.weight_norms import WeightNorms
from run_reports.table1 import CSV_COLUMNS, main
from tests.helpers.cli import OFFLINE_ENV, ROOT
from tests.helpers.tiny_gpt2 import CountingSequences, TinyGPT2
from tests.helpers.wandb_offline import find_runs, read_run_until


def attention_sum_sq(model: TinyGPT2) -> dict[str, float]:
    """Σw² of every block's attention weights and biases, and the total, straight from the parameters."""
    sums: dict[str, float] = {}
    for name, param in model.model.named_parameters():
        if ".attn." in name:
            block = name.split(".attn.")[0].removeprefix("transformer.")
            sums[block] = sums.get(block, 0.0) + param.detach().double().pow(2).sum().item()
    return {**sums, "total": sum(sums.values())}


class SumsBySteps(L.Callback):
    """Σw² after every optimizer step, computed independently of the WeightNorms callback."""

    def __init__(self) -> None:
        self.by_step: dict[int, dict[str, float]] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.by_step[trainer.global_step] = attention_sum_sq(pl_module)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two real tiny fits (6 optimizer steps each, different learning rates), as run directories."""
    root = tmp_path_factory.mktemp("table1_runs")
    made = {}
    for name, lr in (("mono", 3e-3), ("bi", 1e-3)):
        probe = SumsBySteps()
        trainer = L.Trainer(
            max_epochs=1, default_root_dir=root / name, logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, callbacks=[WeightNorms(every_n_steps=2), probe],
        )  # fmt: skip
        L.seed_everything(0)
        trainer.fit(TinyGPT2(lr=lr), datamodule=CountingSequences())
        made[name] = (root / name, probe.by_step, trainer.global_step)
    return made


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as file:
        return list(csv.DictReader(file))


def test_end_of_training_table_equals_the_trained_weights_and_is_logged_to_wandb(runs, tmp_path):
    out = tmp_path / "table"
    main(["--label", f"mono={runs['mono'][0]}", "--label", f"bi={runs['bi'][0]}", "--out", str(out)])

    rows = read_csv(out / "table1.csv")
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [(r["run"], r["layer"]) for r in rows] == [(run, layer) for run in ("mono", "bi")
                                                      for layer in ("h.0", "h.1", "total")]  # fmt: skip
    for row in rows:
        _, by_step, last = runs[row["run"]]
        assert int(row["step"]) == last == 6
        assert float(row["sum_sq"]) == pytest.approx(by_step[last][row["layer"]], rel=1e-12)

    lines = (out / "table1.md").read_text().splitlines()
    assert lines[0].startswith("**Sum of squared attention weights (Σw²) per block and in total** — mono step 6")
    assert lines[2] == "| layer | mono | bi | bi / mono |"
    final = {name: runs[name][1][6] for name in ("mono", "bi")}
    assert lines[6] == (
        f"| total | {final['mono']['total']:.3f} | {final['bi']['total']:.3f} | "
        f"{final['bi']['total'] / final['mono']['total']:.3f} |"
    )

    (run_file,) = [p for p in find_runs(out) if p.parent.name.startswith("offline-run-")]
    (logged,) = logged_rows(run_file, "table1/table/_type")
    assert logged["table1/table/_type"] == "table-file" and logged["table1/markdown/_type"] == "html-file"
    table = json.loads((run_file.parent / "files" / logged["table1/table/path"]).read_text())
    assert table["columns"] == list(CSV_COLUMNS)
    assert [[str(cell) for cell in row] for row in table["data"]] == [list(row.values()) for row in rows]


def logged_rows(run_file: Path, key: str) -> list[dict]:
    """History rows with ``key`` (re-read while the W&B service may still be flushing the file)."""
    run = read_run_until(run_file, lambda run: any(key in row for row in run.history))
    return [row for row in run.history if key in row]


def test_a_chosen_step_and_positional_runs_named_after_their_directory(runs, tmp_path):
    main([str(runs["mono"][0]), str(runs["bi"][0]), "--step", "2", "--out", str(tmp_path), "--no-wandb"])
    rows = read_csv(tmp_path / "table1.csv")
    assert {r["run"] for r in rows} == {"mono", "bi"} and {r["step"] for r in rows} == {"2"}
    for row in rows:
        assert float(row["sum_sq"]) == pytest.approx(runs[row["run"]][1][2][row["layer"]], rel=1e-12)
    assert not find_runs(tmp_path)


def write_norms(run_dir: Path, values: dict[str, float], steps=(0, 10)) -> Path:
    path = run_dir / "monitors" / "weight_norms.csv"
    path.parent.mkdir(parents=True)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["step", "epoch", "name", "quantity", "value"])
        for step in steps:
            writer.writerows([step, step // 10, name, "sum_sq", value + step] for name, value in values.items())
    return path


def test_blocks_in_natural_order_and_missing_blocks_marked(tmp_path, capsys):
    deep = {f"h.{i}": float(i) for i in (10, 2, 1)}
    write_norms(tmp_path / "deep", {**deep, "total": sum(deep.values())})
    write_norms(tmp_path / "shallow", {"h.1": 5.0, "total": 5.0})
    write_norms(tmp_path / "third", {"h.1": 1.0, "total": 1.0})
    main([str(tmp_path / d) for d in ("deep", "shallow", "third")] + ["--out", str(tmp_path / "out"), "--no-wandb"])
    lines = (tmp_path / "out" / "table1.md").read_text().splitlines()
    assert lines[2] == "| layer | deep | shallow | third |"  # no ratio column for three runs
    assert [line.split(" | ")[0] for line in lines[4:]] == ["| h.1", "| h.2", "| h.10", "| total"]
    assert lines[5] == "| h.2 | 12.000 | – | – |"  # last step: value + 10
    assert "wrote" in capsys.readouterr().out


BAD = {
    "no monitors": (lambda tmp: [str(tmp / "empty")], "error: run='{tmp}/empty': has no monitors/weight_norms.csv"),
    "label without =": (lambda tmp: ["--label", "mono"], "error: label='mono': expected NAME=DIR"),
    "same name twice": (lambda tmp: [str(tmp / "a" / "run"), str(tmp / "b" / "run")],
                        "error: label='run': names two runs: set distinct names with --label NAME=DIR"),
    "step not logged": (lambda tmp: [str(tmp / "a" / "run"), "--step", "7"],
                        "error: step=7: run 'run' has no weight norms at this step (nearest logged: [0, 10])"),
    "negative step": (lambda tmp: [str(tmp / "a" / "run"), "--step", "-1"], "error: step=-1: must be >= 0"),
    "no runs": (lambda tmp: [], "error: runs=[]: give at least one run directory"),
    "not a history": (lambda tmp: [str(tmp / "sweep.csv")], "error: run='{tmp}/sweep.csv': not a monitor history CSV"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_a_one_line_error(case, tmp_path, capsys):
    write_norms(tmp_path / "a" / "run", {"h.0": 1.0, "total": 1.0})
    write_norms(tmp_path / "b" / "run", {"h.0": 2.0, "total": 2.0})
    (tmp_path / "empty").mkdir()
    (tmp_path / "sweep.csv").write_text("model,level\nx,0\n")
    make, expected = BAD[case]
    with pytest.raises(SystemExit) as info:
        main([*make(tmp_path), "--out", str(tmp_path / "out"), "--no-wandb"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(expected.format(tmp=tmp_path)), err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_command_end_to_end_in_a_subprocess(tmp_path):
    write_norms(tmp_path / "mono", {"h.0": 4.0, "total": 4.0})
    write_norms(tmp_path / "bi", {"h.0": 3.0, "total": 3.0})
    command = [sys.executable, "-m", "run_reports.table1", str(tmp_path / "mono"), str(tmp_path / "bi"), "--no-wandb"]
    done = subprocess.run([*command, "--out", str(tmp_path / "out")], cwd=ROOT, env={**os.environ, **OFFLINE_ENV},
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "| total | 14.000 | 13.000 | 0.929 |" in done.stdout
    failed = subprocess.run([*command, "--step", "5", "--out", str(tmp_path / "out")], cwd=ROOT,
                            env={**os.environ, **OFFLINE_ENV}, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert failed.returncode == 2
    assert failed.stderr.strip().splitlines() == [
        "error: step=5: run 'mono' has no weight norms at this step (nearest logged: [0, 10])"
    ]
