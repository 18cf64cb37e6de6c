"""A real W&B failure for tests: kill the W&B service process of this run mid-training."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import lightning as L


class KillWandbService(L.Callback):
    """At the end of training (before later callbacks log their results), SIGKILL ``wandb-core``."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        children = subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True, text=True).stdout.split()
        services = [pid for pid in children if Path(f"/proc/{pid}/comm").read_text().strip() == "wandb-core"]
        if not services:
            raise RuntimeError("KillWandbService: this process has no wandb-core child to kill")
        for pid in services:
            os.kill(int(pid), signal.SIGKILL)
