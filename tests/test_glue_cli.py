"""GLUE fine-tuning through the CLI: tiny GPT-2 from an LM checkpoint / HF directory, sweeps, configs, errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml

from cognitive_reserve import CSV_COLUMNS, read_sweep_csv
from datamodules.glue import GlueDataModule
from datamodules.glue_sample import write_glue_sample
from datamodules.glue_tasks import GLUE_TASKS
from lightning_modules.gpt2_glue import GPT2GlueClassifier
from tests.helpers.cli import ROOT
from tests.helpers.glue_fixtures import save_hf_model, save_lm_checkpoint, write_hub_layout
from tests.helpers.wandb_offline import find_runs, read_run

pytestmark = pytest.mark.slow  # end to end: every test runs the CLI or a real process

TINY = ROOT / "configs" / "glue" / "tiny.yaml"
PAPER_GRIDS = {
    "random_deletion": {"levels": [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45], "trials": 20},
    "gaussian_noise": {"levels": [0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09], "trials": 20},
}


@pytest.fixture(scope="module")
def pieces(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("glue")
    sst2 = write_glue_sample(root / "data", "sst2")
    return {
        "root": root,
        "lm": save_lm_checkpoint(root / "lm" / "last.ckpt", seed=1),
        "hf": save_hf_model(root / "hf", seed=2),
        "hub": write_hub_layout(root / "hub", "mrpc", train=96, validation=48),
        "sst2_train": sst2["train"],
        "sst2_validation": sst2["validation"],
    }


def sst2_args(pieces: dict[str, Path], out: Path) -> list[str]:
    return [
        "--config", str(TINY), "--model.init_from", str(pieces["lm"]),
        "--data.data_files.train", str(pieces["sst2_train"]),
        "--data.data_files.validation", str(pieces["sst2_validation"]),
        "--data.cache_dir", str(pieces["root"] / "cache"), "--trainer.default_root_dir", str(out),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def sst2_fit(documented_chains) -> Path:
    """The manual's tiny GLUE chain, run as written in a fresh folder: `python -m datamodules.glue_sample ...`, then
    `python run.py fit --config configs/glue/tiny.yaml` (from the tiny monolingual LM of the GPT-2 chain) and
    `python run.py test ... --ckpt_path runs/glue/tiny-sst2-mono/checkpoints/last.ckpt`, each in a real process."""
    return documented_chains.folder / "runs" / "glue" / "tiny-sst2-mono"


def run_logging(run_dir: Path, key: str):
    """The one offline W&B run under ``run_dir`` that logged ``key`` (the fit's run or the test's)."""
    (run,) = [run for run in map(read_run, find_runs(run_dir)) if run.series(key)]
    return run


def predictions(model: GPT2GlueClassifier, datamodule: GlueDataModule) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted and true labels of the whole validation split."""
    datamodule.use_tokenizer(model.tokenizer)
    datamodule.setup("fit")
    predicted, labels = [], []
    model.eval()
    with torch.no_grad():
        for batch in datamodule.val_dataloader():
            predicted.append(model(batch["input_ids"], batch["attention_mask"]).argmax(-1))
            labels.append(batch["labels"])
    return torch.cat(predicted), torch.cat(labels)


def test_single_sentence_task_fine_tunes_end_to_end_and_logs_val_metrics_every_epoch(sst2_fit, documented_chains):
    assert (sst2_fit / "checkpoints" / "last.ckpt").is_file()
    run = run_logging(sst2_fit, "val/accuracy")
    accuracy = run.series("val/accuracy")
    epochs = yaml.safe_load(TINY.read_text())["trainer"]["max_epochs"]
    assert len(accuracy) == epochs  # every validation epoch
    assert accuracy[-1] >= 0.9 > accuracy[0] - 0.3  # it learns the synthetic task from the tiny LM
    assert run.config["config"]["model"]["init_args"]["init_from"] == "runs/gpt2/tiny_monolingual/checkpoints/last.ckpt"
    fit = documented_chains.of("run.py fit --config configs/glue/tiny.yaml")
    sweeps = sorted(Path(p).name for p in fit.created if re.fullmatch(r".*/robustness/sweep_\w+_epoch\d{3}\.csv", p))
    assert sweeps == [f"sweep_train_epoch{e:03d}.csv" for e in range(epochs)]  # per-epoch only; the full one in `test`


def test_test_stage_runs_the_sweep_with_the_csv_contract_and_hand_checked_metric(
    sst2_fit, documented_chains, monkeypatch
):
    ckpt = sst2_fit / "checkpoints" / "last.ckpt"
    epochs = yaml.safe_load(TINY.read_text())["trainer"]["max_epochs"]
    path = sst2_fit / "robustness" / f"sweep_test_epoch{epochs - 1:03d}.csv"  # named after the checkpoint's epoch
    rows = read_sweep_csv(path)
    assert {r.epoch for r in rows} == {epochs - 1}
    header = path.read_text().splitlines()[0]
    assert tuple(header.split(",")) == CSV_COLUMNS
    assert {(r.model, r.num_tasks, r.metric, r.stage) for r in rows} == {("gpt2-mono-sst2", 1, "accuracy", "test")}
    grid = yaml.safe_load(TINY.read_text())["trainer"]["callbacks"][1]["init_args"]["perturbations"]
    for perturbation, spec in grid.items():
        for level in spec["levels"]:
            trials = [r for r in rows if r.perturbation == perturbation and r.level == level]
            assert len(trials) == (1 if level == 0 else spec["trials"])
    monkeypatch.chdir(documented_chains.folder)  # the checkpoint names its LM relative to the clone, as a user runs it
    model = GPT2GlueClassifier.load_from_checkpoint(ckpt)
    data = documented_chains.folder / "data" / "glue_tiny" / "sst2"
    files = {"train": str(data / "train.jsonl"), "validation": str(data / "validation.jsonl")}
    predicted, labels = predictions(model, GlueDataModule("sst2", data_files=files, max_length=64))
    by_hand = float((predicted == labels).double().mean())
    assert run_logging(sst2_fit, "test/accuracy").series("test/accuracy")[-1] == pytest.approx(by_hand)
    undamaged = [r.value for r in rows if r.level == 0.0]
    assert undamaged == [pytest.approx(by_hand)] * 2
    heavy = [r.value for r in rows if r.perturbation == "random_deletion" and r.level == 0.4]
    assert sum(heavy) / len(heavy) < by_hand  # damage to the attention weights costs accuracy


