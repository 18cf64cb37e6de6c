"""CIFAR-10 and 20 Newsgroups through frozen encoders, end to end through the CLI (tiny offline fixtures).

Each config runs once as a real subprocess on tiny data with a tiny random encoder (resnet18 with
``weights: null`` at 32×32; a 2-layer BERT loaded by hub id from an offline hub cache, as
``bert-base-uncased`` would be); the outputs must follow the same contract as digits, the Monte
Carlo sweep must agree with the closed form, and a second run must reuse the cached features
without calling the encoder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors import safe_open
from torchvision.models import ResNet
from transformers import BertModel

from cognitive_reserve import CSV_COLUMNS, read_sweep_csv, summarize
from tests.helpers.cli import ROOT, run_cli
from tests.helpers.encoder_fixtures import count_forward_calls, publish_to_hub_cache, tiny_fixtures
from tests.helpers.linear_outputs import assert_outputs_under_root
from tests.helpers.stats_checks import assert_monte_carlo_matches_closed_form
from tests.helpers.wandb_offline import find_runs, read_run

pytestmark = pytest.mark.slow  # end to end: every test runs the CLI or a real process

GRID = [1, 2, 3, 4, 6]
K = 2
HUB_ID, COMMIT = "tiny-org/tiny-bert", "0123456789abcdef0123456789abcdef01234567"
#: Tiny matrices: one thread each avoids oversubscribing a shared CPU (several times faster here).
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def tiny_args(dataset: str, fixtures, cache) -> list[str]:
    data = {
        "cifar10": [
            f"--data.init_args.root={fixtures.cifar_root}", "--data.init_args.download=false",
            "--data.init_args.check_md5=false", "--data.init_args.encoder=resnet18",
            "--data.init_args.weights=null", "--data.init_args.image_size=32",
        ],
        "newsgroups": [
            "--data.init_args.source=directory", f"--data.init_args.root={fixtures.newsgroups_root}",
            f"--data.init_args.encoder={HUB_ID}", "--data.init_args.max_tokens=32",
        ],
    }[dataset]  # fmt: skip
    return [
        "fit", "--config", str(config_of(dataset)), *data,
        f"--data.init_args.cache_dir={cache}", f"--data.init_args.task_grid={GRID}",
        "--data.init_args.train_examples=12", f"--model.init_args.k={K}",
        # The model as learned, scored against the label (as before issue 12). With unit-norm task vectors, on 12
        # examples of these tiny features the 20 trials per level are strongly skewed (sample skewness 0.4-2.3 for
        # T=1 noise) and their means scatter on both sides of the closed form: one level each fell outside the
        # Bonferroni band below. test_linear_protocol.py checks the unit-norm closed forms with 40 trials on digits.
        "--model.init_args.normalize_task_vectors=false", "--model.init_args.target=label",
    ]  # fmt: skip


def config_of(dataset: str) -> Path:
    """The shipped config of ``dataset``."""
    return ROOT / "configs" / "linear" / f"{dataset}.yaml"


def shipped_trials(dataset: str) -> dict[str, int]:
    """Trials per random level of each perturbation of the shipped config's sweep."""
    callbacks = yaml.safe_load(config_of(dataset).read_text(encoding="utf-8"))["trainer"]["callbacks"]
    (sweep,) = [c for c in callbacks if c["class_path"] == "callbacks.PerturbationSweep"]
    return {name: grid.get("trials", 1) for name, grid in sweep["init_args"]["perturbations"].items()}


