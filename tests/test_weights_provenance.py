"""A measuring stage (``validate``, ``test``, ``predict``) knows whose weights it measures: a checkpoint (given, or
the run's own ``last.ckpt``), the model's own trained weights (``init_from``), or the untrained model on request
(``--ckpt_path initial``); otherwise it refuses in one line before anything is created. The weights are named once
on stderr, in the W&B run config and in the test sweep's fingerprint, which tells checkpoints apart by content."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch

from callbacks.perturbation_sweep import PerturbationSweep
from lightning_modules import LinearMultitaskRegression
from lightning_modules.gpt2_glue import GPT2GlueClassifier
from lightning_modules.gpt2_lm import GPT2LanguageModel
from tests.helpers.blobs import BlobClassifier, Blobs
from tests.helpers.cli import ROOT
from tests.helpers.configs import DIGITS_SGD, config_args
from tests.helpers.glue_fixtures import save_lm_checkpoint
from tests.helpers.gpt2_fixtures import TINY_GPT2

QUIET = {
    "logger": False, "enable_progress_bar": False, "enable_model_summary": False, "enable_checkpointing": False,
    "accelerator": "cpu",
}  # fmt: skip
DIGITS = str(ROOT / "configs" / "linear" / "digits.yaml")
TINY_LM = str(ROOT / "configs" / "gpt2" / "tiny_monolingual.yaml")
TINY_GLUE = str(ROOT / "configs" / "glue" / "tiny.yaml")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def lm_checkpoint(tmp_path_factory) -> Path:
    return save_lm_checkpoint(tmp_path_factory.mktemp("lm") / "last.ckpt", seed=3)


# ---- what a model holds as built ------------------------------------------------------------------------------


def test_each_model_says_what_its_weights_are_before_any_checkpoint(lm_checkpoint):
    from cognitive_reserve.provenance import weights_origin

    svd = weights_origin(LinearMultitaskRegression(solver="svd"), seed=0)
    assert not svd.trained and "closed form during fit" in svd.unmeasurable
    sgd = weights_origin(LinearMultitaskRegression(solver="sgd", init_seed=7), seed=0)
    assert (sgd.trained, sgd.seed, sgd.unmeasurable) == (False, 7, None)
    assert sgd.describe() == "initial weights, seed 7 (untrained)"
    scratch = weights_origin(GPT2LanguageModel(gpt2_config=TINY_GPT2, tokenizer="train"), seed=3)
    assert (scratch.source, scratch.seed, scratch.trained) == ("initial", 3, False)
    loaded = weights_origin(GPT2LanguageModel(init_from=str(lm_checkpoint)), seed=3)
    assert loaded.trained and loaded.as_config() == {
        "source": "init_from", "path": str(lm_checkpoint), "sha256": sha256(lm_checkpoint)
    }  # fmt: skip
    recycled = weights_origin(GPT2LanguageModel(init_from=str(lm_checkpoint), tokenizer="train"), seed=3)
    assert not recycled.trained and recycled.untrained == "the token embeddings (tokenizer: train)"
    glue = weights_origin(GPT2GlueClassifier(task="sst2", init_from=str(lm_checkpoint)), seed=5)
    assert not glue.trained and glue.describe().endswith(
        "; the classification head (score): initial weights, seed 5 (untrained)"
    )


def test_a_measuring_stage_takes_the_checkpoint_it_is_given_or_the_runs_last_and_never_a_missing_one(tmp_path):
    from cognitive_reserve.errors import ConfigError
    from run_cli.weights import measured_checkpoint

    checkpoints = tmp_path / "checkpoints"
    assert measured_checkpoint("test", None, checkpoints) == (None, False)
    assert measured_checkpoint("test", "initial", checkpoints) == (None, False)
    with pytest.raises(ConfigError, match=r"^ckpt_path='last': no checkpoint to validate: .*last\.ckpt does not exist"):
        measured_checkpoint("validate", "last", checkpoints)
    with pytest.raises(ConfigError, match=r"^ckpt_path='best': a new test process knows no best checkpoint"):
        measured_checkpoint("test", "best", checkpoints)
    with pytest.raises(ConfigError, match=r"^ckpt_path='initial': only validate, test, predict take it"):
        measured_checkpoint("fit", "initial", checkpoints)
    checkpoints.mkdir()
    (checkpoints / "last.ckpt").write_bytes(b"x")
    last = str(checkpoints / "last.ckpt")
    assert measured_checkpoint("test", None, checkpoints) == (last, True)
    assert measured_checkpoint("predict", "last", checkpoints) == (last, False)
    assert measured_checkpoint("test", "other.ckpt", checkpoints) == ("other.ckpt", False)
    assert measured_checkpoint("fit", "last", checkpoints) == ("last", False)  # fit resumes as Lightning does


# ---- the test sweep's fingerprint ------------------------------------------------------------------------------


def save(model: BlobClassifier, path: Path) -> Path:
    trainer = L.Trainer(default_root_dir=path.parent, **QUIET)
    trainer.test(model, Blobs(), verbose=False)  # attaches the model, so the trainer can save it
    trainer.save_checkpoint(path)
    return path


def test_sweep(root: Path, checkpoint: Path) -> None:
    grid = {"random_deletion": {"levels": [0.0, 0.5], "trials": 2}}
    trainer = L.Trainer(default_root_dir=root, callbacks=[PerturbationSweep(grid, progress=False)], **QUIET)
    trainer.test(BlobClassifier(), Blobs(), ckpt_path=checkpoint, verbose=False)


test_sweep.__test__ = False  # a helper, not a test


def test_a_test_sweep_of_other_weights_is_not_resumed_even_when_the_damaged_ones_are_equal(tmp_path):
    """The fingerprint hashed the damaged (targeted) weights only: two checkpoints that differ elsewhere (here the
    output bias, which the sweep does not damage) shared it, and the second test resumed the first one's rows."""
    first = save(BlobClassifier(), tmp_path / "first.ckpt")
    other = BlobClassifier()
    with torch.no_grad():
        other.body[2].bias.add_(5.0)  # not a target (body.*weight): the accuracy changes, the targets do not
    second = save(other, tmp_path / "second.ckpt")
    copy = tmp_path / "copy" / "first.ckpt"
    copy.parent.mkdir()
    copy.write_bytes(first.read_bytes())
    root = tmp_path / "run"
    test_sweep(root, first)
    (csv,) = (root / "robustness").glob("sweep_test_epoch???.csv")
    fingerprint = csv.with_name(csv.name + ".fingerprint")
    assert fingerprint.read_text().splitlines()[1] == f"weights: checkpoint {first} (sha256 {sha256(first)})"
    with warnings.catch_warnings():
        warnings.filterwarnings("error", "came from another sweep")  # the same weights elsewhere: resumed
        test_sweep(root, copy)
    assert not list(csv.parent.glob("*.stale-*"))
    with pytest.warns(UserWarning, match="came from another sweep"):
        test_sweep(root, second)
    assert [p.name for p in csv.parent.glob("*.stale-*")] == [f"{csv.name}.stale-1"]
    assert fingerprint.read_text().splitlines()[1] == f"weights: checkpoint {second} (sha256 {sha256(second)})"


