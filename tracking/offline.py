"""The environment of a run that never reaches the network: W&B offline, Hugging Face hubs offline."""

from __future__ import annotations

#: Environment variables for offline runs (tests, benchmarks, air-gapped clusters).
OFFLINE_ENV = {
    "WANDB_MODE": "offline",
    "WANDB_SILENT": "true",
    "WANDB_DISABLE_GIT": "true",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
