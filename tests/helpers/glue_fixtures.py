"""Generated pieces for the GLUE tests: a tiny byte-level BPE, tiny GPT-2 checkpoints, hub-layout data.

Nothing is downloaded. The language-model checkpoint is written the way ``GPT2LanguageModel``
(branch ``gpt2``) writes it: a Lightning ``.ckpt`` saved by a ``Trainer`` from a module holding a
``GPT2LMHeadModel`` at ``self.model``, with ``gpt2_config`` and ``tokenizer_json`` added in
``on_save_checkpoint``.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import yaml
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from datamodules.glue_sample import NEGATIVE, POSITIVE, SUBJECTS, sample_records
from datamodules.glue_tasks import glue_task

END_OF_TEXT = "<|endoftext|>"
VOCAB_SIZE = 320
TINY_GPT2 = {
    "n_layer": 2, "n_head": 2, "n_embd": 32, "n_positions": 128, "vocab_size": VOCAB_SIZE,
    "bos_token_id": 0, "eos_token_id": 0,
}  # fmt: skip


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A GPT-2 style byte-level BPE with ``VOCAB_SIZE`` tokens, ``<|endoftext|>`` = id 0 = bos = eos."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )  # fmt: skip
    text = [" ".join(SUBJECTS + POSITIVE + NEGATIVE + ["was", "and", "not", "really", "quite", "."])] * 20
    backend.train_from_iterator(text, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=END_OF_TEXT, eos_token=END_OF_TEXT)
    assert len(tokenizer) == VOCAB_SIZE  # the LM checkpoint contract: one token per embedding row
    return tokenizer


def tiny_lm(seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(**TINY_GPT2))


def save_hf_model(directory: Path, seed: int = 0) -> Path:
    """A tiny GPT-2 LM and its tokenizer in ``save_pretrained`` format (safetensors)."""
    tiny_lm(seed).save_pretrained(directory)
    tiny_tokenizer().save_pretrained(directory)
    return directory


class TinyLanguageModel(L.LightningModule):
    """Stands for ``GPT2LanguageModel``: same checkpoint contract, one training step on random tokens."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.model = tiny_lm(seed)
        self.tokenizer = tiny_tokenizer()

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.model(input_ids=batch[0], labels=batch[0]).loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=1e-3)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["tokenizer_json"] = self.tokenizer.backend_tokenizer.to_str()
        checkpoint["gpt2_config"] = json.loads(self.model.config.to_json_string(use_diff=False))


def save_lm_checkpoint(path: Path, seed: int = 0) -> Path:
    """Train ``TinyLanguageModel`` one step with a real ``Trainer`` and save its ``.ckpt`` at ``path``."""
    module = TinyLanguageModel(seed)
    tokens = torch.randint(1, VOCAB_SIZE, (4, 16), generator=torch.Generator().manual_seed(seed))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(tokens), batch_size=4)
    trainer = L.Trainer(
        max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=path.parent,
    )  # fmt: skip
    trainer.fit(module, loader)
    trainer.save_checkpoint(path)
    return path


def write_hub_layout(directory: Path, task: str, train: int = 64, validation: int = 32) -> Path:
    """A dataset repository laid out like ``nyu-mll/glue``: ``<task>/<split>-00000-of-00001.parquet``
    with a README whose ``configs`` and ``dataset_info`` (ClassLabel labels) mirror the hub's."""
    spec = glue_task(task)
    splits = {"train": train, "validation": validation, "test": validation}
    for offset, (split, count) in enumerate(splits.items()):
        records = sample_records(task, count, seed=offset)
        if split == "test":  # GLUE test splits carry no labels: -1
            records = [{**record, "label": -1} for record in records]
        schema = pa.schema(
            [*(pa.field(c, pa.string()) for c in spec.text_columns), pa.field("label", pa.int64()),
             pa.field("idx", pa.int32())]
        )  # fmt: skip
        (directory / task).mkdir(parents=True, exist_ok=True)
        pq.write_table(
            pa.Table.from_pylist(records, schema=schema), directory / task / f"{split}-00000-of-00001.parquet"
        )
    features = [{"name": c, "dtype": "string"} for c in spec.text_columns]
    features += [
        {"name": "label", "dtype": {"class_label": {"names": {str(i): n for i, n in enumerate(spec.label_names)}}}},
        {"name": "idx", "dtype": "int32"},
    ]
    card = {
        "dataset_info": [{"config_name": task, "features": features}],
        "configs": [{"config_name": task, "data_files": [{"split": s, "path": f"{task}/{s}-*"} for s in splits]}],
    }
    (directory / "README.md").write_text(f"---\n{yaml.safe_dump(card, sort_keys=False)}---\n# GLUE (local copy)\n")
    return directory