# ---- through the CLI ---------------------------------------------------------------------------------------------


def refusal(args: list[str], capsys) -> list[str]:
    from run import main

    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code == 2
    return capsys.readouterr().err.strip().splitlines()


@pytest.fixture(scope="module")
def text_and_glue(tmp_path_factory, lm_checkpoint) -> list[str]:
    """Arguments that point the tiny GPT-2 and GLUE configs at generated files (``{config}`` picks one)."""
    from datamodules.glue_sample import write_glue_sample
    from tests.helpers.gpt2_fixtures import data_file_args, tiny_corpus

    root = tmp_path_factory.mktemp("data")
    sst2 = write_glue_sample(root / "glue", "sst2", train=32, validation=16)
    return {
        TINY_LM: data_file_args(tiny_corpus(root / "text"), ("en",)),
        TINY_GLUE: ["--model.init_from", str(lm_checkpoint), "--data.data_files.train", str(sst2["train"]),
                    "--data.data_files.validation", str(sst2["validation"]), "--data.cache_dir", str(root / "cache")],
        DIGITS: [],
    }  # fmt: skip


@pytest.mark.slow  # the CLI in-process, three configs
@pytest.mark.parametrize(
    ("stage", "config"), [("test", DIGITS), ("validate", DIGITS), ("test", TINY_LM), ("test", TINY_GLUE)]
)
def test_measuring_an_untrained_model_by_accident_is_refused_in_one_line_creating_nothing(
    stage, config, text_and_glue, tmp_path, capsys
):
    """It scored the linear svd solver's zeros (every row 0.0: "perfectly robust"), a random GPT-2, a GLUE
    classifier with an untrained head, and exited 0."""
    root = tmp_path / "run"
    lines = refusal([stage, "--config", config, *text_and_glue[config], f"--trainer.default_root_dir={root}"], capsys)
    assert len(lines) == 1, lines
    start = f"error: ckpt_path=None: {stage} needs trained weights, but {root}/checkpoints/last.ckpt does not exist"
    assert lines[0].startswith(start)
    assert lines[0].endswith(
        "give --ckpt_path PATH (a checkpoint of a fit), fit first into this trainer.default_root_dir, or measure the "
        "untrained model on purpose with --ckpt_path initial"
    )
    assert not root.exists()
    if config == TINY_GLUE:
        assert "; the classification head (score): initial weights, seed 0 (untrained)" in lines[0]


