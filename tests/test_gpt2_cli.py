"""GPT-2 configs through the CLI: the real (hub) configs parse and build on local fixtures, the tiny ones run
end to end as the manual's command chain runs them, and bad input stops with a one-line error before training."""

from __future__ import annotations

import csv
import time
from collections import defaultdict
from pathlib import Path

import lightning as L
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from callbacks.perturbation_sweep import PerturbationSweep
from cognitive_reserve.errors import ConfigError
from cognitive_reserve.targets import select_targets
from datamodules.tokenization import train_byte_level_bpe
from lightning_modules.gpt2_lm import GPT2LanguageModel, load_lm_checkpoint
from run import CognitiveReserveCLI, main
from tests.helpers.cli import only_test_sweep
from tests.helpers.configs import config_args, gpt2_configs, merged
from tests.helpers.gpt2_fixtures import data_file_args, tiny_corpus, tiny_datamodule, wikipedia_records, write_jsonl
from tests.helpers.wandb_offline import find_runs, read_run

pytestmark = pytest.mark.slow  # end to end: every test runs the CLI or a real process

PAPER_GRIDS = {
    "random_deletion": ([0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4], 20),
    "magnitude_pruning": ([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], None),  # deterministic: one trial per level
    "gaussian_noise": (None, 20),  # levels configurable
}
TINY_BILINGUAL_GPT2 = merged(*gpt2_configs("tiny_bilingual"))["model"]["init_args"]["gpt2_config"]
QUIET = [
    "--trainer.logger",
    "false",
    "--trainer.enable_progress_bar",
    "false",
    "--trainer.enable_model_summary",
    "false",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny_corpus(tmp_path_factory.mktemp("corpus"), kilobytes=16)


def tiny_args(corpus, config: str, root: Path, *extra: str) -> list[str]:
    languages = ("en", "el") if "bilingual" in config else ("en",)
    return [
        *config_args(gpt2_configs(config)), *data_file_args(corpus, languages),
        "--trainer.default_root_dir", str(root), "--data.train_tokens", "1024", *extra,
    ]  # fmt: skip


# ---- the real configs (GPT-2 small from the hub, Wikipedia / IMDB) ----------------------------------------


@pytest.mark.parametrize("name", ["monolingual", "bilingual"])
def test_hub_configs_print(name, capsys):
    with pytest.raises(SystemExit) as done:
        CognitiveReserveCLI(args=["fit", *config_args(gpt2_configs(name)), "--print_config"])
    assert done.value.code == 0
    printed = capsys.readouterr().out
    assert "pretrained: gpt2" in printed and "wikimedia/wikipedia" in printed and "stanfordnlp/imdb" in printed
    assert "strategy: ddp" in printed and "precision: bf16-mixed" in printed
    assert ("20231101.el" in printed) == (name == "bilingual")


@pytest.fixture(scope="module")
def local_gpt2(tmp_path_factory, corpus) -> Path:
    """A stand-in for the hub's ``gpt2``: tiny weights and a tokenizer saved in Hugging Face format."""
    directory = tmp_path_factory.mktemp("gpt2")
    tokenizer = train_byte_level_bpe([corpus["en.train"].read_text("utf-8")], 320)
    config = GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=64, vocab_size=320)
    config.bos_token_id = config.eos_token_id = tokenizer.eos_token_id
    GPT2LMHeadModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def hub_fixture_args(corpus, directory: Path, languages: tuple[str, ...]) -> list[str]:
    """Point every hub source of a real config at local files of the same schema (json builder)."""
    args = []
    imdb = write_jsonl(
        directory / "imdb.jsonl", [{"text": f"Review {i}: a fine film.", "label": i % 2} for i in range(6)]
    )
    layout = {"train": {"skip": 4}, "validation": {"take": 4}, "test": {"skip": 4, "take": 4}}
    for language in languages:
        wiki = write_jsonl(directory / f"wiki_{language}.jsonl", wikipedia_records(corpus, language, "train"))
        for split, window in layout.items():
            if (language, split) == ("en", "test"):
                args += [
                    "--data.corpora.en.test.hub",
                    "json",
                    "--data.corpora.en.test.data_files",
                    f'{{"test": "{imdb}"}}',
                ]
                continue
            prefix = f"--data.corpora.{language}.{split}"
            args += [f"{prefix}.hub", "json", f"{prefix}.name", "null", f"{prefix}.data_files", str(wiki)]
            for key, value in window.items():
                args += [f"{prefix}.{key}", str(value)]
    return args


def cpu_args(root: Path) -> list[str]:
    return [
        "--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.strategy", "auto",
        "--trainer.precision", "32-true", "--trainer.default_root_dir", str(root),
        "--data.block_size", "32", "--data.train_tokens", "256", "--data.batch_size", "4",
        "--data.eval_batch_size", "4",
        "--data.num_workers", "0", "--data.tokenizer_train_bytes", "100000", "--data.cache_dir", str(root / "hf"),
    ]  # fmt: skip


