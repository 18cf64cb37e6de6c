"""GPT-2 fine-tuned on a GLUE task (paper §3 "Text Classification", Table 2, Figure 6).

``GPT2GlueClassifier`` wraps Hugging Face's ``GPT2ForSequenceClassification`` initialised from

- a ``GPT2LanguageModel`` checkpoint of this project (``.ckpt``; its recycled tokenizer comes with
  it), read by ``lightning_modules.gpt2_lm.load_lm_checkpoint``, or
- a Hugging Face model directory or hub name (``from_pretrained``; safetensors preferred), with
  the tokenizer saved next to it.

The transformer body is loaded, the classification head ``score`` is new. GPT-2 has no pad token:
the pad token is eos. The classifier reads the hidden state of each sequence's **last real token**,
found from the ``attention_mask`` of right-padded batches. (HF's own ``forward`` takes the
rightmost token that differs from ``pad_token_id``; with pad = eos that is wrong for a sequence
that ends in eos, e.g. a pair with an empty second text, so it is not used for pooling.)

Metrics (torchmetrics, reduced across processes): Matthews correlation for CoLA, accuracy for the
other tasks, F1 too for MRPC and QQP; logged every validation epoch as ``val/<metric>`` and by
``run.py test`` as ``test/<metric>``. The robustness sweep damages the attention weights and
biases (``attn``) and reports the same metrics; ``num_tasks`` in its CSV is the number of
languages the checkpoint was pretrained on.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics import MetricCollection
from torchmetrics.classification import BinaryAccuracy, BinaryF1Score, BinaryMatthewsCorrCoef
from transformers import AutoConfig, AutoTokenizer, GPT2ForSequenceClassification, PreTrainedTokenizerBase

from cognitive_reserve.errors import ConfigError, check_text, first_line
from cognitive_reserve.fields import Field, check_fields, declared
from cognitive_reserve.layout import ModelLayout
from cognitive_reserve.provenance import WeightsProvenance, loaded_from
from datamodules.glue_tasks import GlueTask, check_glue_task
from lightning_modules.family import Family
from lightning_modules.gpt2_layout import gpt2_layout
from lightning_modules.gpt2_lm import ATTENTION_TARGETS, load_lm_checkpoint
from lightning_modules.sweepable import SweepableMixin

#: Number of pretraining languages implied by the usual ``pretraining`` labels.
LANGUAGES_OF = {"mono": 1, "bi": 2}


def check_label(field: str, label: Any) -> str:
    """A non-empty label without ``-`` (it becomes part of a model name ``gpt2-<label>-<task>``)."""
    if not isinstance(label, str) or not label or "-" in label:
        raise ConfigError(field, label, "must be a non-empty label without '-' (mono, bi)")
    return label


@declared("model")
class GPT2GlueClassifier(SweepableMixin, L.LightningModule):
    """GPT-2 sequence classifier for one GLUE task, fine-tuned from a language-model checkpoint."""

    family = Family(
        "glue",
        groups=("glue",),
        metrics=("accuracy", "f1", "mcc"),
        stages=("test", "train"),
        fused_attention=True,
        glue_tables=True,
    )

    def __init__(
        self,
        task: Annotated[
            str,
            Field(
                "GLUE task; must equal the data's",
                valid="`cola`, `sst2`, `mrpc`, `qqp`, `qnli`, `rte`",
                check=check_glue_task,
                later="same as the data's: at setup",
            ),
        ],
        init_from: Annotated[
            str | None,
            Field(
                "the pretrained language model: a `GPT2LanguageModel` checkpoint of this project (`.ckpt`, tokenizer "
                "included), or a Hugging Face GPT-2 directory / hub name (weights and tokenizer, e.g. `gpt2`)",
                valid="required: a `.ckpt`, or an HF GPT-2 directory / hub name whose tokenizer has an eos token and "
                "at most `vocab_size` tokens (loaded at construction)",
                check=check_text,
            ),
        ] = None,
        pretraining: Annotated[
            str,
            Field(
                "label of the checkpoint's pretraining, e.g. `mono` or `bi`; names the model "
                "`gpt2-<pretraining>-<task>` in sweep CSVs, tables and plots",
                valid="non-empty label without `-`",
                check=check_label,
            ),
        ] = "mono",
        num_languages: Annotated[
            int | None,
            Field(
                "languages the checkpoint was pretrained on (the sweep CSV's `num_tasks`); "
                "null: 1 for `mono`, 2 for `bi`",
                ge=1,
            ),
        ] = None,
        name: Annotated[
            str | None, Field("overrides the model's name in sweep CSVs (null: `gpt2-<pretraining>-<task>`)")
        ] = None,
        targets: Annotated[str | list[str], ATTENTION_TARGETS] = "attn",
        lr: Annotated[float, Field("peak AdamW learning rate", gt=0)] = 2e-5,
        weight_decay: Annotated[
            float, Field("AdamW weight decay of matrices (biases and LayerNorm weights get none)", ge=0)
        ] = 0.01,
        warmup_ratio: Annotated[
            float, Field("fraction of the optimizer steps with a linear warm-up; linear decay to 0 follows", ge=0, lt=1)
        ] = 0.1,
    ) -> None:
        super().__init__()
        self.task: GlueTask = check_fields(GPT2GlueClassifier, locals())["task"]
        if init_from is None:
            raise ConfigError(
                "model.init_from", init_from, "required: a GPT2LanguageModel .ckpt or an HF GPT-2 directory / hub name"
            )
        if num_languages is None:
            if pretraining not in LANGUAGES_OF:
                raise ConfigError(
                    "model.num_languages", None, f"give it for pretraining={pretraining!r} (known: {LANGUAGES_OF})"
                )
            num_languages = LANGUAGES_OF[pretraining]
        self.save_hyperparameters()
        self.model, self.tokenizer = build_classifier(init_from, self.task.num_labels)
        self.robustness_name = name or f"gpt2-{pretraining}-{task}"
        self.robustness_num_tasks = num_languages
        self.robustness_targets = targets
        self.val_metrics = glue_metrics(self.task).clone(prefix="val/")
        self.test_metrics = glue_metrics(self.task).clone(prefix="test/")

    def weights_origin(self, seed: int | None) -> WeightsProvenance:
        """As built: the ``init_from`` body, and a new classification head (initial weights from ``seed``)."""
        return loaded_from("init_from", self.hparams.init_from, "the classification head (score)", seed)

    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule
        data_task = getattr(getattr(datamodule, "task", None), "name", None)
        if data_task != self.task.name:
            raise ConfigError("model.task", self.task.name, f"differs from the data's task {data_task!r}")
        max_length = getattr(datamodule, "max_length", 0)
        if max_length > self.model.config.n_positions:
            raise ConfigError(
                "data.max_length",
                max_length,
                f"exceeds the model's context n_positions={self.model.config.n_positions}",
            )
        datamodule.use_tokenizer(self.tokenizer)  # the tokenizer comes with init_from, built in one place

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Class logits (batch × labels) read at the last real token of each right-padded sequence."""
        hidden = self.model.transformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        last = attention_mask.sum(dim=1) - 1
        return self.model.score(hidden[torch.arange(len(hidden), device=hidden.device), last])

    def _step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(batch["input_ids"], batch["attention_mask"])
        return F.cross_entropy(logits.float(), batch["labels"]), logits.argmax(dim=-1)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, _ = self._step(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["labels"]))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_metrics)

    def _evaluate(self, batch: dict[str, torch.Tensor], split: str, metrics: MetricCollection) -> None:
        loss, predictions = self._step(batch)
        metrics.update(predictions, batch["labels"])
        size = len(batch["labels"])
        self.log(f"{split}/loss", loss, batch_size=size, sync_dist=True)
        self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=True, batch_size=size)

    def configure_optimizers(self) -> dict[str, Any]:
        matrices = [p for p in self.model.parameters() if p.ndim >= 2]
        others = [p for p in self.model.parameters() if p.ndim < 2]
        optimizer = torch.optim.AdamW(
            [{"params": matrices, "weight_decay": self.hparams.weight_decay}, {"params": others, "weight_decay": 0.0}],
            lr=self.hparams.lr,
        )
        steps = self.trainer.estimated_stepping_batches
        total = int(steps) if math.isfinite(steps) else 0
        warmup = int(total * self.hparams.warmup_ratio)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return max(total - step, 0) / max(total - warmup, 1) if total else 1.0

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ---- robustness sweep hook ----------------------------------------------------------------

    def robustness_layout(self) -> ModelLayout:
        return gpt2_layout(self.model, prefix="model.")

    def robustness_metric(self) -> MetricCollection:
        return glue_metrics(self.task)

    def robustness_update(self, metric: MetricCollection, batch: dict[str, torch.Tensor]) -> None:
        context = self._trainer.precision_plugin.forward_context() if self._trainer is not None else nullcontext()
        with context:
            logits = self(batch["input_ids"], batch["attention_mask"])
        metric.update(logits.argmax(dim=-1), batch["labels"])


