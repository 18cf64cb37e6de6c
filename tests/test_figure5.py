"""Figure 5: the continuation protocol (configs/gpt2/figure5/) and ``python -m run_reports.figure5``.

A branch continues the base's checkpoint: global step, optimizer state, the one LR schedule
(``model.lr_schedule_steps``) and the tokenizer carry over, while the data switches.
"""

from __future__ import annotations

import copy
import csv
import math
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from cognitive_reserve.history import HistoryCsv, HistoryRow
from datamodules.tokenization import tokenizer_to_json
from lightning_modules.lr_schedule import LrSchedule
from run import CognitiveReserveCLI
from run_reports.figure5 import COLUMNS, main
from tests.helpers.configs import CONFIGS, config_args, merged
from tests.helpers.gpt2_fixtures import tiny_corpus
from tests.helpers.wandb_offline import find_runs, read_run_until

FIGURE5 = CONFIGS / "gpt2" / "figure5"
BASE_STEPS, BRANCH_STEPS, WARMUP = 3, 8, 2  # 2 batches per epoch: the branch point is mid-epoch
BRANCHES = ("base", "continue_monolingual", "switch_bilingual")


class ContinuationProbe(L.Callback):
    """Records the learning rates of every optimizer step and the state training starts from."""

    def __init__(self) -> None:
        self.lrs: dict[int, list[float]] = {}
        self.start: dict = {}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = {
            "step": trainer.global_step,
            "optimizer": copy.deepcopy(trainer.optimizers[0].state_dict()),
            "embeddings": pl_module.model.get_input_embeddings().weight.detach().clone(),
            "tokenizer": tokenizer_to_json(pl_module.tokenizer) if pl_module.tokenizer is not None else None,
        }

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        self.lrs[trainer.global_step] = [group["lr"] for group in trainer.optimizers[0].param_groups]


def layers(name: str) -> list[Path]:
    """The config files of a Figure 5 run: the base's, and a branch's after it."""
    base = "tiny_base" if name.startswith("tiny") else "base"
    return [FIGURE5 / f"{base}.yaml"] + ([FIGURE5 / f"{name}.yaml"] if name != base else [])


def small_config(name: str, directory: Path, corpus: dict[str, Path], max_steps: int) -> Path:
    """A tiny Figure 5 config (a branch over the base's), shrunk for a test: few steps, generated text, no logger."""
    config = merged(*layers(name))
    config["trainer"].update(
        default_root_dir=str(directory / name), max_steps=max_steps, logger=False, limit_val_batches=1,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    callbacks = config["trainer"]["callbacks"]
    for callback in callbacks:
        if callback["class_path"].endswith("ModelCheckpoint") and callback["init_args"].get("every_n_train_steps"):
            callback["init_args"]["every_n_train_steps"] = BASE_STEPS
        if callback["class_path"].endswith(("SpectralMonitor", "WeightNorms")):
            callback["init_args"]["every_n_steps"] = 2
    callbacks.append({"class_path": f"{ContinuationProbe.__module__}.ContinuationProbe"})
    config["model"]["init_args"].update(lr_warmup_steps=WARMUP, lr_schedule_steps=BRANCH_STEPS)
    data = config["data"]["init_args"]
    for language, splits in data["corpora"].items():
        for split in splits:
            splits[split] = {"file": str(corpus[f"{language}.{split}"])}
    data["train_tokens"] = 1024
    if "ckpt_path" in config:
        config["ckpt_path"] = str(directory / "tiny_base" / "checkpoints" / f"step={BASE_STEPS}.ckpt")
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), "utf-8")
    return path


def fit(config: Path) -> CognitiveReserveCLI:
    return CognitiveReserveCLI(args=["fit", "--config", str(config)])


def probe_of(cli: CognitiveReserveCLI) -> ContinuationProbe:
    (probe,) = [c for c in cli.trainer.callbacks if type(c).__name__ == "ContinuationProbe"]
    return probe