def test_bilingual_hub_config_builds_and_trains_on_local_fixtures(local_gpt2, corpus, tmp_path):
    args = [
        "fit", *config_args(gpt2_configs("bilingual")), *QUIET[2:], *cpu_args(tmp_path),  # W&B offline
        *hub_fixture_args(corpus, tmp_path, ("en", "el")), "--model.pretrained", str(local_gpt2),
        "--trainer.max_epochs", "1", "--trainer.max_steps", "2", "--trainer.limit_val_batches", "2",
        "--model.embedding_warmup_steps", "1", "--model.lr_warmup_steps", "1",
    ]  # fmt: skip
    cli = CognitiveReserveCLI(args=args)
    model = cli.model

    assert isinstance(model, GPT2LanguageModel) and cli.datamodule.languages == ["en", "el"]
    assert len(model.tokenizer) == 320 and model.tokenizer.get_vocab() != load_tokenizer_vocab(local_gpt2)  # recycled
    sweeps = [cb for cb in cli.trainer.callbacks if isinstance(cb, PerturbationSweep)]
    test_sweep = next(cb for cb in sweeps if cb.at_test)
    grids = {grid.perturbation: grid for grid in test_sweep.grids}
    for name, (levels, trials) in PAPER_GRIDS.items():
        assert levels is None or list(grids[name].levels) == pytest.approx(levels)
        assert trials is None or grids[name].trials == trials
    assert len(grids["gaussian_noise"].levels) >= 5
    assert set(select_targets(model, model.robustness_targets)) == {
        f"model.transformer.h.{block}.attn.{layer}.{kind}"
        for block in range(2)
        for layer in ("c_attn", "c_proj")
        for kind in ("weight", "bias")
    }
    per_epoch = read_csv(tmp_path / "robustness" / "sweep_train_epoch000.csv")  # Figure 4 (right): pruning per epoch
    assert {row["perturbation"] for row in per_epoch} == {"magnitude_pruning"}
    assert {row["metric"] for row in per_epoch} >= {"bits_per_byte_en", "bits_per_byte_el"}
    config, _, tokenizer = load_lm_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert config.vocab_size == len(tokenizer) == 320 and (tmp_path / "tokenizer" / "tokenizer.json").is_file()


def test_monolingual_hub_config_keeps_the_pretrained_tokenizer(local_gpt2, corpus, tmp_path):
    args = [
        *config_args(gpt2_configs("monolingual")), *QUIET, *cpu_args(tmp_path),
        *hub_fixture_args(corpus, tmp_path, ("en",)), "--model.pretrained", str(local_gpt2),
    ]  # fmt: skip
    cli = CognitiveReserveCLI(args=args, run=False)
    model, datamodule = cli.model, cli.datamodule
    assert datamodule.languages == ["en"] and model.robustness_name == "gpt2-monolingual"
    assert model.tokenizer.get_vocab() == load_tokenizer_vocab(local_gpt2)
    datamodule.use_tokenizer(model.tokenizer)
    test_documents = list(datamodule.documents("en", "test"))  # IMDB-shaped records, sliced like the config
    assert test_documents[:6] == test_documents[6:] == [f"Review {i}: a fine film." for i in range(6)]
    assert len(datamodule.dataset("train")) == 256 // 32


def load_tokenizer_vocab(directory: Path) -> dict[str, int]:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(directory).get_vocab()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


# ---- tiny configs end to end: the manual's chain ----------------------------------------------------------


def test_tiny_monolingual_and_bilingual_fit_test_and_compare(documented_chains):
    """The manual's tiny chain (sample text, fit and test of both configs, compare), run as written in a fresh
    folder."""
    runs = documented_chains.folder / "runs" / "gpt2"
    roots = {name: runs / name for name in ("tiny_monolingual", "tiny_bilingual")}
    for name, root in roots.items():
        languages = ["en", "el"] if "bilingual" in name else ["en"]
        table = only_test_sweep(root)
        rows = read_csv(table)
        assert {row["perturbation"] for row in rows} == {"random_deletion", "magnitude_pruning", "gaussian_noise"}
        assert {row["metric"] for row in rows} == {
            f"{m}_{lang}" for m in ("perplexity", "bits_per_byte") for lang in languages
        }
        assert {row["num_tasks"] for row in rows} == {str(len(languages))}
        trials = defaultdict(set)
        for row in rows:
            trials[(row["perturbation"], row["level"])].add(row["trial"])
        assert len(trials[("random_deletion", "0.2")]) == len(trials[("gaussian_noise", "0.1")]) == 5
        assert table.with_suffix(".png").is_file()
        assert (root / "tokenizer" / "tokenizer.json").is_file()
        torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)
        sweep_key = f"robustness/test/gpt2-{name.replace('_', '-')}/random_deletion/bits_per_byte_en/mean"
        logged = logged_keys(root / "wandb", {sweep_key, "test/bits_per_byte_en", "val/bits_per_byte_en"})
        assert {sweep_key, "test/bits_per_byte_en", "val/bits_per_byte_en"} <= logged

    out = runs / "compare_tiny"  # `python -m run_reports.compare <both test sweeps> --out runs/gpt2/compare_tiny`
    results = read_csv(out / "crossover.csv")
    assert {row["perturbation"] for row in results} == {"random_deletion", "magnitude_pruning", "gaussian_noise"}
    assert {row["metric"] for row in results} == {"bits_per_byte_en"}
    assert {row["paired_trials"] for row in results} == {"True"}
    assert (out / "compare_bits_per_byte_en.png").is_file()


