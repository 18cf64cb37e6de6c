"""Perplexity and bits per byte of GPT2LanguageModel against a hand computation on a tiny model and text.

Convention under test (datamodules/text.py): the evaluated stream is
``<eos> doc₁ <eos> doc₂ <eos>``; every token after the first is predicted exactly once, in blocks of
``block_size`` inputs that overlap by one token; the last block is partial. Bits per byte divides
the total NLL (end-of-text predictions included) in bits by the UTF-8 bytes of the documents.
"""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch

from datamodules.text import TextCorpusDataModule
from datamodules.windows import IGNORE_INDEX
from lightning_modules.gpt2_lm import GPT2LanguageModel
from lightning_modules.lm_metrics import LanguageModelingMetric
from tests.helpers.gpt2_fixtures import evaluation_setup

BLOCK = 8
VOCAB = 300
EVAL_DOCUMENTS = ["Καλημέρα, Αθήνα ς!", "The end."]  # 2 documents -> a stream of a few blocks, the last one partial


@pytest.fixture(scope="module")
def setup_eval(tmp_path_factory):
    """A trained tokenizer, a tiny random GPT-2 holding it, and a datamodule whose validation file is EVAL_DOCUMENTS."""
    model, corpus, tokenizer = evaluation_setup(tmp_path_factory.mktemp("metrics"), EVAL_DOCUMENTS, BLOCK, VOCAB)
    datamodule = TextCorpusDataModule({"en": corpus}, train_tokens=BLOCK, block_size=BLOCK, eval_batch_size=2)
    return model, datamodule, tokenizer


def hand_nll(model: GPT2LanguageModel, tokenizer) -> tuple[float, int]:
    """Σ −log p(token | preceding tokens of its block), float64, by explicit loops over the stream."""
    eos = tokenizer.eos_token_id
    stream = [eos]
    for document in EVAL_DOCUMENTS:
        stream += tokenizer(document, add_special_tokens=False)["input_ids"] + [eos]
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(stream) - 1, BLOCK):
            window = stream[start : start + BLOCK + 1]
            logits = model.model(input_ids=torch.tensor([window[:-1]])).logits[0].double()
            log_probs = torch.log_softmax(logits, dim=-1)
            for position in range(len(window) - 1):
                total -= float(log_probs[position, window[position + 1]])
                count += 1
    assert count == len(stream) - 1  # every token after the leading <eos> exactly once
    return total, count


def validate(model, datamodule) -> dict[str, float]:
    trainer = L.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    return trainer.validate(model, datamodule=datamodule, verbose=False)[0]


def test_perplexity_and_bits_per_byte_equal_hand_computation(setup_eval):
    model, datamodule, tokenizer = setup_eval
    nll, count = hand_nll(model, tokenizer)
    assert count > 2 * BLOCK and count % BLOCK != 0  # several blocks and a partial last one
    text_bytes = sum(len(document.encode("utf-8")) for document in EVAL_DOCUMENTS)

    results = validate(model, datamodule)

    assert results["val/perplexity_en"] == pytest.approx(math.exp(nll / count), rel=1e-5)
    assert results["val/bits_per_byte_en"] == pytest.approx(nll / math.log(2) / text_bytes, rel=1e-5)


def test_blocks_predict_every_token_once_and_count_exact_bytes(setup_eval):
    model, datamodule, tokenizer = setup_eval
    _, count = hand_nll(model, tokenizer)
    metric = LanguageModelingMetric(["en"])
    for batch in datamodule.val_dataloader():
        nll, mask = model.token_nll(batch)
        metric.update(nll, mask, batch["num_bytes"], batch["language"])
        assert bool((batch["targets"][:, 1:] != IGNORE_INDEX).le(batch["targets"][:, :-1] != IGNORE_INDEX).all())
    assert int(metric.tokens[0]) == count
    assert int(metric.bytes[0]) == sum(len(document.encode("utf-8")) for document in EVAL_DOCUMENTS)


def test_uniform_model_has_perplexity_equal_to_vocab_size(setup_eval):
    """Zero token embeddings (tied LM head) give all-zero logits: p = 1/V for every token, in closed form."""
    model, datamodule, tokenizer = setup_eval
    _, count = hand_nll(model, tokenizer)
    text_bytes = sum(len(document.encode("utf-8")) for document in EVAL_DOCUMENTS)
    embedding = model.model.transformer.wte.weight
    saved = embedding.detach().clone()
    try:
        with torch.no_grad():
            embedding.zero_()
        results = validate(model, datamodule)
    finally:
        with torch.no_grad():
            embedding.copy_(saved)
    assert results["val/perplexity_en"] == pytest.approx(VOCAB, rel=1e-5)
    assert results["val/bits_per_byte_en"] == pytest.approx(count * math.log2(VOCAB) / text_bytes, rel=1e-5)


def test_metric_separates_languages_and_skips_padding():
    metric = LanguageModelingMetric(["en", "el"])
    nll = torch.tensor([[1.0, 2.0, 99.0], [0.5, 0.5, 0.5]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    metric.update(nll, mask, num_bytes=torch.tensor([4, 3]), language=torch.tensor([0, 1]))
    values = metric.compute()
    assert float(values["perplexity_en"]) == pytest.approx(math.exp(3.0 / 2))
    assert float(values["bits_per_byte_en"]) == pytest.approx(3.0 / math.log(2) / 4)
    assert float(values["perplexity_el"]) == pytest.approx(math.exp(0.5))
    assert float(values["bits_per_byte_el"]) == pytest.approx(1.5 / math.log(2) / 3)
