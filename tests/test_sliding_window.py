"""Sliding-window evaluation (``data.eval_stride``) against a direct, token-by-token computation.

The protocol under test (datamodules/windows.py): with windows of ``L`` tokens advancing by ``s``, token
``t`` of the evaluated stream (``t ≥ 1``) is predicted exactly once; for ``t ≤ L`` from all earlier
tokens, else from the ``L`` tokens that end just before the last target of its window
``k = ⌈(t - L) / s⌉`` (that window's last target is ``min(L + k·s, n - 1)``).
"""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch

from cognitive_reserve.errors import ConfigError
from datamodules.corpus import LanguageCorpus
from datamodules.text import TextCorpusDataModule
from datamodules.windows import IGNORE_INDEX, TokenWindows
from lightning_modules.gpt2_lm import GPT2LanguageModel
from tests.helpers.gpt2_fixtures import ENGLISH_SAMPLES, GREEK_SAMPLES, evaluation_setup

BLOCK = 16
VOCAB = 300
#: About 150 tokens: several windows for every stride below, and a last window that is not full.
EVAL_DOCUMENTS = [sample.strip() for sample in (*GREEK_SAMPLES[:2], *ENGLISH_SAMPLES)]  # files lose outer blanks


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny random GPT-2 holding a trained tokenizer, and the validation source of EVAL_DOCUMENTS."""
    model, corpus, tokenizer = evaluation_setup(tmp_path_factory.mktemp("sliding"), EVAL_DOCUMENTS, BLOCK, VOCAB)
    return model, corpus, tokenizer


def datamodule(corpus: LanguageCorpus, stride: int | None) -> TextCorpusDataModule:
    return TextCorpusDataModule(
        {"en": corpus}, train_tokens=BLOCK, block_size=BLOCK, eval_batch_size=3, eval_stride=stride
    )


def context_start(t: int, n: int, stride: int) -> int:
    """First stream position token ``t`` is predicted from (module docstring)."""
    if t <= BLOCK:
        return 0
    window = math.ceil((t - BLOCK) / stride)
    return min(BLOCK + window * stride, n - 1) - BLOCK


def direct_nll(model: GPT2LanguageModel, tokenizer, stride: int) -> tuple[float, int]:
    """Σ −log p(token t | its context), one forward pass per token, float64."""
    eos = tokenizer.eos_token_id
    stream = [eos]
    for document in EVAL_DOCUMENTS:
        stream += tokenizer(document, add_special_tokens=False)["input_ids"] + [eos]
    n, total = len(stream), 0.0
    assert n > 6 * BLOCK and (n - 1 - BLOCK) % stride != 0  # several windows, the last one not full
    model.eval()
    with torch.no_grad():
        for t in range(1, n):
            start = context_start(t, n, stride)
            assert min(t, BLOCK - stride + 1) <= t - start <= BLOCK  # at least L - s + 1 tokens of context
            logits = model.model(input_ids=torch.tensor([stream[start:t]])).logits[0, -1].double()
            total -= float(torch.log_softmax(logits, dim=-1)[stream[t]])
    return total, n - 1


def validate(model: GPT2LanguageModel, data: TextCorpusDataModule) -> dict[str, float]:
    trainer = L.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    return trainer.validate(model, datamodule=data, verbose=False)[0]


@pytest.mark.parametrize("stride", [5, 11, BLOCK])
def test_sliding_window_metrics_equal_direct_computation(setup, stride):
    model, corpus, tokenizer = setup
    nll, count = direct_nll(model, tokenizer, stride)
    text_bytes = sum(len(document.encode("utf-8")) for document in EVAL_DOCUMENTS)

    results = validate(model, datamodule(corpus, stride))

    assert results["val/perplexity_en"] == pytest.approx(math.exp(nll / count), rel=1e-5)
    assert results["val/bits_per_byte_en"] == pytest.approx(nll / math.log(2) / text_bytes, rel=1e-5)


def test_every_token_is_predicted_once_with_its_bytes(setup):
    _, corpus, tokenizer = setup
    data = datamodule(corpus, 5)
    data.use_tokenizer(tokenizer)
    (windows,) = data.dataset("validation").datasets
    predicted = torch.zeros(len(windows.stream), dtype=torch.long)
    for index in range(len(windows)):
        item = windows[index]
        last = int(windows.last_target[index])
        start = max(last - BLOCK, 0)
        positions = torch.arange(start + 1, start + BLOCK + 1)[item["targets"] != IGNORE_INDEX]
        assert torch.equal(item["targets"][item["targets"] != IGNORE_INDEX], windows.stream[positions].long())
        predicted[positions] += 1
    assert predicted[0] == 0 and bool((predicted[1:] == 1).all())
    assert int(windows.num_bytes.sum()) == sum(len(document.encode("utf-8")) for document in EVAL_DOCUMENTS)


def test_default_keeps_disjoint_blocks_and_training_never_slides(setup):
    _, corpus, tokenizer = setup
    default, sliding = datamodule(corpus, None), datamodule(corpus, 5)
    for data in (default, sliding):
        data.use_tokenizer(tokenizer)
    for blocks in (*default.dataset("validation").datasets, *sliding.dataset("train").datasets):
        assert torch.equal(blocks.start, torch.arange(len(blocks)) * BLOCK)  # block k reads from k·L …
        assert torch.equal(blocks.first_target, blocks.start + 1)  # … and predicts every token it reads


def test_disjoint_blocks_are_windows_of_stride_block_size_whose_last_block_stays_in_place():
    stream = torch.arange(2 * BLOCK + 6)  # two full blocks and 5 tokens to predict in a third
    byte_lengths = torch.ones(len(stream), dtype=torch.int64)
    blocks, windows = TokenWindows(stream, byte_lengths, BLOCK, 0), TokenWindows(stream, byte_lengths, BLOCK, 0, BLOCK)
    assert len(blocks) == len(windows) == 3
    for block, window in ((blocks[0], windows[0]), (blocks[1], windows[1])):
        assert block.keys() == window.keys()
        assert all(torch.equal(torch.as_tensor(block[key]), torch.as_tensor(window[key])) for key in block)
    block, window = blocks[2], windows[2]
    assert block["input_ids"][:5].tolist() == stream[2 * BLOCK : 2 * BLOCK + 5].tolist()  # from its start, padded
    assert window["input_ids"].tolist() == stream[-BLOCK - 1 : -1].tolist()  # the BLOCK tokens before its last target
    assert block["targets"][block["targets"] != IGNORE_INDEX].tolist() == stream[2 * BLOCK + 1 :].tolist()
    assert window["targets"][window["targets"] != IGNORE_INDEX].tolist() == stream[2 * BLOCK + 1 :].tolist()
    assert int(block["num_bytes"]) == int(window["num_bytes"]) == 5


def test_stride_longer_than_the_window_is_a_config_error(setup):
    _, corpus, _ = setup
    with pytest.raises(ConfigError) as error:
        datamodule(corpus, BLOCK + 1)
    assert str(error.value) == f"data.eval_stride={BLOCK + 1}: must be <= {BLOCK} (data.block_size={BLOCK})"