def test_pair_task_from_hub_layout_and_hf_directory_logs_accuracy_and_f1_by_hand(pieces, tmp_path, monkeypatch):
    from run import CognitiveReserveCLI

    monkeypatch.chdir(tmp_path)  # the config's default_root_dir (relative) lands here
    cli = CognitiveReserveCLI([
        "fit", "--config", str(TINY), "--data.task", "mrpc", "--model.task", "mrpc",
        "--data.data_files", "null", "--data.dataset", str(pieces["hub"]), "--data.cache_dir", str(tmp_path / "cache"),
        "--model.init_from", str(pieces["hf"]), "--model.pretraining", "bi", "--trainer.max_epochs", "2",
        "--trainer.logger=false", "--trainer.callbacks=[]", "--trainer.enable_checkpointing=false",
    ])  # fmt: skip
    assert cli.trainer.default_root_dir == "runs/glue/tiny-mrpc-bi"
    assert (cli.model.robustness_name, cli.model.robustness_num_tasks) == ("gpt2-bi-mrpc", 2)
    predicted, labels = predictions(cli.model, GlueDataModule("mrpc", dataset=str(pieces["hub"]), max_length=64))
    assert len(labels) == 48
    tp = int(((predicted == 1) & (labels == 1)).sum())
    fp, fn = int(((predicted == 1) & (labels == 0)).sum()), int(((predicted == 0) & (labels == 1)).sum())
    logged = cli.trainer.callback_metrics
    assert float(logged["val/accuracy"]) == pytest.approx(float((predicted == labels).double().mean()))
    assert float(logged["val/f1"]) == pytest.approx(2 * tp / (2 * tp + fp + fn) if tp else 0.0)


@pytest.mark.parametrize("task", list(GLUE_TASKS))
def test_every_task_config_declares_the_papers_setup(task, pieces):
    from run import CognitiveReserveCLI

    base, path = ROOT / "configs" / "glue" / "base.yaml", ROOT / "configs" / "glue" / f"{task}.yaml"
    args = ["--config", str(base), "--config", str(path), "--model.init_from", str(pieces["lm"])]
    cli = CognitiveReserveCLI(args, run=False)
    assert cli.model.task.name == cli.datamodule.task.name == task
    assert cli.datamodule.dataset_name == "nyu-mll/glue" and cli.datamodule.data_files is None
    assert cli.datamodule.max_length == 128 and cli.trainer.max_epochs == 10
    assert cli.model.robustness_name == f"gpt2-mono-{task}" and cli.model.robustness_targets == "attn"
    assert cli.trainer.default_root_dir == f"runs/glue/{task}-mono"  # interpolated after both files merged
    assert cli.trainer.logger._wandb_init["name"] == f"gpt2-mono-{task}"
    assert yaml.safe_load(path.read_text()) == {"data": {"init_args": {"task": task}}}  # only what differs
    sweep = yaml.safe_load(base.read_text())["trainer"]["callbacks"][1]
    assert sweep["class_path"] == "callbacks.PerturbationSweep"
    assert sweep["init_args"]["perturbations"] == PAPER_GRIDS and sweep["init_args"]["at_test"] is True
    (callback,) = [c for c in cli.trainer.callbacks if type(c).__name__ == "PerturbationSweep" and c.at_test]
    assert [(g.perturbation, g.levels, g.trials) for g in callback.grids] == [
        (name, tuple(spec["levels"]), 20) for name, spec in PAPER_GRIDS.items()
    ]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


BAD_INPUTS = {
    "unknown task name": (
        ["--data.task", "wnli", "--model.task", "wnli"], r"error: (data|model)\.task='wnli': unknown GLUE task"),
    "task of model and data differ": (["--model.task", "cola"], r"error: model\.task='cola': differs from the data's"),
    "missing column": (
        ["--data.data_files.train", "{missing_column}"],
        r"error: data\.data_files\.train='.*no_label\.csv': missing column\(s\) \['label'\]: task sst2 needs"),
    "label outside the label set": (
        ["--data.data_files.train", "{bad_label}"],
        r"error: data\.data_files\.train='.*bad_label\.csv': column 'label' has 3 in row 1, outside task sst2's"),
    "missing checkpoint": (
        ["--model.init_from", "{tmp}/none.ckpt"], r"error: model\.init_from='.*none\.ckpt': no such checkpoint file"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_error_before_training(case, pieces, tmp_path, capsys):
    import re

    from run import main

    files = {
        "missing_column": _write(tmp_path / "no_label.csv", ["sentence,idx", "good,0"]),
        "bad_label": _write(tmp_path / "bad_label.csv", ["sentence,label", "good,1", "bad,3"]),
        "tmp": tmp_path,
    }
    overrides, expected = BAD_INPUTS[case]
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main(["fit", *sst2_args(pieces, out), "--trainer.logger=false", *[o.format(**files) for o in overrides]])
    assert info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.match(expected, last), last
    assert not list(out.rglob("*.ckpt")) and not (out / "robustness").exists()
