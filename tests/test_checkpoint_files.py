"""A file that is not a checkpoint is refused in one line, ``not a checkpoint (…)``, wherever a checkpoint is named:
``--ckpt_path`` and every ``init_from``. A pickle that could run code is still refused as such, and a checkpoint of
a run that diverged (NaN weights) is refused before anything loads it."""

from __future__ import annotations

import os

import pytest
import torch

from cognitive_reserve.errors import ConfigError
from lightning_modules.gpt2_glue import GPT2GlueClassifier
from lightning_modules.gpt2_lm import GPT2LanguageModel
from run import vet_checkpoint
from tests.helpers.glue_fixtures import save_lm_checkpoint

LINEAR = {"class_path": "lightning_modules.LinearMultitaskRegression"}


class RunsCode:
    """Unpickling this calls os.system: what a malicious checkpoint does."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def lm_checkpoint(tmp_path_factory):
    return save_lm_checkpoint(tmp_path_factory.mktemp("lm") / "last.ckpt", seed=3)


@pytest.fixture
def not_checkpoints(tmp_path, lm_checkpoint) -> dict[str, tuple]:
    """Files named ``.ckpt`` that are none, with the reason each must get."""
    text = tmp_path / "notes.ckpt"
    text.write_text("Greek and English paragraphs\none per line\n", "utf-8")
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(lm_checkpoint.read_bytes()[:4096])
    noise = tmp_path / "noise.ckpt"
    noise.write_bytes(bytes(range(200, 256)))
    return {
        "text": (text, "not a checkpoint (a text file: starts with 'Greek and English paragraphs')"),
        "empty": (empty, "not a checkpoint (empty file)"),
        "truncated": (truncated, "not a checkpoint (a damaged or truncated zip archive)"),
        "noise": (noise, "not a checkpoint (neither a zip archive nor a pickle: starts with b'\\xc8\\xc9"),
    }


@pytest.mark.parametrize("kind", ["text", "empty", "truncated", "noise"])
def test_a_file_that_is_no_checkpoint_is_refused_in_one_line_for_ckpt_path_and_every_init_from(kind, not_checkpoints):
    path, reason = not_checkpoints[kind]
    loaders = {
        "ckpt_path": lambda: vet_checkpoint(str(path), LINEAR),
        "model.init_from": lambda: GPT2LanguageModel(init_from=str(path)),
    }
    loaders["model.init_from (GLUE)"] = lambda: GPT2GlueClassifier(task="sst2", init_from=str(path))
    for field, load in loaders.items():
        with pytest.raises(ConfigError) as refused:
            load()
        assert refused.value.field == field.split(" ")[0]
        assert str(refused.value).startswith(f"{field.split(' ')[0]}={str(path)!r}: {reason}"), str(refused.value)
        assert "could run code" not in str(refused.value) and "\n" not in str(refused.value)


def test_a_pickle_that_would_run_code_is_still_refused_as_such_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": RunsCode(str(marker))}, evil)
    with pytest.raises(ConfigError, match=r"refused: not a plain-weights checkpoint, loading it could run code \(.*"
                       r"unsupported GLOBAL posix.system"):  # fmt: skip
        vet_checkpoint(str(evil), LINEAR)
    assert not marker.exists()


def test_a_checkpoint_without_state_dict_is_not_a_lightning_checkpoint(tmp_path):
    torch.save([1, 2, 3], tmp_path / "list.ckpt")
    with pytest.raises(ConfigError, match=r"not a Lightning checkpoint \(no state_dict\)"):
        vet_checkpoint(str(tmp_path / "list.ckpt"), LINEAR)


def test_a_checkpoint_of_a_diverged_run_is_refused_for_ckpt_path_and_init_from(tmp_path, lm_checkpoint):
    checkpoint = torch.load(lm_checkpoint, weights_only=True)
    key = next(name for name in checkpoint["state_dict"] if name.endswith("attn.c_attn.weight"))
    checkpoint["state_dict"][key] = torch.full_like(checkpoint["state_dict"][key], float("nan"))
    diverged = tmp_path / "diverged.ckpt"
    torch.save(checkpoint, diverged)
    reason = f"holds non-finite weights (NaN/inf in {key}): the checkpoint of a run that diverged"
    with pytest.raises(ConfigError, match=r"ckpt_path=.*: " + reason.replace("(", r"\(").replace(")", r"\)")):
        vet_checkpoint(str(diverged), LINEAR)
    with pytest.raises(ConfigError, match=r"model\.init_from=.*: holds non-finite weights"):
        GPT2LanguageModel(init_from=str(diverged))
    with pytest.raises(ConfigError, match=r"model\.init_from=.*: holds non-finite weights"):
        GPT2GlueClassifier(task="sst2", init_from=str(diverged))