class MatthewsCorrCoef(BinaryMatthewsCorrCoef):
    """Binary Matthews correlation as GLUE (scikit-learn) defines it: 0 when the denominator is 0.

    torchmetrics replaces a zero denominator by an ε-limit, which gives a constant predictor a
    non-zero score (e.g. 0.29 for 4 positives and 2 negatives all predicted positive); GLUE, and
    the paper's "≈ 0 MCC (random prediction)", take such a model to score 0.
    """

    def compute(self) -> torch.Tensor:
        (tn, fp), (fn, tp) = self.confmat.double()
        denominator = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
        if denominator == 0:
            return torch.zeros((), dtype=torch.float32, device=self.confmat.device)
        return ((tp * tn - fp * fn) / denominator.sqrt()).float()


def glue_metrics(task: GlueTask) -> MetricCollection:
    """The task's metrics: ``mcc`` (Matthews correlation), ``accuracy``, ``f1`` (of label 1)."""
    available = {"accuracy": BinaryAccuracy, "f1": BinaryF1Score, "mcc": MatthewsCorrCoef}
    if task.num_labels != 2:
        raise ConfigError("task", task.name, "only binary GLUE tasks are supported")
    return MetricCollection({name: available[name]() for name in task.metrics})


def build_classifier(init_from: str, num_labels: int) -> tuple[GPT2ForSequenceClassification, PreTrainedTokenizerBase]:
    """The classifier with the pretrained body and a new head, and its tokenizer (pad = eos)."""
    if Path(init_from).is_file() or init_from.endswith(".ckpt"):
        model, tokenizer = _from_lm_checkpoint(init_from, num_labels)
    else:
        model, tokenizer = _from_pretrained(init_from, num_labels)
    if len(tokenizer) > model.config.vocab_size:
        raise ConfigError(
            "model.init_from",
            init_from,
            f"its tokenizer has {len(tokenizer)} tokens but the model only {model.config.vocab_size} embeddings",
        )
    tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.eos_token_id
    return model.train(), tokenizer  # from_pretrained returns eval mode; Lightning keeps submodule modes


