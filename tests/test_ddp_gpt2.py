"""Tiny GPT-2 under DDP (gloo, 2 CPU processes) through the CLI with every callback of its config on:
fit exits 0 with one W&B run and files written once; the test sweep of a checkpoint, layer-wise (the
``tiny_layers.yaml`` overlay with a smaller grid: all targets, then each attention matrix alone, Q, K and V
as column blocks of ``c_attn``), equals one process's."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cognitive_reserve import read_sweep_csv
from cognitive_reserve.history import HistoryCsv
from run import main
from tests.helpers.cli import ROOT, only_test_sweep, run_cli
from tests.helpers.configs import config_args, gpt2_configs
from tests.helpers.gpt2_fixtures import data_file_args, tiny_corpus
from tests.helpers.wandb_offline import find_runs

pytestmark = pytest.mark.slow  # end to end: every test runs the CLI or a real process

DDP = ["--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu"]
#: The layer-wise test sweep's grid here: every perturbation of the attention weights, few evaluations (9 groups
#: sweep it; head deletion inside a group of Q, K or V columns deletes those columns of the chosen heads).
SMALL_GRID = {
    "random_deletion": {"levels": [0.0, 0.2], "trials": 2},
    "magnitude_pruning": {"levels": [0.0, 0.4]},
    "gaussian_noise": {"levels": [0.1], "trials": 2},
    "head_deletion": {"levels": [0.5], "trials": 2},
    "bit_flip": {"levels": [0.01], "trials": 2},
}


def layers_overlay(directory: Path) -> list[str]:
    """``--config`` of ``configs/gpt2/tiny_layers.yaml`` with ``SMALL_GRID`` as its test sweep's grid."""
    config = yaml.safe_load((ROOT / "configs/gpt2/tiny_layers.yaml").read_text())
    (sweep,) = [c["init_args"] for c in config["trainer"]["callbacks"] if c["init_args"].get("at_test")]
    sweep["perturbations"] = SMALL_GRID
    path = directory / "tiny_layers.yaml"
    path.write_text(yaml.safe_dump(config))
    return ["--config", str(path)]


def args(corpus: dict[str, Path], root: Path) -> list[str]:
    return [
        *config_args(gpt2_configs("tiny_bilingual")), *data_file_args(corpus, ("en", "el")),
        f"--trainer.default_root_dir={root}", "--data.train_tokens=2048", "--trainer.max_steps=8",
        "--trainer.val_check_interval=4", "--model.lr_warmup_steps=2", "--trainer.enable_progress_bar=false",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path, Path]:
    tmp = tmp_path_factory.mktemp("ddp_gpt2")
    corpus = tiny_corpus(tmp / "corpus", kilobytes=16)
    fit_root, ddp_test, single_test = tmp / "fit", tmp / "test_ddp", tmp / "test_single"
    fitted = run_cli("fit", *args(corpus, fit_root), *DDP, timeout=500)
    assert fitted.returncode == 0, fitted.stderr[-4000:]
    checkpoint, layers = f"--ckpt_path={fit_root}/checkpoints/last.ckpt", layers_overlay(tmp)
    tested = run_cli("test", *args(corpus, ddp_test), *layers, *DDP, checkpoint, timeout=500)
    assert tested.returncode == 0, tested.stderr[-4000:]
    main(["test", *args(corpus, single_test), *layers, "--trainer.logger=false", checkpoint])
    return fit_root, ddp_test, single_test


def test_ddp_fit_runs_every_callback_once_with_one_wandb_run(runs):
    fit_root, _, _ = runs
    assert len(find_runs(fit_root)) == 1
    per_epoch = sorted(p.name for p in (fit_root / "robustness").glob("sweep_train_epoch???.csv"))
    assert per_epoch and all(read_sweep_csv(fit_root / "robustness" / name) for name in per_epoch)
    for name in per_epoch:  # written by rank 0 only: every (level, metric) exactly once
        rows = read_sweep_csv(fit_root / "robustness" / name)
        keys = [(r.level, r.metric) for r in rows]
        assert len(keys) == len(set(keys)) and {r.perturbation for r in rows} == {"magnitude_pruning"}
    spectral = HistoryCsv(fit_root / "monitors" / "spectral.csv").read()
    assert {r.name for r in spectral} >= {"h.0.attn.c_attn.q", "h.1.attn.c_proj"}
    steps = [r.step for r in spectral if r.name == "h.0.attn.c_attn.q" and r.quantity == "sigma_max"]
    assert steps == sorted(set(steps))  # each measurement once
    assert (fit_root / "monitors" / "weight_norms.csv").exists()


def test_ddp_test_sweep_equals_the_single_process_sweep(runs):
    _, ddp_test, single_test = runs
    expected = read_sweep_csv(only_test_sweep(single_test))
    got = read_sweep_csv(only_test_sweep(ddp_test))
    assert {r.perturbation for r in got} == set(SMALL_GRID)
    groups = [f"h.{i}.attn.{m}" for i in (0, 1) for m in ("c_attn.q", "c_attn.k", "c_attn.v", "c_proj")]
    assert list(dict.fromkeys(r.group for r in got)) == ["", *groups]
    assert [(r.group, r.perturbation, r.level, r.trial, r.seed, r.metric) for r in got] == [
        (r.group, r.perturbation, r.level, r.trial, r.seed, r.metric) for r in expected
    ]
    assert [r.value for r in got] == pytest.approx([r.value for r in expected], rel=1e-5)
    assert len(find_runs(ddp_test)) == 1