@pytest.fixture(scope="module", params=["cifar10", "newsgroups"])
def run(request, tmp_path_factory):
    """One `python run.py fit --config configs/linear/<dataset>.yaml` on the tiny fixtures."""
    fixtures = tiny_fixtures(tmp_path_factory.getbasetemp() / "encoder_fixtures")
    work = tmp_path_factory.mktemp(request.param)
    out, cwd, cache, hub = work / "out", work / "cwd", work / "cache", work / "hub"
    cwd.mkdir()
    publish_to_hub_cache(fixtures.bert, hub, HUB_ID, commit=COMMIT)
    args = tiny_args(request.param, fixtures, cache)
    env = {**ONE_THREAD, "HF_HUB_CACHE": str(hub)}
    result = run_cli(*args, f"--trainer.default_root_dir={out}", cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return {"dataset": request.param, "out": out, "cwd": cwd, "cache": cache, "hub": hub, "args": args,
            "stderr": result.stderr}  # fmt: skip


def test_outputs_follow_the_digits_contract(run):
    out = run["out"]
    assert_outputs_under_root(out, run["cwd"])
    robustness = out / "robustness"
    path = robustness / "sweep_fit_epoch000.csv"
    assert tuple(path.read_text().splitlines()[0].split(",")) == CSV_COLUMNS
    rows = read_sweep_csv(path)
    trials = shipped_trials(run["dataset"])
    assert {r.num_tasks for r in rows} == set(GRID)
    assert {r.perturbation for r in rows} == {"gaussian_noise", "random_deletion", "magnitude_pruning"}
    assert all(r.model == f"linear_svd_k{K}_T{r.num_tasks}" and r.metric == "mse_label" for r in rows)
    for r in rows:
        random = r.perturbation != "magnitude_pruning" and r.level not in (0.0, 1.0)
        same = [s for s in rows if (s.model, s.perturbation, s.level) == (r.model, r.perturbation, r.level)]
        assert len(same) == (trials[r.perturbation] if random else 1)
        assert (r.expected is None) == (r.perturbation == "magnitude_pruning")


def test_features_were_encoded_once_per_split_and_cached(run):
    files = sorted(run["cache"].iterdir())
    assert [p.name.split("-")[:2] for p in files] == [[run["dataset"], "test"], [run["dataset"], "train"]]
    with safe_open(str(files[0]), framework="pt") as file:
        encoder = json.loads(file.metadata()["key"])["encoder"]
    expected = {
        "cifar10": {"name": "resnet18", "weights": None, "init_seed": 0},
        "newsgroups": {"name": HUB_ID, "commit": COMMIT, "pooling": "mean", "max_tokens": 32},
    }[run["dataset"]]
    assert expected.items() <= encoder.items()
    assert "features: wrote" in run["stderr"] and "features: reusing" not in run["stderr"]


def test_monte_carlo_agrees_with_closed_form_on_encoder_features(run):
    summaries = summarize(read_sweep_csv(run["out"] / "robustness" / "sweep_fit_epoch000.csv"))
    assert_monte_carlo_matches_closed_form(summaries)


def test_wandb_run_holds_the_encoder_config_and_the_sweep(run):
    offline = read_run(find_runs(run["out"])[0])
    data = offline.config["config"]["data"]
    assert data["class_path"].endswith({"cifar10": "Cifar10TasksDataModule", "newsgroups": "NewsgroupsTasksDataModule"}
                                       [run["dataset"]])  # fmt: skip
    assert f"--data.init_args.encoder={data['init_args']['encoder']}" in run["args"]
    assert f"robustness/fit/linear_svd_k{K}_T3/random_deletion/mse_label/mean" in offline.logged_keys()
    assert "theory/robustness_slope_T6" in offline.logged_keys()


def test_second_run_reuses_the_cache_without_calling_the_encoder(run, tmp_path, monkeypatch):
    """Same command again (in-process this time): no encoder forward call, cache untouched, identical sweep."""
    import huggingface_hub

    from run import main

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(run["hub"]))
    before = {p.name: p.stat().st_mtime_ns for p in run["cache"].iterdir()}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with count_forward_calls(ResNet if run["dataset"] == "cifar10" else BertModel) as calls:
            main([*run["args"], f"--trainer.default_root_dir={tmp_path}", "--trainer.logger=false"])
    finally:
        torch.set_num_threads(threads)
    assert calls[0] == 0
    assert {p.name: p.stat().st_mtime_ns for p in run["cache"].iterdir()} == before
    name = "robustness/sweep_fit_epoch000.csv"
    assert (tmp_path / name).read_bytes() == (run["out"] / name).read_bytes()
