"""GPT-2 language models for the monolingual vs bilingual experiment (paper §3, Figures 1 and 4).

``GPT2LanguageModel`` wraps a Hugging Face ``GPT2LMHeadModel`` built from pretrained weights
(``pretrained: gpt2``), from a config (tiny models trained from scratch), or from one of this
module's checkpoints (``init_from``): ``load_weights``. Its tokenizer is inherited from the weights,
loaded from a path, or — ``tokenizer: train`` — a new byte-level BPE of the model's vocabulary size
trained on the run's training text, with freshly initialised token embeddings (tokenizer recycling);
a checkpoint's tokenizer replaces any of them. ``lightning_modules.lm_tokenizer.TokenizerOwner``
owns it and applies that rule in one place.

Checkpoint contract (``load_lm_checkpoint`` reads it; everything loads with ``weights_only=True``):
``state_dict`` keys ``model.<GPT2LMHeadModel key>``, ``gpt2_config`` (plain dict of the
``GPT2Config``), ``tokenizer_json`` (the tokenizer as one JSON string). The tokenizer is also
written to ``<default_root_dir>/tokenizer/`` (``save_pretrained`` format) when training starts.

The tokenizer is handed to the data module in ``setup`` (``use_tokenizer``, as a function the data
calls when it first builds its datasets); the data module never looks at the model.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import lightning as L
import torch
import torch.nn.functional as F
from huggingface_hub.errors import StrictDataclassError
from torchmetrics import MeanMetric
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
from transformers.activations import ACT2FN

from cognitive_reserve.checkpoints import check_finite_weights, load_checkpoint
from cognitive_reserve.errors import ConfigError, check_choice, check_number, check_text, first_line
from cognitive_reserve.fields import Field, check_fields, declarations, declared
from cognitive_reserve.layout import ModelLayout
from cognitive_reserve.provenance import WeightsProvenance, loaded_from
from cognitive_reserve.targets import check_name_patterns
from datamodules.tokenization import check_vocab_size, tokenizer_from_json, tokenizer_to_json
from datamodules.windows import IGNORE_INDEX
from lightning_modules.family import Family
from lightning_modules.gpt2_layout import gpt2_layout
from lightning_modules.lm_metrics import LanguageModelingMetric
from lightning_modules.lm_tokenizer import (
    TRAIN_TOKENIZER,
    TokenizerOwner,
    given_tokenizer,
    load_tokenizer,
    train_on_rank_zero,
)
from lightning_modules.lr_schedule import LrSchedule
from lightning_modules.sweepable import SweepableMixin

#: The ``targets`` field of the GPT-2 models: what their robustness sweeps damage.
ATTENTION_TARGETS = Field(
    "parameters the robustness sweeps damage (regular expressions on names); `attn` selects the "
    "attention weights and biases (`c_attn`, `c_proj`) of every block",
    valid="a regex or a non-empty list of regexes",
    check=check_name_patterns,
    later="matches at least one parameter: at fit/test start",
)
#: Architecture fields a checkpoint must share with the model it is loaded into.
ARCHITECTURE = ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head")


def check_activation(field: str, name: Any) -> str:
    """A name in ``transformers.activations.ACT2FN``."""
    return check_choice(field, name, tuple(ACT2FN))


def check_betas(field: str, betas: Any) -> tuple[float, float]:
    """AdamW's ``(beta1, beta2)``: two numbers in [0, 1)."""
    if isinstance(betas, str) or not isinstance(betas, Sequence) or len(betas) != 2:
        raise ConfigError(field, betas, "give two numbers (beta1, beta2)")
    for beta in betas:
        check_number(field, beta, low=0, high=1, high_open=True)
    return betas


