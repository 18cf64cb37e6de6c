"""No silent divergence: a fit whose loss turns NaN stops at that step, before the optimizer applies it, keeping its
last finite checkpoint; no checkpoint of non-finite weights is ever written; monitors record NaN instead of
crashing; a sweep of a model that is not finite (weights or undamaged metric) is refused, not written as ``inf``."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from callbacks.finite_training import FiniteTraining, TrainingDiverged
from callbacks.perturbation_sweep import PerturbationSweep
from callbacks.spectral_monitor import SpectralMonitor
from cognitive_reserve.errors import ConfigError
from tests.helpers.blobs import BlobClassifier, Blobs
from tests.helpers.tiny_gpt2 import CountingSequences, TinyGPT2

QUIET = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False, "accelerator": "cpu"}


def finite(path) -> bool:
    state = torch.load(path, weights_only=True)["state_dict"]
    return all(bool(torch.isfinite(tensor).all()) for tensor in state.values() if tensor.is_floating_point())


def test_a_nan_loss_stops_the_fit_at_that_step_and_the_last_checkpoint_stays_finite(tmp_path):
    torch.manual_seed(0)
    model = TinyGPT2(lr=1e6)  # AdamW steps of ~1e6: the second loss is NaN
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "checkpoints", every_n_train_steps=1, save_last=True)
    trainer = L.Trainer(max_steps=20, default_root_dir=tmp_path, callbacks=[FiniteTraining(), checkpoints], **QUIET)
    with pytest.raises(TrainingDiverged) as stopped:
        trainer.fit(model, CountingSequences())
    line = str(stopped.value)
    assert line.startswith("training diverged at optimizer step 2 (epoch 0): the loss is nan"), line
    assert "likely cause: a learning rate too high (lr 1e+06 at this step)" in line and "\n" not in line
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert f"the last checkpoint, {last}, is finite: resume from it with --ckpt_path last" in line
    assert trainer.global_step == 1  # the NaN step was never applied
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
    assert torch.load(last, weights_only=True)["global_step"] == 1
    assert all(finite(path) for path in (tmp_path / "checkpoints").glob("*.ckpt"))


def test_a_checkpoint_of_non_finite_weights_is_never_written(tmp_path):
    model = TinyGPT2()
    trainer = L.Trainer(max_steps=1, default_root_dir=tmp_path, callbacks=[FiniteTraining()], **QUIET)
    trainer.fit(model, CountingSequences())
    trainer.save_checkpoint(tmp_path / "fine.ckpt")
    with torch.no_grad():
        model.model.transformer.h[1].mlp.c_fc.weight[0, 0] = math.inf
    with pytest.raises(TrainingDiverged, match=r"non-finite weights in model\.transformer\.h\.1\.mlp\.c_fc\.weight"):
        trainer.save_checkpoint(tmp_path / "diverged.ckpt")
    assert not (tmp_path / "diverged.ckpt").exists() and finite(tmp_path / "fine.ckpt")


@pytest.mark.parametrize("method", ["power", "exact"])
def test_spectral_monitor_records_nan_for_a_non_finite_matrix_and_goes_on(method):
    model = TinyGPT2()
    monitor = SpectralMonitor(method=method, spectrum_every_n_steps=1, top_k=2)
    monitor.select(model)
    before = monitor.measure(0)
    with torch.no_grad():
        model.model.transformer.h[0].attn.c_attn.weight[0, 0] = math.nan  # inside the query part
    during = monitor.measure(1)
    assert math.isnan(during[("h.0.attn.c_attn.q", "sigma_max")]) and math.isnan(during[("h.0.attn.c_attn.q", "fro2")])
    finite_keys = [key for key in before if key[0] != "h.0.attn.c_attn.q"]
    assert all(math.isfinite(during[key]) for key in finite_keys)
    assert ("h.0.attn.c_attn.q", "sigma_1") not in during  # no spectrum of a matrix that has none
    with torch.no_grad():
        model.model.transformer.h[0].attn.c_attn.weight[0, 0] = 0.0
    after = monitor.measure(2)
    assert math.isfinite(after[("h.0.attn.c_attn.q", "sigma_max")])


class HugeLogits(TinyGPT2):
    """A tiny GPT-2 whose token embeddings (tied to the output layer) are scaled to 1e30: finite weights whose
    logits overflow, so its loss is not finite."""

    def __init__(self) -> None:
        super().__init__()
        with torch.no_grad():
            self.model.transformer.wte.weight.mul_(1e30)

    def test_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        pass


class CountingWithTest(CountingSequences):
    def test_dataloader(self):
        return self.val_dataloader()


def sweep() -> PerturbationSweep:
    return PerturbationSweep({"random_deletion": {"levels": [0.0, 0.5], "trials": 2}}, progress=False)


def test_a_sweep_of_a_model_whose_undamaged_metric_is_not_finite_is_refused_not_written(tmp_path):
    model = HugeLogits()
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
    trainer = L.Trainer(default_root_dir=tmp_path, callbacks=[sweep()], **QUIET)
    refused = r"^model='tiny-gpt2': the undamaged tiny-gpt2 scores meanmetric=nan: no damage can be measured against it"
    with pytest.raises(ConfigError, match=refused + "; nothing swept$"):
        trainer.test(model, CountingWithTest(), verbose=False)
    assert not list(tmp_path.rglob("sweep_*.csv"))


def test_a_sweep_of_non_finite_weights_is_refused_not_written(tmp_path):
    model = BlobClassifier()
    with torch.no_grad():
        model.body[2].weight[0, 0] = math.nan
    trainer = L.Trainer(default_root_dir=tmp_path, callbacks=[sweep()], **QUIET)
    with pytest.raises(ConfigError, match=r"blobs holds non-finite weights \(body\.2\.weight\); nothing swept"):
        trainer.test(model, Blobs(), verbose=False)
    assert not list(tmp_path.rglob("sweep_*.csv"))


@pytest.mark.slow  # the CLI in a real process; with DDP, two of them
@pytest.mark.parametrize("ddp", [False, True], ids=["one-process", "ddp"])
def test_a_fit_with_a_learning_rate_far_too_high_stops_with_one_line_and_status_1(ddp, tmp_path):
    """It ended with "Run finished", exit status 0 and a last.ckpt full of NaN; with 60 steps, in a 60-line
    linalg.svd traceback from the σ_max monitor and no checkpoint."""
    from tests.helpers.cli import ROOT, run_cli
    from tests.helpers.gpt2_fixtures import data_file_args, tiny_corpus

    root = tmp_path / "run"
    args = [
        "fit", "--config", str(ROOT / "configs" / "gpt2" / "tiny_monolingual.yaml"),
        *data_file_args(tiny_corpus(tmp_path / "text", kilobytes=16), ("en",)), "--data.train_tokens=1024",
        f"--trainer.default_root_dir={root}", "--model.init_args.lr=1e6", "--trainer.max_steps=60",
        "--trainer.enable_progress_bar=false",
    ]  # fmt: skip
    if ddp:
        args += ["--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu"]
    result = run_cli(*args, timeout=500)
    assert result.returncode == 1, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-3000:]  # one line, from global rank 0 only
    assert errors[0].startswith("error: training diverged at optimizer step ")
    assert "likely cause: a learning rate too high" in errors[0]
    assert "Traceback" not in result.stderr and "Run finished" not in result.stdout
    assert all(finite(path) for path in root.rglob("*.ckpt"))