@pytest.mark.slow  # the CLI in-process: a fit, then a test that finds its checkpoint
def test_test_after_fit_measures_the_runs_last_checkpoint_and_names_it_everywhere(tmp_path, capfd):
    from run import main
    from tests.helpers.wandb_offline import find_runs, read_run

    root = tmp_path / "run"
    common = ["--config", DIGITS, f"--trainer.default_root_dir={root}", "--data.init_args.task_grid=[1, 4]"]
    main(["fit", *common, "--trainer.logger=false"])
    capfd.readouterr()
    main(["test", *common])
    last = root / "checkpoints" / "last.ckpt"
    line = f"weights: checkpoint {last} (sha256 {sha256(last)[:12]}…) — found in the run directory"
    assert capfd.readouterr().err.count(line) == 1
    (csv,) = (root / "robustness").glob("sweep_test_epoch???.csv")
    note = csv.with_name(csv.name + ".fingerprint").read_text().splitlines()[1]
    assert note == f"weights: checkpoint {last} (sha256 {sha256(last)})"
    values = {float(row.split(",")[7]) for row in csv.read_text().splitlines()[1:]}
    assert max(values) > 0  # the trained models, not the untrained zeros (every row 0.0)
    (run,) = find_runs(root / "wandb")
    assert read_run(run).config["weights"] == {"source": "checkpoint", "path": str(last), "sha256": sha256(last)}


@pytest.mark.slow  # the CLI in-process
def test_the_untrained_model_is_measured_only_on_request_and_said_to_be(tmp_path, capfd):
    from run import main
    from tests.helpers.wandb_offline import find_runs, read_run

    args = ["--trainer.default_root_dir", str(tmp_path / "svd"), "--ckpt_path", "initial"]
    lines = refusal(["test", "--config", DIGITS, *args], capfd)
    assert lines == [
        "error: ckpt_path='initial': the svd solver computes W and Γ in closed form during fit; before it the task "
        "vectors are zeros and every damage level scores 0; fit first, or give --ckpt_path PATH"
    ]
    root = tmp_path / "sgd"
    main(["test", *config_args(DIGITS_SGD), "--data.init_args.task_grid=[1, 4]", f"--trainer.default_root_dir={root}",
          "--ckpt_path", "initial"])  # fmt: skip
    assert capfd.readouterr().err.count("weights: initial weights, seed 0 (untrained)\n") == 1
    (run,) = find_runs(root / "wandb")
    assert read_run(run).config["weights"] == {"source": "initial", "seed": 0}
    (csv,) = (root / "robustness").glob("sweep_test_epoch???.csv")
    assert csv.with_name(csv.name + ".fingerprint").read_text().splitlines()[1] == (
        "weights: initial weights, seed 0 (untrained)"
    )


@pytest.mark.slow  # the CLI in-process: a sweep of the tiny GPT-2
def test_a_language_model_with_trained_init_from_weights_is_measured_without_a_checkpoint(
    lm_checkpoint, text_and_glue, tmp_path, capfd
):
    from run import main

    main(["test", "--config", TINY_LM, *text_and_glue[TINY_LM], f"--trainer.default_root_dir={tmp_path}",
          "--trainer.logger=false", "--model.init_args.gpt2_config=null", "--model.init_args.tokenizer=null",
          f"--model.init_args.init_from={lm_checkpoint}"])  # fmt: skip
    line = f"weights: init_from {lm_checkpoint} (sha256 {sha256(lm_checkpoint)[:12]}…)\n"
    assert capfd.readouterr().err.count(line) == 1
