"""Tokenizer recycling: exact vocabulary, lossless round trips in English and Greek, fresh embeddings of
unchanged shape, the embeddings-only warm-up, and the tokenizer travelling with the checkpoint."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

import lightning_modules.lm_tokenizer as lm_tokenizer
from cognitive_reserve.errors import ConfigError
from datamodules.tokenization import (
    END_OF_TEXT,
    token_byte_lengths,
    tokenizer_from_json,
    tokenizer_to_json,
    train_byte_level_bpe,
)
from lightning_modules.gpt2_lm import GPT2LanguageModel, load_lm_checkpoint
from lightning_modules.lm_tokenizer import TokenizerOwner
from tests.helpers.gpt2_fixtures import ENGLISH_SAMPLES, GREEK_SAMPLES, TINY_GPT2, tiny_corpus, tiny_datamodule

ROUND_TRIP = [
    *GREEK_SAMPLES,
    *ENGLISH_SAMPLES,
    "ς σ Σ — ά ὰ ᾶ (polytonic, unseen in training) 🙂 漢字",
    "line one\nγραμμή δύο\n\n  trailing spaces  ",
]


@pytest.fixture(scope="module")
def bilingual(tmp_path_factory):
    paths = tiny_corpus(tmp_path_factory.mktemp("corpus"), kilobytes=8)
    return paths, tiny_datamodule(paths, ("en", "el"))


def test_recycled_tokenizer_round_trips_with_exact_vocab_and_same_embedding_shape(bilingual):
    _, datamodule = bilingual
    model = GPT2LanguageModel(gpt2_config=TINY_GPT2, tokenizer="train", init_seed=3)
    embedding = model.model.get_input_embeddings().weight
    before, attention = embedding.detach().clone(), model.model.transformer.h[0].attn.c_attn.weight.detach().clone()

    tokenizer = model.lm_tokenizer(datamodule)

    assert len(tokenizer) == TINY_GPT2["vocab_size"] == tokenizer.backend_tokenizer.get_vocab_size()
    for text in ROUND_TRIP:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids) == text
        assert int(token_byte_lengths(tokenizer)[ids].sum()) == len(text.encode("utf-8"))
    assert len(tokenizer("ελληνική γλώσσα")["input_ids"]) < len("ελληνική γλώσσα".encode())  # learned Greek merges
    assert tokenizer.convert_ids_to_tokens(tokenizer.eos_token_id) == END_OF_TEXT
    assert model.model.config.eos_token_id == model.model.config.bos_token_id == tokenizer.eos_token_id
    after = model.model.get_input_embeddings().weight
    assert after.shape == before.shape and not torch.equal(after, before)  # re-initialised, same shape
    assert model.model.lm_head.weight is after  # still tied
    assert after.std().item() == pytest.approx(model.model.config.initializer_range, rel=0.1)
    assert torch.equal(model.model.transformer.h[0].attn.c_attn.weight, attention)  # the rest is untouched
    assert model.lm_tokenizer(datamodule) is tokenizer  # trained once


def test_tokenizer_survives_json_and_needs_enough_text():
    tokenizer = train_byte_level_bpe(GREEK_SAMPLES * 20 + ENGLISH_SAMPLES * 20, 300)
    again = tokenizer_from_json(tokenizer_to_json(tokenizer))
    for text in ROUND_TRIP:
        assert again(text)["input_ids"] == tokenizer(text)["input_ids"]
    with pytest.raises(ConfigError) as err:
        train_byte_level_bpe(["tiny text"], 5000)
    assert (err.value.field, err.value.value) == ("model.gpt2_config.vocab_size", 5000)


def test_one_owner_decides_checkpoint_over_given_over_trained():
    model = GPT2LMHeadModel(GPT2Config(**TINY_GPT2))
    given, restored = (
        train_byte_level_bpe(texts * 30, TINY_GPT2["vocab_size"]) for texts in (ENGLISH_SAMPLES, ROUND_TRIP)
    )
    assert given.get_vocab() != restored.get_vocab()

    def refuse(vocab_size):
        raise AssertionError("trained a tokenizer although one was given")

    owner = TokenizerOwner(model, given, "some/directory")
    assert owner.get_or_train(refuse, init_seed=0) is given
    owner.restore(restored)
    assert owner.current is restored and owner.get_or_train(refuse, init_seed=0) is restored
    assert model.config.eos_token_id == model.config.bos_token_id == restored.eos_token_id
    assert TokenizerOwner(model, None, "train").current is None  # trained on first use (test above)
    wrong = train_byte_level_bpe(ENGLISH_SAMPLES * 30, 300)
    with pytest.raises(ConfigError) as err:
        TokenizerOwner(model, wrong, "other/directory")
    assert (err.value.field, err.value.value) == ("model.tokenizer", "other/directory")
    with pytest.raises(ConfigError) as err:
        owner.restore(wrong)
    assert err.value.field == "ckpt_path" and owner.current is restored


class ParameterTrace(L.Callback):
    """Copies of one attention matrix and the token embeddings after every optimizer step."""

    def __init__(self) -> None:
        self.attention, self.embedding = [], []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.attention.append(pl_module.model.transformer.h[0].attn.c_attn.weight.detach().clone())
        self.embedding.append(pl_module.model.get_input_embeddings().weight.detach().clone())


def test_embeddings_only_warmup_then_everything_and_tokenizer_in_checkpoint(bilingual, tmp_path):
    _, datamodule = bilingual
    model = GPT2LanguageModel(gpt2_config=TINY_GPT2, tokenizer="train", embedding_warmup_steps=3, lr=1e-2)
    initial_attention = model.model.transformer.h[0].attn.c_attn.weight.detach().clone()
    trace = ParameterTrace()
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_steps=5, logger=False, callbacks=[trace], limit_val_batches=0,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(model, datamodule=datamodule)

    assert all(torch.equal(weights, initial_attention) for weights in trace.attention[:3])  # frozen: lr 0
    assert not torch.equal(trace.attention[3], initial_attention)  # step 4: everything trains
    assert not torch.equal(trace.embedding[0], trace.embedding[1])  # embeddings train from step 1
    assert (tmp_path / "tokenizer" / "tokenizer.json").is_file()

    trainer.save_checkpoint(tmp_path / "model.ckpt")
    checkpoint = torch.load(tmp_path / "model.ckpt", weights_only=True)  # plain types only
    assert isinstance(checkpoint["tokenizer_json"], str)
    config, state, tokenizer = load_lm_checkpoint(tmp_path / "model.ckpt")
    assert config.vocab_size == len(tokenizer) == TINY_GPT2["vocab_size"]
    assert tokenizer.get_vocab() == model.tokenizer.get_vocab()
    assert torch.equal(state["transformer.wte.weight"], model.model.transformer.wte.weight)


def test_a_restored_tokenizer_reaches_the_data_and_train_does_not_train_another(bilingual, tmp_path, monkeypatch):
    paths, _ = bilingual
    options = {"accelerator": "cpu", "devices": 1, "logger": False, "enable_progress_bar": False,
               "enable_model_summary": False, "enable_checkpointing": False, "default_root_dir": tmp_path}  # fmt: skip
    trained = GPT2LanguageModel(gpt2_config=TINY_GPT2, tokenizer="train")
    trainer = L.Trainer(max_steps=1, limit_val_batches=0, **options)
    trainer.fit(trained, datamodule=tiny_datamodule(paths, ("en", "el")))
    trainer.save_checkpoint(tmp_path / "model.ckpt")

    def refuse(*args, **kwargs):
        raise AssertionError("trained a tokenizer although the checkpoint brings one")

    monkeypatch.setattr(lm_tokenizer, "train_byte_level_bpe", refuse)
    restored, data = GPT2LanguageModel(gpt2_config=TINY_GPT2, tokenizer="train"), tiny_datamodule(paths, ("en", "el"))
    L.Trainer(limit_val_batches=1, **options).validate(restored, datamodule=data, ckpt_path=tmp_path / "model.ckpt")
    assert data.tokenizer is restored.tokenizer  # handed over by the model, after the restore
    assert data.tokenizer.get_vocab() == trained.tokenizer.get_vocab()