@declared("model.gpt2_config")
class GPT2ConfigFields:
    """The ``GPT2Config`` fields ``model.gpt2_config`` checks (defaults: Hugging Face's); building one
    checks them. Any other ``GPT2Config`` field gets Hugging Face's own type check."""

    def __init__(
        self,
        vocab_size: Annotated[
            int, Field("tokens in the vocabulary", ge=1, valid="integer ≥ 1; ≥ 257 with `tokenizer: train`")
        ] = 50257,
        n_positions: Annotated[int, Field("context length in tokens", ge=1)] = 1024,
        n_embd: Annotated[
            int, Field("width of the residual stream", ge=1, valid="integer ≥ 1, a multiple of `n_head`")
        ] = 768,
        n_layer: Annotated[int, Field("transformer blocks", ge=1)] = 12,
        n_head: Annotated[int, Field("attention heads per block", ge=1)] = 12,
        n_inner: Annotated[int | None, Field("width of the MLP (null: 4 · `n_embd`)", ge=1)] = None,
        activation_function: Annotated[
            str,
            Field(
                "the MLP's activation",
                valid="a name in `transformers.activations.ACT2FN` (`gelu_new`, `gelu`, `relu`, `silu`, …)",
                check=check_activation,
            ),
        ] = "gelu_new",
        resid_pdrop: Annotated[float, Field("dropout of the residual branches", ge=0, le=1)] = 0.1,
        embd_pdrop: Annotated[float, Field("dropout of the embeddings", ge=0, le=1)] = 0.1,
        attn_pdrop: Annotated[float, Field("dropout of the attention weights", ge=0, le=1)] = 0.1,
        summary_first_dropout: Annotated[float, Field("dropout of the sequence summary", ge=0, le=1)] = 0.1,
        layer_norm_epsilon: Annotated[float, Field("epsilon of the layer norms", gt=0)] = 1e-5,
        initializer_range: Annotated[float, Field("std of the initial weights", gt=0)] = 0.02,
    ) -> None:
        check_fields(GPT2ConfigFields, locals())