def _from_lm_checkpoint(path: str, num_labels: int) -> tuple[GPT2ForSequenceClassification, PreTrainedTokenizerBase]:
    config, state, tokenizer = load_lm_checkpoint(path, field="model.init_from")
    config.num_labels = num_labels
    model = GPT2ForSequenceClassification(config)
    body = {key: value for key, value in state.items() if key.startswith("transformer.")}
    result = model.load_state_dict(body, strict=False)
    missing = [key for key in result.missing_keys if not key.startswith("score.")]
    if missing or result.unexpected_keys:
        raise ConfigError(
            "model.init_from",
            path,
            f"weights do not fit GPT-2 (missing {missing}, unexpected {result.unexpected_keys})",
        )
    return model, tokenizer


def _from_pretrained(name: str, num_labels: int) -> tuple[GPT2ForSequenceClassification, PreTrainedTokenizerBase]:
    try:
        config = AutoConfig.from_pretrained(name)
        tokenizer = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise ConfigError(
            "model.init_from", name, f"no checkpoint file and no loadable model: {first_line(err)}"
        ) from None
    if config.model_type != "gpt2":
        raise ConfigError("model.init_from", name, f"is a {config.model_type!r} model, not GPT-2")
    if tokenizer.eos_token_id is None:
        raise ConfigError("model.init_from", name, "its tokenizer has no eos token (used as pad and pair separator)")
    model, info = GPT2ForSequenceClassification.from_pretrained(
        name, num_labels=num_labels, dtype=torch.float32, output_loading_info=True
    )
    missing = [key for key in info["missing_keys"] if not key.startswith("score.")]
    if missing or info.get("mismatched_keys"):
        raise ConfigError(
            "model.init_from",
            name,
            f"weights do not fit GPT-2 (missing {missing}, mismatched {info['mismatched_keys']})",
        )
    return model, tokenizer