def logged_keys(wandb_dir: Path, expected: set[str], patience_s: float = 60.0) -> set[str]:
    """History keys of every offline W&B run under ``wandb_dir``, re-read until ``expected`` shows up.

    The W&B service process may still be flushing a run file for a moment after the run's process exits.
    """
    deadline = time.monotonic() + patience_s
    while True:
        logged = set().union(*(read_run(path).logged_keys() for path in find_runs(wandb_dir)))
        if expected <= logged or time.monotonic() > deadline:
            return logged
        time.sleep(0.5)


# ---- bad input: one line naming the field, before training -----------------------------------------------


@pytest.fixture(scope="module")
def tiny_checkpoint(corpus, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("checkpoint")
    CognitiveReserveCLI(args=["fit", *tiny_args(corpus, "tiny_bilingual", root), *QUIET, "--trainer.max_steps", "1"])
    return root / "checkpoints" / "last.ckpt"


def error_line(args: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("error: ")
    return lines[-1]


def test_missing_text_file_is_a_one_line_error(corpus, tmp_path, capsys):
    args = [
        "fit",
        *tiny_args(corpus, "tiny_monolingual", tmp_path),
        *QUIET,
        "--data.corpora.en.train.file",
        "/no/en.txt",
    ]
    assert error_line(args, capsys) == "error: data.corpora.en.train.file='/no/en.txt': no such text file"


def test_budget_larger_than_corpus_stops_before_training(corpus, tmp_path, capsys):
    args = ["fit", *tiny_args(corpus, "tiny_bilingual", tmp_path), *QUIET, "--data.train_tokens", "50000000"]
    line = error_line(args, capsys)
    assert (
        line.startswith("error: data.train_tokens=50000000: needs 25000000 training tokens of 'en'") and "only" in line
    )
    assert not (tmp_path / "checkpoints").exists()


def test_missing_init_from_is_a_one_line_error(corpus, tmp_path, capsys):
    missing = tmp_path / "nope.ckpt"
    args = ["fit", *tiny_args(corpus, "tiny_bilingual", tmp_path), "--model.gpt2_config", "null"]
    line = error_line([*args, "--model.init_from", str(missing)], capsys)
    assert line == f"error: model.init_from={str(missing)!r}: no such checkpoint file"


def test_tokenizer_vocab_mismatch_with_checkpoint_is_a_one_line_error(corpus, tiny_checkpoint, tmp_path, capsys):
    other = tmp_path / "tokenizer320"
    train_byte_level_bpe([corpus["en.train"].read_text("utf-8")], 320).save_pretrained(other)
    args = ["fit", *tiny_args(corpus, "tiny_bilingual", tmp_path), "--model.gpt2_config", "null"]
    line = error_line([*args, "--model.init_from", str(tiny_checkpoint), "--model.tokenizer", str(other)], capsys)
    assert line.startswith(f"error: model.tokenizer={str(other)!r}: the tokenizer has 320 tokens but the model has 512")

    # `run.py test --ckpt_path` takes the model's arguments from the checkpoint; in Python they can still differ
    model = GPT2LanguageModel(gpt2_config={**TINY_BILINGUAL_GPT2, "vocab_size": 320}, tokenizer="train")
    datamodule = tiny_datamodule(corpus, ("en", "el"), block_size=64)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, default_root_dir=tmp_path)
    with pytest.raises(ConfigError) as err:
        trainer.test(model, datamodule=datamodule, ckpt_path=tiny_checkpoint)
    assert str(err.value).startswith("ckpt_path={'vocab_size': 512}: checkpoint architecture differs")
    assert model.tokenizer is None  # stopped before any data was tokenized

    doctored = torch.load(tiny_checkpoint, weights_only=True)
    doctored["tokenizer_json"] = train_byte_level_bpe(
        [corpus["en.train"].read_text("utf-8")], 300
    ).backend_tokenizer.to_str()
    torch.save(doctored, tmp_path / "doctored.ckpt")
    with pytest.raises(ConfigError) as err:
        load_lm_checkpoint(tmp_path / "doctored.ckpt")
    assert "300 tokens" in err.value.reason and "512" in err.value.reason


def test_init_from_loads_weights_and_tokenizer(tiny_checkpoint):
    config, state, tokenizer = load_lm_checkpoint(tiny_checkpoint)
    model = GPT2LanguageModel(init_from=str(tiny_checkpoint))
    assert model.tokenizer.get_vocab() == tokenizer.get_vocab() and model.model.config.n_layer == config.n_layer
    assert all(torch.equal(value, state[key]) for key, value in model.model.state_dict().items())