@declared("model")
class GPT2LanguageModel(SweepableMixin, L.LightningModule):
    """Causal LM on packed blocks; validation/test report per-language perplexity and bits per byte.

    Exactly one of ``pretrained``, ``gpt2_config``, ``init_from`` gives the weights.
    """

    family = Family(
        "gpt2",
        groups=("gpt2",),
        metrics=("bits_per_byte_en", "bits_per_byte_el", "perplexity_en", "perplexity_el"),
        fused_attention=True,
    )

    def __init__(
        self,
        pretrained: Annotated[
            str | None,
            Field(
                "Hugging Face name or directory of pretrained GPT-2 weights (e.g. `gpt2`)",
                valid="null or a name or directory of GPT-2 weights that loads (offline: a local directory)",
                check=check_text,
                later="loaded at construction",
            ),
        ] = None,
        gpt2_config: Annotated[
            dict[str, Any] | None,
            Field(
                "`GPT2Config` fields of a model trained from scratch (e.g. a tiny one for CPU)",
                valid="null or a mapping of `GPT2Config` fields, see the `gpt2_config` table",
                later="at construction (with `tokenizer`; next table)",
            ),
        ] = None,
        init_from: Annotated[
            str | None,
            Field(
                "a checkpoint of this module to start from (weights, config and tokenizer)",
                valid="null or a `GPT2LanguageModel` checkpoint: loads with `weights_only=True`, embeddings and "
                "tokenizer agree with its `gpt2_config`",
                check=check_text,
                later="loaded at construction",
            ),
        ] = None,
        tokenizer: Annotated[
            str | None,
            Field(
                "`train` (new byte-level BPE of the model's vocab size, fresh token embeddings: tokenizer "
                "recycling), a tokenizer name/directory, or null to keep the one of `pretrained`/`init_from`",
                valid="`train`; a name or directory of a fast tokenizer with an end-of-text token and exactly "
                "`vocab_size` tokens; or null (not with `gpt2_config`)",
                check=check_text,
                later="loaded at construction",
            ),
        ] = None,
        name: Annotated[str, Field("the model's name in sweep tables and plots (e.g. `gpt2-bilingual`)")] = "gpt2",
        targets: Annotated[str | list[str], ATTENTION_TARGETS] = "attn",
        lr: Annotated[float, Field("peak learning rate (AdamW)", gt=0)] = 3e-4,
        weight_decay: Annotated[
            float, Field("AdamW weight decay of matrices (biases and LayerNorm weights get none)", ge=0)
        ] = 0.1,
        betas: Annotated[
            tuple[float, float], Field("AdamW betas", valid="two numbers in [0, 1)", check=check_betas)
        ] = (0.9, 0.95),
        lr_warmup_steps: Annotated[
            int, Field("linear learning-rate warm-up, in optimizer steps; cosine decay follows", ge=0)
        ] = 0,
        lr_schedule_steps: Annotated[
            int | None,
            Field(
                "optimizer steps the warm-up + cosine schedule spans, in global steps (null: the trainer's "
                "estimate, `max_steps` or epochs × batches); set it when a run is continued from a checkpoint "
                "(Figure 5's branches) so the base and its continuations follow one schedule",
                ge=1,
            ),
        ] = None,
        min_lr_ratio: Annotated[float, Field("final learning rate as a fraction of `lr`", ge=0, le=1)] = 0.1,
        embedding_warmup_steps: Annotated[
            int,
            Field(
                "train only the token embeddings for this many optimizer steps, then everything (with its own "
                "warm-up); used after tokenizer recycling",
                ge=0,
            ),
        ] = 0,
        init_seed: Annotated[int, Field("seed of re-initialised token embeddings")] = 0,
    ) -> None:
        super().__init__()
        given = {"pretrained": pretrained, "gpt2_config": gpt2_config, "init_from": init_from}
        if sum(value is not None for value in given.values()) != 1:
            chosen = {key: value for key, value in given.items() if value is not None}
            raise ConfigError("model.pretrained/gpt2_config/init_from", chosen, "give exactly one source of weights")
        check_fields(GPT2LanguageModel, locals())
        if gpt2_config is not None:
            gpt2_config = check_gpt2_config(gpt2_config, trains_tokenizer=tokenizer == TRAIN_TOKENIZER)
        self.save_hyperparameters()
        self.model, with_weights = load_weights(pretrained, gpt2_config, init_from)
        self.tokenizer_owner = TokenizerOwner(self.model, given_tokenizer(tokenizer, with_weights), tokenizer)
        self.robustness_name = name
        self.robustness_targets = targets
        self.languages: list[str] = []
        self._tokenizer_saved = False

    def weights_origin(self, seed: int | None) -> WeightsProvenance:
        """As built: the ``init_from``/``pretrained`` weights (with fresh token embeddings under ``tokenizer: train``),
        or initial weights from ``seed``."""
        recycled = "the token embeddings (tokenizer: train)" if self.hparams.tokenizer == TRAIN_TOKENIZER else None
        for source in ("init_from", "pretrained"):
            if self.hparams[source] is not None:
                return loaded_from(source, self.hparams[source], recycled, self.hparams.init_seed)
        return WeightsProvenance("initial", seed=seed)

    # ---- tokenizer ----------------------------------------------------------------------------

    @property
    def tokenizer(self) -> PreTrainedTokenizerFast | None:
        """The tokenizer that counts now (``TokenizerOwner``); None with ``tokenizer: train`` before training."""
        return self.tokenizer_owner.current

    def lm_tokenizer(self, datamodule: Any) -> PreTrainedTokenizerFast:
        """The model's tokenizer; with ``tokenizer: train`` and none restored it is trained (once) on the
        datamodule's text, on global rank 0 and broadcast, and every process re-initialises the token
        embeddings identically. During ``fit`` the tokenizer is also saved under
        ``<default_root_dir>/tokenizer/``.
        """
        trainer = self._trainer
        train = functools.partial(train_on_rank_zero, trainer, datamodule.tokenizer_training_text)
        tokenizer = self.tokenizer_owner.get_or_train(train, self.hparams.init_seed)
        if not self._tokenizer_saved and trainer is not None and trainer.state.fn == "fit":
            if trainer.is_global_zero:
                tokenizer.save_pretrained(Path(trainer.default_root_dir) / "tokenizer")
            self._tokenizer_saved = True
        return tokenizer

    def check_data(self, datamodule: Any, restores: bool) -> None:
        """What can be checked against the data before anything is created (``run.py`` calls it): a tokenizer this
        run will train (``tokenizer: train``, none given, none restored from a checkpoint) finds enough text."""
        if self.tokenizer is None and not restores and hasattr(datamodule, "check_tokenizer_text"):
            datamodule.check_tokenizer_text(self.model.config.vocab_size)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.tokenizer is None:
            raise RuntimeError("no tokenizer yet: a checkpoint is saved before the data was tokenized")
        checkpoint["tokenizer_json"] = tokenizer_to_json(self.tokenizer)
        checkpoint["gpt2_config"] = plain_config(self.model.config)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        config, tokenizer = _checkpoint_config_and_tokenizer(checkpoint, "ckpt_path")
        mismatched = {
            k: (config.get(k), getattr(self.model.config, k))
            for k in ARCHITECTURE
            if config.get(k) != getattr(self.model.config, k)
        }
        if mismatched:
            raise ConfigError(
                "ckpt_path",
                {k: checkpoint_value for k, (checkpoint_value, _) in mismatched.items()},
                "checkpoint architecture differs from the model's "
                f"{ ({k: own for k, (_, own) in mismatched.items()}) }",
            )
        self.tokenizer_owner.restore(tokenizer)

    # ---- Lightning hooks ----------------------------------------------------------------------

    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule
        languages = getattr(datamodule, "languages", None)
        if not languages:
            raise ConfigError("data", type(datamodule).__name__, "GPT2LanguageModel needs a datamodule with languages")
        self.languages = list(languages)
        self.robustness_num_tasks = len(self.languages)
        block_size = getattr(datamodule, "block_size", None)
        if block_size is not None and block_size > self.model.config.n_positions:
            raise ConfigError(
                "data.block_size",
                block_size,
                f"exceeds the model's context n_positions={self.model.config.n_positions}",
            )
        if hasattr(datamodule, "use_tokenizer"):
            # handed over as a function: read when the data is first built, after a --ckpt_path
            # checkpoint has restored its tokenizer, so `tokenizer: train` trains only when none is restored
            datamodule.use_tokenizer(functools.partial(self.lm_tokenizer, datamodule))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Next-token logits (batch × positions × vocab)."""
        return self.model(input_ids=input_ids).logits

    def token_nll(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """NLL in nats of every target token (batch × positions, float32) and the mask of real targets."""
        logits = self(batch["input_ids"])
        targets = batch["targets"]
        nll = F.cross_entropy(
            logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE_INDEX, reduction="none"
        )
        return nll.view_as(targets), targets != IGNORE_INDEX

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        nll, mask = self.token_nll(batch)
        loss = nll.sum() / mask.sum()
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._start_eval()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch)

    def on_validation_epoch_end(self) -> None:
        self._log_eval("val")

    def on_test_epoch_start(self) -> None:
        self._start_eval()

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch)

    def on_test_epoch_end(self) -> None:
        self._log_eval("test")

    def _start_eval(self) -> None:
        self.eval_metric = LanguageModelingMetric(self.languages).to(self.device)
        self.eval_loss = MeanMetric().to(self.device)

    def _eval_step(self, batch: dict[str, torch.Tensor]) -> None:
        nll, mask = self.token_nll(batch)
        self.eval_metric.update(nll, mask, batch["num_bytes"], batch["language"])
        self.eval_loss.update(nll[mask])

    def _log_eval(self, prefix: str) -> None:
        values = {f"{prefix}/{key}": value.float() for key, value in self.eval_metric.compute().items()}
        values[f"{prefix}/loss"] = self.eval_loss.compute().float()
        self.log_dict(values, prog_bar=False, sync_dist=True)

    def configure_optimizers(self) -> dict[str, Any]:
        embedding = self.model.get_input_embeddings().weight
        rest = [p for p in self.model.parameters() if p is not embedding]
        groups = [
            {"params": [embedding], "weight_decay": self.hparams.weight_decay},
            {"params": [p for p in rest if p.ndim >= 2], "weight_decay": self.hparams.weight_decay},
            {"params": [p for p in rest if p.ndim < 2], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, lr=self.hparams.lr, betas=tuple(self.hparams.betas))
        total = self.lr_schedule_steps()
        warmup, ratio = self.hparams.lr_warmup_steps, self.hparams.min_lr_ratio
        embeddings_only = self.hparams.embedding_warmup_steps
        schedules = [
            LrSchedule(warmup, total, ratio),
            LrSchedule(warmup, total, ratio, start=embeddings_only),
            LrSchedule(warmup, total, ratio, start=embeddings_only),
        ]
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedules)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def lr_schedule_steps(self) -> int:
        """Optimizer steps the LR schedule spans: ``lr_schedule_steps``, else the trainer's estimate (0 if unknown)."""
        if self.hparams.get("lr_schedule_steps") is not None:
            return self.hparams.lr_schedule_steps
        steps = self.trainer.estimated_stepping_batches
        return int(steps) if math.isfinite(steps) else 0

    # ---- robustness sweep hook ----------------------------------------------------------------

    def robustness_layout(self) -> ModelLayout:
        return gpt2_layout(self.model, prefix="model.")

    def robustness_metric(self) -> LanguageModelingMetric:
        return LanguageModelingMetric(self.languages)

    def robustness_update(self, metric: LanguageModelingMetric, batch: dict[str, torch.Tensor]) -> None:
        context = self._trainer.precision_plugin.forward_context() if self._trainer is not None else nullcontext()
        with context:
            nll, mask = self.token_nll(batch)
        metric.update(nll, mask, batch["num_bytes"], batch["language"])


