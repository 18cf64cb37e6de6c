"""The fast sweep gives exactly the numbers of the naive one (``tests/helpers/naive.py``: deepcopy per trial,
evaluation batches rebuilt from the raw data, perturbations through temporary buffers)."""

from __future__ import annotations

import lightning as L
import pytest
import torch

import lightning_modules.gpt2_lm as gpt2_lm
from callbacks.perturbation_sweep import PerturbationSweep
from cognitive_reserve import GaussianNoise, MagnitudePruning, RandomDeletion, SweepGrid, run_sweep
from cognitive_reserve.perturbations import CHUNK_ELEMENTS
from datamodules.digits import DigitsTasksDataModule
from lightning_modules.linear import LinearMultitaskRegression
from tests.helpers.gpt2_fixtures import TINY_GPT2, tiny_corpus, tiny_datamodule
from tests.helpers.naive import naive_perturb_, naive_sweep

GRIDS = [
    SweepGrid("random_deletion", [0.0, 0.3], trials=2),
    SweepGrid("gaussian_noise", [0.0, 0.1], trials=2),
    SweepGrid("magnitude_pruning", [0.2, 0.5]),
    SweepGrid("magnitude_pruning", [0.5], options={"scope": "global"}),
]
PERTURBATIONS = [GaussianNoise(0.3), RandomDeletion(0.4), MagnitudePruning(0.35), MagnitudePruning(0.6, scope="global")]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny_corpus(tmp_path_factory.mktemp("corpus"))


def tiny_lm(corpus) -> tuple[gpt2_lm.GPT2LanguageModel, object]:
    """A tiny GPT-2 LM with random biases too (no ties at zero) and its datamodule."""
    torch.manual_seed(0)
    model = gpt2_lm.GPT2LanguageModel(
        gpt2_config={**TINY_GPT2, "bos_token_id": 0, "eos_token_id": 0}, tokenizer="train"
    )
    datamodule = tiny_datamodule(corpus, ("en", "el"))
    datamodule.use_tokenizer(model.lm_tokenizer(datamodule))
    model.languages = datamodule.languages
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.normal_(0, 0.02)
    return model.eval(), datamodule


def test_gpt2_sweep_equals_the_naive_sweep_and_restores_the_weights(corpus):
    model, datamodule = tiny_lm(corpus)
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def rebuild():
        fresh = tiny_datamodule(corpus, ("en", "el"))
        fresh.use_tokenizer(datamodule.tokenizer)
        return list(fresh.test_dataloader())

    fast = run_sweep(model.robustness_subjects(rebuild())[0], GRIDS, seed=3)
    assert fast == naive_sweep(model, rebuild, GRIDS, seed=3)
    clean = {r.metric: r.value for r in fast if r.level == 0.0 and r.perturbation == "random_deletion"}
    damaged = [r for r in fast if r.perturbation == "gaussian_noise" and r.level == 0.1]
    assert len(clean) == 4 and all(r.value != clean[r.metric] for r in damaged)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_linear_sweep_with_closed_forms_equals_the_naive_sweep_in_place_and_stacked(tmp_path):
    arguments = {"task_grid": [1, 3], "train_examples": 60, "batch_size": 64}
    model = LinearMultitaskRegression(k=2)
    trainer = L.Trainer(
        max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(model, DigitsTasksDataModule(**arguments))

    def rebuild():
        datamodule = DigitsTasksDataModule(**arguments)
        datamodule.setup("test")
        return list(datamodule.test_dataloader())

    subject = model.robustness_subjects(rebuild())[1]
    fast = run_sweep(subject, GRIDS, seed=1)
    assert fast == naive_sweep(model, rebuild, GRIDS, seed=1, subject_index=1)
    assert {r.expected is None for r in fast} == {True, False}  # closed forms compared too
    for trial_batch in (2, 7, 64):  # damaged copies scored together: the same numbers, bit for bit
        assert run_sweep(subject, GRIDS, seed=1, trial_batch=trial_batch) == fast


def with_ties(numel: int, dtype: torch.dtype, seed: int) -> torch.Tensor:
    """Values from a small set (many exact ties, ±0), plus NaN and ±inf, in a random order."""
    generator = torch.Generator().manual_seed(seed)
    values = torch.tensor([0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 1.5, 2.0, float("nan"), float("inf"), -float("inf")])
    picks = torch.randint(0, 8, (numel,), generator=generator)
    picks[torch.randperm(numel, generator=generator)[:3]] = torch.tensor([8, 9, 10])
    return values[picks].to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("perturbation", PERTURBATIONS, ids=repr)
def test_in_place_draws_equal_temporary_buffers_bit_for_bit(perturbation, dtype):
    """Over a tensor spanning several chunks (radix selection) and a small one (kthvalue), with ties."""
    shapes = [(2 * CHUNK_ELEMENTS + 7,), (40, 13)]

    def tensors(seed: int) -> list[torch.Tensor]:
        if isinstance(perturbation, MagnitudePruning):
            return [with_ties(torch.Size(s).numel(), dtype, seed + i).reshape(s) for i, s in enumerate(shapes)]
        return [
            torch.randn(s, generator=torch.Generator().manual_seed(seed + i)).to(dtype) for i, s in enumerate(shapes)
        ]

    results = []
    for mode in ("originals", "buffers", "naive"):
        live, originals = tensors(5), tensors(5)
        generator = torch.Generator().manual_seed(11)
        if mode == "naive":
            naive_perturb_(perturbation, live, generator)
        else:
            perturbation.apply_(live, generator, originals if mode == "originals" else None)
        results.append([t.view(torch.uint8) for t in live])
    for other in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(results[0], other, strict=True))
    assert not all(torch.equal(a, b.view(torch.uint8)) for a, b in zip(results[0], tensors(5), strict=True))