def test_branch_continues_step_optimizer_schedule_and_tokenizer(tmp_path):
    corpus = tiny_corpus(tmp_path / "corpus", kilobytes=16)
    base = probe_of(fit(small_config("tiny_base", tmp_path, corpus, BASE_STEPS)))
    checkpoint = torch.load(tmp_path / "tiny_base" / "checkpoints" / f"step={BASE_STEPS}.ckpt", weights_only=True)
    assert checkpoint["global_step"] == BASE_STEPS

    cli = fit(small_config("tiny_switch_bilingual", tmp_path, corpus, BRANCH_STEPS))
    branch = probe_of(cli)

    # global step: the branch starts at the base's and trains only the remaining steps
    assert branch.start["step"] == BASE_STEPS and cli.trainer.global_step == BRANCH_STEPS
    assert sorted(base.lrs) == list(range(BASE_STEPS)) and sorted(branch.lrs) == list(range(BASE_STEPS, BRANCH_STEPS))
    # LR: one warm-up + cosine schedule over lr_schedule_steps across both runs (no second warm-up)
    schedule = LrSchedule(WARMUP, BRANCH_STEPS, cli.model.hparams.min_lr_ratio)
    for step, lrs in {**base.lrs, **branch.lrs}.items():
        assert lrs == pytest.approx([cli.model.hparams.lr * schedule(step)] * 3), step
    # optimizer: the branch's first step starts from the base's last AdAMW moments, bit for bit
    saved, restored = checkpoint["optimizer_states"][0], branch.start["optimizer"]
    assert saved["state"].keys() == restored["state"].keys()
    for index, moments in saved["state"].items():
        for name, value in moments.items():
            assert torch.equal(restored["state"][index][name], value), (index, name)
    assert float(cli.trainer.optimizers[0].state_dict()["state"][0]["step"]) == BRANCH_STEPS
    # tokenizer: the base's, not retrained, and the embeddings not re-initialised; the data did switch
    assert branch.start["tokenizer"] == checkpoint["tokenizer_json"]
    assert torch.equal(branch.start["embeddings"], checkpoint["state_dict"]["model.transformer.wte.weight"])
    assert cli.model.languages == ["en", "el"]
    steps = sorted({row.step for row in HistoryCsv(tmp_path / "tiny_switch_bilingual/monitors/spectral.csv").read()})
    # the monitor goes on from the base: the branch point (never measured by the base, step 3), then every 2 steps
    assert steps == [BASE_STEPS, *(step for step in range(BASE_STEPS + 1, BRANCH_STEPS + 1) if step % 2 == 0)]


def test_without_a_horizon_the_schedule_ends_with_max_steps(tmp_path):
    """``lr_schedule_steps: null`` keeps today's behaviour: the trainer's estimate (max_steps) is the horizon."""
    from lightning_modules.gpt2_lm import GPT2LanguageModel

    model = GPT2LanguageModel(
        gpt2_config={"n_layer": 1, "n_head": 1, "n_embd": 8, "vocab_size": 300}, tokenizer="train"
    )
    trainer = L.Trainer(max_steps=123, logger=False, enable_progress_bar=False, enable_model_summary=False)
    model.trainer = trainer
    assert model.lr_schedule_steps() == 123
    model.hparams.lr_schedule_steps = 500
    assert model.lr_schedule_steps() == 500


@pytest.mark.parametrize("name", ["base", "continue_monolingual", "switch_bilingual"])
def test_gpu_configs_parse(name, capsys):
    with pytest.raises(SystemExit) as done:
        CognitiveReserveCLI(args=["fit", *config_args(layers(name)), "--print_config"])
    assert done.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["init_args"]["pretrained"] == "gpt2"
    assert printed["model"]["init_args"]["lr_schedule_steps"] == 32000
    assert printed["trainer"]["max_steps"] == (16000 if name == "base" else 32000)
    if name != "base":
        assert printed["ckpt_path"] == "runs/gpt2/figure5/base/checkpoints/step=16000.ckpt"
    assert list(printed["data"]["init_args"]["corpora"]) == (["en", "el"] if name == "switch_bilingual" else ["en"])


# ---- python -m run_reports.figure5 ----------------------------------------------------------------------------


def write_spectral(run_dir: Path, steps: range, scale: float) -> None:
    """A ``monitors/spectral.csv`` with blocks 0 and 1: σ_max = scale × step + block (a known answer)."""
    rows = [
        HistoryRow(step, 0, f"h.{block}.attn.{matrix}", quantity, scale * step + block)
        for step in steps
        for block in (0, 1)
        for matrix in ("c_attn.q", "c_attn.k", "c_attn.v", "c_proj")
        for quantity in ("sigma_max", "fro2")
    ]
    HistoryCsv(run_dir / "monitors" / "spectral.csv").append(rows)