def load_lm_checkpoint(
    path: str | Path, field: str = "checkpoint"
) -> tuple[GPT2Config, dict[str, torch.Tensor], PreTrainedTokenizerFast]:
    """``(GPT2Config, GPT2LMHeadModel state dict, tokenizer)`` from a ``GPT2LanguageModel`` checkpoint.

    Loads with ``torch.load(weights_only=True, mmap=True)`` on the CPU (optimizer states are not
    read into memory). The state dict's keys are those of ``GPT2LMHeadModel`` (``transformer.*``,
    ``lm_head.weight``), so ``GPT2ForSequenceClassification`` takes its ``transformer.*`` part.
    Raises ``ConfigError(field, path)`` for a missing file, a file that is not such a checkpoint
    (``cognitive_reserve.checkpoints.load_checkpoint``), non-finite weights (a diverged run), or a tokenizer
    whose size differs from the embeddings.
    """
    checkpoint = load_checkpoint(path, field, mmap=True)
    check_finite_weights(checkpoint, field, path)
    config_dict, tokenizer = _checkpoint_config_and_tokenizer(checkpoint, field, str(path))
    config = GPT2Config.from_dict(config_dict)
    state = {
        key.removeprefix("model."): value for key, value in checkpoint["state_dict"].items() if key.startswith("model.")
    }
    rows = state["transformer.wte.weight"].shape[0] if "transformer.wte.weight" in state else None
    if rows != config.vocab_size:
        raise ConfigError(
            field, str(path), f"token embeddings have {rows} rows but gpt2_config.vocab_size is {config.vocab_size}"
        )
    check_vocab_size(tokenizer, config.vocab_size, field, str(path))
    return config, state, tokenizer


