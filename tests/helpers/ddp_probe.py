"""A test instrument for DDP runs: each process prints how many evaluation items its sweep holds."""

from __future__ import annotations

import lightning as L

from callbacks.perturbation_sweep import PerturbationSweep


class ShardProbe(L.Callback):
    """Prints ``shard-probe rank=R items=N`` at train end: the items in this process's sweep cache."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        sweep = next(cb for cb in trainer.callbacks if isinstance(cb, PerturbationSweep))
        items = sum(len(batch["task"]) for batch in sweep._batches[sweep.split])
        print(f"shard-probe rank={trainer.global_rank} items={items}", flush=True)
