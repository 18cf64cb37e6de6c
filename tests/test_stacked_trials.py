"""Stacked trials for any model: ``trial_batch`` > 1 through ``torch.func.vmap`` gives the in-place rows.

Tolerance: the vmapped pass may sum a matmul in another order than the plain one, so values may differ
by float rounding; the tests allow a relative 1e-5 (they were bit for bit equal here, on CPU).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn
from torchmetrics import MeanMetric

import lightning_modules.gpt2_lm as gpt2_lm
from cognitive_reserve import SweepGrid, run_sweep
from cognitive_reserve.errors import ConfigError
from datamodules.glue import RightPadCollator
from lightning_modules.gpt2_glue import GPT2GlueClassifier
from lightning_modules.sweepable import SweepableMixin
from tests.helpers.glue_fixtures import save_hf_model, tiny_tokenizer
from tests.helpers.gpt2_fixtures import TINY_GPT2, tiny_corpus, tiny_datamodule

GRIDS = [
    SweepGrid("random_deletion", [0.0, 0.3], trials=3),
    SweepGrid("gaussian_noise", [0.05], trials=3),
    SweepGrid("magnitude_pruning", [0.5]),
    SweepGrid("head_deletion", [0.5], trials=3),  # the model's layout reaches the stacked copies
    SweepGrid("bit_flip", [0.01], trials=3, options={"bits": "mantissa"}),
]
RELATIVE_TOLERANCE = 1e-5


def assert_same_rows(stacked, in_place) -> None:
    """Every column equal, values within the documented float tolerance."""
    assert len(stacked) == len(in_place)
    for a, b in zip(stacked, in_place, strict=True):
        assert dataclasses.replace(a, value=b.value) == b
        assert a.value == pytest.approx(b.value, rel=RELATIVE_TOLERANCE, abs=1e-7), (a, b)


def test_gpt2_language_model_stacked_rows_equal_in_place_rows(tmp_path):
    torch.manual_seed(0)
    model = gpt2_lm.GPT2LanguageModel(
        gpt2_config={**TINY_GPT2, "bos_token_id": 0, "eos_token_id": 0}, tokenizer="train", targets="attn"
    )
    datamodule = tiny_datamodule(tiny_corpus(tmp_path), ("en", "el"))
    datamodule.use_tokenizer(model.lm_tokenizer(datamodule))
    model.languages = datamodule.languages
    model.eval()
    (subject,) = model.robustness_subjects(list(datamodule.test_dataloader())[:3])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    in_place = run_sweep(subject, GRIDS, seed=2)
    for trial_batch in (4, 8):  # partial and whole stacks
        assert_same_rows(run_sweep(subject, GRIDS, seed=2, trial_batch=trial_batch), in_place)
    assert "perplexity_en" in {r.metric for r in in_place}
    assert len({r.value for r in in_place if r.metric == "perplexity_en"}) > 3  # damage changes the numbers
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # stacked never writes


def test_glue_classifier_stacked_rows_equal_in_place_rows(tmp_path):
    model = GPT2GlueClassifier(task="mrpc", init_from=str(save_hf_model(tmp_path / "hf", seed=4))).eval()
    tokenizer = tiny_tokenizer()
    texts = ["the film was good", "my day", "so dull and not quite good", "really pleasant ."]
    items = [{"input_ids": tokenizer(t)["input_ids"], "label": i % 2} for i, t in enumerate(texts * 3)]
    collate = RightPadCollator(tokenizer.eos_token_id)
    (subject,) = model.robustness_subjects([collate(items[:5]), collate(items[5:])])
    grids = [SweepGrid("gaussian_noise", [0.3, 1.0], trials=4)]
    in_place = run_sweep(subject, grids, seed=5)
    assert_same_rows(run_sweep(subject, grids, seed=5, trial_batch=3), in_place)
    assert {r.metric for r in in_place} == {"accuracy", "f1"}


class ItemInForward(SweepableMixin, nn.Module):
    """A user's module whose scoring reads a damaged weight as a Python number: vmap cannot run it."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(3, 1)
        self.device = torch.device("cpu")

    def robustness_metric(self) -> MeanMetric:
        return MeanMetric()

    def robustness_update(self, metric: MeanMetric, batch: torch.Tensor) -> None:
        output = self.layer(batch)
        metric.update(output * float(self.layer.weight.sum()))


def test_a_model_vmap_cannot_run_is_refused_with_a_one_line_error():
    module = ItemInForward()
    (subject,) = module.robustness_subjects([torch.ones(2, 3)])
    grids = [SweepGrid("gaussian_noise", [0.1], trials=2)]
    assert len(run_sweep(subject, grids, trial_batch=1)) == 2  # in place works
    with pytest.raises(ConfigError) as caught:
        run_sweep(subject, grids, trial_batch=2)
    message = str(caught.value)
    assert message.startswith("trial_batch=2: ItemInForward cannot be scored as stacked copies") and "\n" not in message