def plain_config(config: GPT2Config) -> dict[str, Any]:
    """The config as JSON-safe plain types (loads with ``weights_only=True``)."""
    return json.loads(config.to_json_string(use_diff=False))


def _checkpoint_config_and_tokenizer(
    checkpoint: dict[str, Any], field: str, value: object = None
) -> tuple[dict[str, Any], PreTrainedTokenizerFast]:
    missing = sorted({"gpt2_config", "tokenizer_json"} - set(checkpoint))
    if missing:
        raise ConfigError(field, value, f"not a GPT2LanguageModel checkpoint (missing {missing})")
    return checkpoint["gpt2_config"], tokenizer_from_json(checkpoint["tokenizer_json"])


def load_weights(
    pretrained: str | None, gpt2_config: dict[str, Any] | None, init_from: str | None
) -> tuple[GPT2LMHeadModel, Callable[[], PreTrainedTokenizerFast] | None]:
    """The model from its one source of weights, and how to load the tokenizer that comes with them (None for
    a model built from ``gpt2_config``: none comes with it)."""
    if init_from is not None:
        config, state, tokenizer = load_lm_checkpoint(init_from, field="model.init_from")
        model = GPT2LMHeadModel(config)
        model.load_state_dict(state)
        return model, lambda: tokenizer
    if pretrained is not None:
        try:
            model = GPT2LMHeadModel.from_pretrained(pretrained, dtype=torch.float32)
        except OSError as err:
            raise ConfigError("model.pretrained", pretrained, first_line(err)) from None
        return model.train(), functools.partial(load_tokenizer, "model.pretrained", pretrained)
    try:
        return GPT2LMHeadModel(GPT2Config(**gpt2_config)), None
    except (TypeError, ValueError, KeyError, RuntimeError, ArithmeticError, StrictDataclassError) as err:
        raise ConfigError("model.gpt2_config", gpt2_config, first_line(err)) from None