def logged_panels(wandb_dir: Path) -> set[str]:
    """``figure5/<panel>`` keys logged by the one offline W&B run under ``wandb_dir`` (media keys have sub-keys)."""
    (run_file,) = [path for path in find_runs(wandb_dir) if path.parent.name.startswith("offline-run-")]
    run = read_run_until(run_file, lambda run: any(key.startswith("figure5/") for key in run.logged_keys()))
    return {"/".join(key.split("/")[:2]) for key in run.logged_keys() if key.startswith("figure5/")}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_figure5_draws_the_base_then_each_branch_on_one_step_axis(tmp_path):
    write_spectral(tmp_path / "base", range(0, 30, 10), 1.0)  # the base ran on past the branch point
    write_spectral(tmp_path / "mono", range(20, 50, 10), 2.0)
    write_spectral(tmp_path / "bi", range(20, 50, 10), 3.0)
    out = tmp_path / "report"

    main([str(tmp_path / d) for d in ("base", "mono", "bi")] + ["--label", "B", "M", "S", "--block", "1", "--out",
         str(out), "--wandb-name", "figure5-test"])  # fmt: skip

    rows = read_csv(out / "figure5.csv")
    assert tuple(rows[0]) == COLUMNS
    drawn = {(r["label"], r["segment"], int(r["step"]), r["matrix"]): float(r["sigma_max"]) for r in rows}
    matrices = ("c_attn.q", "c_attn.k", "c_attn.v", "c_proj")
    expected = {("B", "base", s, m): s + 1.0 for s in (0, 10, 20) for m in matrices}  # base cut at the branch start
    for label, scale in (("M", 2.0), ("S", 3.0)):
        expected |= {(label, "branch", s, m): scale * s + 1.0 for s in (20, 30, 40) for m in matrices}
    assert drawn == expected
    assert (out / "figure5.png").stat().st_size > 10_000
    assert {"figure5/figure", "figure5/table"} <= logged_panels(out / "wandb")


@pytest.mark.parametrize(
    ("layout", "extra", "message"),
    [
        ({"base": None, "mono": range(10, 20, 10)}, [], "error: BASE_DIR="),
        ({"base": range(0, 30, 10), "mono": range(0, 20, 10)}, [], "starts at step 0, not after the base"),
        ({"base": range(0, 30, 10), "mono": range(20, 40, 10)}, ["--block", "7"], "error: --block=7: no σ_max"),
        ({"base": range(0, 30, 10), "mono": range(20, 40, 10)}, ["--label", "only-one"], "error: --label="),
    ],
)
def test_figure5_bad_input_is_one_line(tmp_path, capsys, layout, extra, message):
    for name, steps in layout.items():
        (tmp_path / name).mkdir()
        if steps is not None:
            write_spectral(tmp_path / name, steps, 1.0)
    with pytest.raises(SystemExit) as done:
        main([str(tmp_path / name) for name in layout] + ["--out", str(tmp_path / "out"), "--no-wandb", *extra])
    assert done.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert message in line


@pytest.mark.slow
def test_tiny_configs_and_figure5_command_end_to_end(documented_chains):
    """The manual's Figure 5 chain: the three tiny configs as a user runs them (relative paths, in a fresh folder;
    every step count divided by 5 to keep the suite short), then the command."""
    runs = documented_chains.folder / "runs" / "gpt2" / "figure5"
    rows = read_csv(runs / "report" / "figure5.csv")
    segments = {(r["label"], r["segment"]) for r in rows}
    assert segments == {("tiny_base", "base"), ("tiny_continue_monolingual", "branch"),
                        ("tiny_switch_bilingual", "branch")}  # fmt: skip
    base_steps = {int(r["step"]) for r in rows if r["segment"] == "base"}
    branch_steps = {int(r["step"]) for r in rows if r["label"] == "tiny_switch_bilingual"}
    assert max(base_steps) == 40 and min(branch_steps) == 42 and max(branch_steps) == 80
    assert all(math.isfinite(float(r["sigma_max"])) for r in rows)
    assert {"figure5/figure", "figure5/table"} <= logged_panels(runs / "report" / "wandb")
