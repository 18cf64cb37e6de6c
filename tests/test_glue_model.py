"""GPT2GlueClassifier: initialisation from LM checkpoints and HF directories, pooling under padding, metrics."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import BertConfig, GPT2LMHeadModel

from cognitive_reserve import select_targets
from cognitive_reserve.errors import ConfigError
from datamodules.glue import RightPadCollator
from datamodules.glue_tasks import GLUE_TASKS
from lightning_modules.gpt2_glue import GPT2GlueClassifier, glue_metrics
from tests.helpers.glue_fixtures import save_hf_model, save_lm_checkpoint, tiny_tokenizer


@pytest.fixture(scope="module")
def lm_checkpoint(tmp_path_factory):
    return save_lm_checkpoint(tmp_path_factory.mktemp("lm") / "last.ckpt", seed=3)


@pytest.fixture(scope="module")
def hf_directory(tmp_path_factory):
    return save_hf_model(tmp_path_factory.mktemp("hf") / "tiny-gpt2", seed=4)


# ---- metrics ----------------------------------------------------------------------------------

PREDICTIONS = torch.tensor([1, 1, 0, 0, 1, 0, 1, 0, 1, 1])
TARGETS = torch.tensor([1, 0, 0, 0, 1, 1, 1, 0, 0, 1])  # TP=4, FP=2, TN=3, FN=1


def test_metrics_equal_hand_computation_on_fixed_predictions():
    tp, fp, tn, fn = 4, 2, 3, 1
    by_hand = {
        "accuracy": (tp + tn) / 10,
        "f1": 2 * tp / (2 * tp + fp + fn),
        "mcc": (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)),
    }
    for task, names in {"cola": {"mcc"}, "sst2": {"accuracy"}, "mrpc": {"accuracy", "f1"}, "qqp": {"accuracy", "f1"},
                        "qnli": {"accuracy"}, "rte": {"accuracy"}}.items():  # fmt: skip
        metrics = glue_metrics(GLUE_TASKS[task])
        metrics.update(PREDICTIONS[:6], TARGETS[:6])  # two updates: states accumulate like batches
        metrics.update(PREDICTIONS[6:], TARGETS[6:])
        values = {name: float(value) for name, value in metrics.compute().items()}
        assert values == pytest.approx({name: by_hand[name] for name in names}, abs=1e-6), task


def test_matthews_correlation_follows_glue_convention_where_torchmetrics_does_not():
    """GLUE scores MCC with scikit-learn: a constant predictor gets 0 (torchmetrics' ε-limit would give 0.29 here)."""
    from sklearn.metrics import matthews_corrcoef

    targets = torch.tensor([1, 0, 1, 1, 0, 1])
    generator = torch.Generator().manual_seed(0)
    cases = [torch.ones(6, dtype=torch.long), torch.zeros(6, dtype=torch.long), targets, 1 - targets]
    cases += [torch.randint(0, 2, (6,), generator=generator) for _ in range(20)]
    for predictions in cases:
        metric = glue_metrics(GLUE_TASKS["cola"])
        metric.update(predictions, targets)
        assert float(metric.compute()["mcc"]) == pytest.approx(matthews_corrcoef(targets, predictions), abs=1e-6)
    metric = glue_metrics(GLUE_TASKS["cola"])
    metric.update(torch.ones(6, dtype=torch.long), targets)
    assert float(metric.compute()["mcc"]) == 0.0


def test_sweep_metric_equals_hand_computation_on_the_models_own_predictions(lm_checkpoint):
    model = GPT2GlueClassifier(task="mrpc", init_from=str(lm_checkpoint)).eval()
    batches = [_batch(model.tokenizer, ["the film was good", "my day", "so dull"] * k, [1, 0, 1] * k) for k in (1, 2)]
    (subject,) = model.robustness_subjects(batches)
    with torch.no_grad():
        predicted = torch.cat([model(b["input_ids"], b["attention_mask"]).argmax(-1) for b in batches])
    labels = torch.cat([b["labels"] for b in batches])
    tp = int(((predicted == 1) & (labels == 1)).sum())
    fp, fn = int(((predicted == 1) & (labels == 0)).sum()), int(((predicted == 0) & (labels == 1)).sum())
    with torch.no_grad():
        values = subject.evaluate()
    assert values["accuracy"] == pytest.approx(float((predicted == labels).float().mean()))
    assert values["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    assert subject.name == "gpt2-mono-mrpc" and subject.num_tasks == 1


# ---- pooling and padding ----------------------------------------------------------------------


def _batch(tokenizer, texts: list[str], labels: list[int], pad_id: int | None = None) -> dict[str, torch.Tensor]:
    items = [{"input_ids": tokenizer(t, add_special_tokens=False)["input_ids"] or [0], "label": y}
             for t, y in zip(texts, labels, strict=True)]  # fmt: skip
    return RightPadCollator(tokenizer.eos_token_id if pad_id is None else pad_id)(items)


def test_batched_logits_equal_per_example_unpadded_logits(lm_checkpoint):
    model = GPT2GlueClassifier(task="sst2", init_from=str(lm_checkpoint)).eval()
    tokenizer, eos = model.tokenizer, model.tokenizer.eos_token_id
    sequences = [
        tokenizer("the film was really good .")["input_ids"],
        tokenizer("dull")["input_ids"],
        tokenizer("this book was", add_special_tokens=False)["input_ids"] + [eos],  # a pair whose second text is empty
        tokenizer("my day was quite pleasant and the meal was not bad at all")["input_ids"],
    ]
    longest = max(map(len, sequences))
    with torch.no_grad():
        for pad_id in (eos, 7):  # what fills the padding must not matter
            ids = torch.full((len(sequences), longest), pad_id)
            mask = torch.zeros_like(ids)
            for row, seq in enumerate(sequences):
                ids[row, : len(seq)], mask[row, : len(seq)] = torch.tensor(seq), 1
            batched = model(ids, mask)
            for row, seq in enumerate(sequences):
                alone = torch.tensor([seq])
                unpadded = model(alone, torch.ones_like(alone))[0]
                last_hidden = model.model.transformer(alone).last_hidden_state[0, -1]
                torch.testing.assert_close(batched[row], unpadded, atol=1e-5, rtol=1e-5)
                torch.testing.assert_close(unpadded, model.model.score(last_hidden), atol=1e-6, rtol=1e-6)
                if seq[-1] != eos:  # HF's own pooling (rightmost non-pad token) agrees wherever it is defined
                    torch.testing.assert_close(unpadded, model.model(input_ids=alone).logits[0], atol=1e-6, rtol=1e-6)
    assert model.model.config.pad_token_id == tokenizer.pad_token_id == eos


# ---- init_from ---------------------------------------------------------------------------------


def test_init_from_lm_checkpoint_carries_body_weights_and_tokenizer(lm_checkpoint):
    checkpoint = torch.load(lm_checkpoint, map_location="cpu", weights_only=True)
    model = GPT2GlueClassifier(task="cola", init_from=str(lm_checkpoint))
    body = model.model.transformer.state_dict()
    saved = {k.removeprefix("model.transformer."): v for k, v in checkpoint["state_dict"].items()
             if k.startswith("model.transformer.")}  # fmt: skip
    assert body.keys() == saved.keys() and len(body) > 10
    assert all(torch.equal(body[key], saved[key]) for key in body)
    assert checkpoint["global_step"] == 1  # a trained checkpoint, not the fixture's initial weights
    fresh = tiny_tokenizer()
    assert model.tokenizer.get_vocab() == fresh.get_vocab()
    text = "the meal was superb and our trip was awful"
    assert model.tokenizer(text)["input_ids"] == fresh(text)["input_ids"]
    assert model.model.score.weight.shape == (2, model.model.config.n_embd)


def test_init_from_hf_directory_uses_safetensors_weights_and_tokenizer(hf_directory):
    assert (hf_directory / "model.safetensors").is_file()
    reference = GPT2LMHeadModel.from_pretrained(hf_directory).transformer.state_dict()
    model = GPT2GlueClassifier(task="rte", init_from=str(hf_directory), pretraining="bi")
    body = model.model.transformer.state_dict()
    assert body.keys() == reference.keys() and all(torch.equal(body[k], reference[k]) for k in body)
    assert model.tokenizer.get_vocab() == tiny_tokenizer().get_vocab()
    assert (model.robustness_name, model.robustness_num_tasks) == ("gpt2-bi-rte", 2)
    assert all(module.training for module in model.modules())  # dropout active when fine-tuning starts


def test_sweep_targets_are_the_attention_weights_and_biases(hf_directory):
    model = GPT2GlueClassifier(task="sst2", init_from=str(hf_directory))
    names = set(select_targets(model, model.robustness_targets))
    layers = model.model.config.n_layer
    assert names == {f"model.transformer.h.{i}.attn.{part}.{kind}" for i in range(layers)
                     for part in ("c_attn", "c_proj") for kind in ("weight", "bias")}  # fmt: skip


def test_bad_model_arguments_are_one_line_errors(tmp_path, lm_checkpoint):
    bert = tmp_path / "bert"
    BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8).save_pretrained(bert)
    not_lm = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}}, not_lm)
    cases = {
        "model.task='wnli': unknown GLUE task": {"task": "wnli", "init_from": str(lm_checkpoint)},
        "model.init_from=None: required": {"task": "sst2"},
        f"model.init_from='{tmp_path}/missing.ckpt': no such checkpoint file": {
            "task": "sst2", "init_from": str(tmp_path / "missing.ckpt")},
        f"model.init_from='{not_lm}': not a GPT2LanguageModel checkpoint": {"task": "sst2", "init_from": str(not_lm)},
        f"model.init_from='{bert}': is a 'bert' model, not GPT-2": {"task": "sst2", "init_from": str(bert)},
        f"model.init_from='{tmp_path}/nothing': no checkpoint file and no loadable model": {
            "task": "sst2", "init_from": str(tmp_path / "nothing")},
        "model.num_languages=None: give it for pretraining='tri'": {
            "task": "sst2", "init_from": str(lm_checkpoint), "pretraining": "tri"},
        "model.pretraining='en-el': must be a non-empty label without '-'": {
            "task": "sst2", "init_from": str(lm_checkpoint), "pretraining": "en-el"},
    }  # fmt: skip
    for expected, kwargs in cases.items():
        with pytest.raises(ConfigError) as info:
            GPT2GlueClassifier(**kwargs)
        assert str(info.value).startswith(expected) and "\n" not in str(info.value), str(info.value)
    model = GPT2GlueClassifier(task="sst2", init_from=str(lm_checkpoint), pretraining="tri", num_languages=3)
    assert (model.robustness_name, model.robustness_num_tasks) == ("gpt2-tri-sst2", 3)