#: Smallest vocabulary a trained byte-level BPE can have: 256 bytes and ``<|endoftext|>``.
MIN_TRAINED_VOCAB = 257


def check_gpt2_config(config: Any, trains_tokenizer: bool) -> dict[str, Any]:
    """``model.gpt2_config``: known ``GPT2Config`` fields with sizes, rates and shapes a model can have.

    Returns the config with its real-valued fields as floats (``GPT2Config`` refuses ``1`` for ``1.0``).
    """
    if not isinstance(config, Mapping):
        raise ConfigError("model.gpt2_config", config, "must be a mapping of GPT2Config fields")
    known = {f.name for f in dataclasses.fields(GPT2Config)} | set(GPT2Config().to_dict())
    unknown = sorted(str(key) for key in config if key not in known)
    if unknown:
        raise ConfigError(f"model.gpt2_config.{unknown[0]}", config[unknown[0]], "not a GPT2Config field")
    declared_names = {d.name for d in declarations(GPT2ConfigFields)}
    GPT2ConfigFields(**{key: value for key, value in config.items() if key in declared_names})
    defaults = GPT2Config()
    n_embd, n_head = config.get("n_embd", defaults.n_embd), config.get("n_head", defaults.n_head)
    if n_embd % n_head:
        raise ConfigError("model.gpt2_config.n_embd", n_embd, f"must be a multiple of n_head={n_head}")
    vocab_size = config.get("vocab_size", defaults.vocab_size)
    if trains_tokenizer and vocab_size < MIN_TRAINED_VOCAB:
        raise ConfigError(
            "model.gpt2_config.vocab_size",
            vocab_size,
            f"tokenizer: train needs at least {MIN_TRAINED_VOCAB} tokens (256 bytes + end of text)",
        )
    reals = {d.name for d in declarations(GPT2ConfigFields) if d.kind is float}
    return {key: float(value) if key in reals else value for key, value in config.items()}