def test_bf16_autocast_is_off_by_default_and_close_to_float32(corpus):
    model, datamodule = tiny_lm(corpus)
    subject = model.robustness_subjects(list(datamodule.test_dataloader()))[0]
    grids = [SweepGrid("gaussian_noise", [0.0, 0.05], trials=2)]
    full = run_sweep(subject, grids, seed=0)
    half = run_sweep(subject, grids, seed=0, autocast=torch.bfloat16)
    assert full == run_sweep(subject, grids, seed=0, autocast=None)
    assert [r.value for r in half] != [r.value for r in full]
    assert all(abs(h.value - f.value) <= 1e-2 * abs(f.value) for h, f in zip(half, full, strict=True))
    assert not PerturbationSweep({"gaussian_noise": {"levels": [0.1]}}).autocast


def test_per_epoch_sweeps_under_inference_mode_leave_training_untouched(corpus, tmp_path):
    """Training with a per-epoch sweep ends with bitwise the weights of training without one: the sweep
    restores every weight, consumes no training randomness and leaves no inference tensor behind."""

    def fit(callbacks: list) -> dict[str, torch.Tensor]:
        L.seed_everything(0)
        model = gpt2_lm.GPT2LanguageModel(
            gpt2_config={**TINY_GPT2, "bos_token_id": 0, "eos_token_id": 0}, tokenizer="train", lr=3e-3
        )
        trainer = L.Trainer(
            max_epochs=2, limit_val_batches=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, default_root_dir=tmp_path, callbacks=callbacks,
        )  # fmt: skip
        trainer.fit(model, datamodule=tiny_datamodule(corpus, ("en",)))
        return {k: v.clone() for k, v in model.state_dict().items()}

    sweep = PerturbationSweep(
        {"random_deletion": {"levels": [0.0, 0.5], "trials": 2}, "magnitude_pruning": {"levels": [0.3]}},
        every_n_epochs=1, at_train_end=False, at_test=False, max_eval_samples=8, progress=False,
    )  # fmt: skip
    swept, plain = fit([sweep]), fit([])
    assert (tmp_path / "robustness" / "sweep_train_epoch001.csv").is_file()
    for key, value in plain.items():
        assert torch.equal(swept[key], value), key
